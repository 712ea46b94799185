"""Protection in front of the API: the Host check, header size, load shedding (529), each client's
share of the concurrency limit and its rate limit (429).

- Open mode answers only requests whose ``Host`` is a loopback name (or one ``--allowed-hosts``
  names): a web page elsewhere that reaches a local server through DNS rebinding sends its own
  host name, and gets 421.
- Requests to ``/v1/`` are counted while in flight; beyond ``max_concurrent_requests`` (per worker
  process: it protects the process) a request is answered at once with 529 ``overloaded_error`` and
  ``retry-after``, which the SDKs honour, instead of queueing until everything times out.
- No client may hold more than ``max_concurrent_per_key`` of those (default: a quarter), so one key
  busy with slow uploads or stalled downloads leaves room for every other: beyond it, 429.
- With ``rate_limit_per_minute`` each client gets a token bucket of that many requests per minute,
  one bucket for every worker and replica sharing the metadata database (``filesapi.http.ratelimit``);
  beyond it, 429 ``rate_limit_error`` with ``retry-after`` and ``retry-after-ms``.
- A client is its API key, read exactly as authentication reads it (``x-api-key``, else the
  ``Authorization: Bearer`` credential, whatever the scheme's case, extra headers ignored). Under
  ``--auth open`` every key works, so a client there is its address instead.
- A response body chunk the client does not take within ``send_timeout`` ends the response (a
  reader that stopped reading would otherwise hold its slot forever): ``RequestContext`` times
  every send, so this layer adds no send wrapper of its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from filesapi.auth import presented_key
from filesapi.http.envelope import error_response
from filesapi.http.ratelimit import SharedRateLimiter, TokenSource

__all__ = ["Guard", "HttpOptions", "host_name"]

log = logging.getLogger("filesapi.http")

_Refusal = tuple[int, str, str, dict[str, str]]  # status, error type, message, headers


@dataclass(frozen=True)
class HttpOptions:
    """How the HTTP layer protects itself and serves downloads (``filesapi serve`` flags).

    ``max_concurrent_per_key`` None: a quarter of ``max_concurrent_requests``. ``allowed_hosts``
    None: any Host. ``min_upload_rate`` (bytes a second, averaged over the whole upload after its
    first ``upload_rate_grace`` seconds) and ``upload_deadline`` (seconds) end uploads that crawl."""

    verify_downloads: bool = True
    body_timeout: float = 60.0
    min_upload_rate: int = 1000
    upload_rate_grace: float = 10.0
    upload_deadline: float | None = None
    send_timeout: float | None = 60.0
    max_header_bytes: int = 32 * 1024
    max_concurrent_requests: int = 512
    max_concurrent_per_key: int | None = None
    rate_limit_per_minute: int | None = None
    limit_by_address: bool = False
    allowed_hosts: frozenset[str] | None = None

    @property
    def per_key_limit(self) -> int:
        if self.max_concurrent_per_key is not None:
            return self.max_concurrent_per_key
        return max(1, self.max_concurrent_requests // 4) if self.max_concurrent_requests else 0


def host_name(host: str) -> str:
    """A Host header without its port: ``localhost:8000`` -> ``localhost``, ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _read_headers(scope: Scope) -> tuple[int, str | None, str | None, str | None]:
    """In one pass: the headers' size, and the first ``host``, ``x-api-key`` and ``authorization``."""
    size = 0
    host = x_api_key = authorization = None
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
        if name == b"host":
            host = value.decode("latin-1") if host is None else host
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1") if x_api_key is None else x_api_key
        elif name == b"authorization":
            authorization = value.decode("latin-1") if authorization is None else authorization
    return size, host, x_api_key, authorization


class Guard:
    def __init__(self, app: ASGIApp, options: HttpOptions, store: Callable[[], TokenSource]) -> None:
        self.app = app
        self.options = options
        self.in_flight = 0
        self._in_flight_by_client: dict[bytes, int] = {}
        self._store = store
        self._limiter: SharedRateLimiter | None = None

    def _client(self, scope: Scope, x_api_key: str | None, authorization: str | None) -> bytes | None:
        """Who the limits count this request against; a digest, so the tables never hold a key."""
        if self.options.limit_by_address:
            client = scope.get("client")
            return b"addr:" + (client[0] if client else "unknown").encode()
        key = presented_key(x_api_key, authorization)
        return (
            None
            if key is None
            else hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=16).digest()
        )

    async def _wait_seconds(self, client: bytes) -> float:
        """0 when the request may go now (and takes a token from the client's bucket, shared by
        every process on the metadata database), else the seconds until it may."""
        rate = self.options.rate_limit_per_minute
        assert rate is not None
        if self._limiter is None or self._limiter.rate != rate:
            self._limiter = SharedRateLimiter(rate, self._store)
        return await self._limiter.wait_seconds(client)

    async def _over_rate(self, client: bytes) -> _Refusal | None:
        wait = await self._wait_seconds(client)
        if not wait:
            return None
        message = f"Over this key's rate limit of {self.options.rate_limit_per_minute} requests a minute."
        headers = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
        return 429, "rate_limit_error", message, headers

    def _refusal(self, header_bytes: int, client: bytes | None) -> _Refusal | None:
        """Why this request may not go on (status, type, message, headers), or None."""
        options = self.options
        if header_bytes > options.max_header_bytes:
            most = options.max_header_bytes
            message = f"The request headers are {header_bytes} bytes; at most {most} are allowed."
            return 431, "invalid_request_error", message, {}
        limit = options.max_concurrent_requests
        if limit and self.in_flight >= limit:
            retry = {"retry-after": "1", "x-should-retry": "true"}
            return 529, "overloaded_error", "The server is overloaded; retry shortly.", retry
        share = options.per_key_limit
        if client is not None and share and self._in_flight_by_client.get(client, 0) >= share:
            who = "address" if options.limit_by_address else "key"
            message = (
                f"This {who} already has {share} requests in flight, the most one {who} may have at once; "
                "retry when one of them has finished."
            )
            return 429, "rate_limit_error", message, {"retry-after": "1", "retry-after-ms": "1000"}
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "req_unknown")
        header_bytes, host, x_api_key, authorization = _read_headers(scope)
        allowed = self.options.allowed_hosts
        if allowed is not None and host is not None and host_name(host) not in allowed:
            message = (
                f"This server answers for {', '.join(sorted(allowed))} only, not for Host {host[:100]!r} "
                "(--auth open trusts local callers only; name other hosts with --allowed-hosts)."
            )
            await error_response(421, "invalid_request_error", message, request_id)(scope, receive, send)
            return
        if not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        client = self._client(scope, x_api_key, authorization)
        refusal = self._refusal(header_bytes, client)
        if refusal is None and client is not None and self.options.rate_limit_per_minute:
            refusal = await self._over_rate(client)
        if refusal is not None:
            status, error_type, message, headers = refusal
            await error_response(status, error_type, message, request_id, headers=headers)(
                scope, receive, send
            )
            return
        self.in_flight += 1
        if client is not None:
            self._in_flight_by_client[client] = self._in_flight_by_client.get(client, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if client is not None:
                left = self._in_flight_by_client[client] - 1
                if left:
                    self._in_flight_by_client[client] = left
                else:
                    del self._in_flight_by_client[client]
