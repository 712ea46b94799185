"""Protection in front of the API: load shedding (529), per-key rate limits (429), header size.

Requests to ``/v1/`` are counted while in flight; beyond ``max_concurrent_requests`` (per worker
process) a request is answered at once with 529 ``overloaded_error`` and ``retry-after``, which the
SDKs honour, instead of queueing until everything times out. With ``rate_limit_per_minute`` each API
key gets a token bucket of that many requests per minute (per worker process); beyond it, 429
``rate_limit_error`` with ``retry-after`` and ``retry-after-ms``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from filesapi.http.envelope import error_response

__all__ = ["Guard", "HttpOptions"]


@dataclass(frozen=True)
class HttpOptions:
    """How the HTTP layer protects itself and serves downloads (``filesapi serve`` flags)."""

    verify_downloads: bool = True
    body_timeout: float = 60.0
    max_header_bytes: int = 32 * 1024
    max_concurrent_requests: int = 512
    rate_limit_per_minute: int | None = None


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Guard:
    def __init__(self, app: ASGIApp, options: HttpOptions) -> None:
        self.app = app
        self.options = options
        self.in_flight = 0
        self._buckets: dict[bytes, _Bucket] = {}
        self._last_prune = time.monotonic()

    def _key(self, scope: Scope) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"x-api-key" or (name == b"authorization" and value[:7].lower() == b"bearer "):
                # Buckets are keyed by a digest, so the table never holds a key.
                return hashlib.blake2b(value, digest_size=16).digest()
        return None

    def _wait_seconds(self, key: bytes) -> float:
        """0 when the request may go now (and takes a token), else the seconds until it may."""
        rate = self.options.rate_limit_per_minute
        assert rate is not None
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(rate), now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.stamp) * rate / 60)
        bucket.stamp = now
        if now - self._last_prune > 60:  # forget keys that have been quiet long enough to be full
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < 60}
            self._last_prune = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) * 60 / rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "req_unknown")
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > self.options.max_header_bytes:
            allowed = self.options.max_header_bytes
            message = f"The request headers are {header_bytes} bytes; at most {allowed} are allowed."
            await error_response(431, "invalid_request_error", message, request_id)(scope, receive, send)
            return
        limit = self.options.max_concurrent_requests
        if limit and self.in_flight >= limit:
            await error_response(
                529,
                "overloaded_error",
                "The server is overloaded; retry shortly.",
                request_id,
                headers={"retry-after": "1", "x-should-retry": "true"},
            )(scope, receive, send)
            return
        if self.options.rate_limit_per_minute:
            key = self._key(scope)
            wait = self._wait_seconds(key) if key is not None else 0.0
            if wait:
                await error_response(
                    429,
                    "rate_limit_error",
                    f"Over this key's rate limit of {self.options.rate_limit_per_minute} requests a minute.",
                    request_id,
                    headers={
                        "retry-after": str(math.ceil(wait)),
                        "retry-after-ms": str(math.ceil(wait * 1000)),
                    },
                )(scope, receive, send)
                return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
