"""The gateway's configuration, its metrics, and the HTTP client that talks to the upstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "DEFAULT_MAX_REQUEST",
    "FILES_BETA",
    "RELAYED_HEADERS",
    "Gateway",
    "GatewayConfig",
    "UpstreamFailed",
    "relayed_headers",
    "upstream_headers",
]

DEFAULT_MAX_REQUEST = 32_000_000  # the hosted Messages API's request limit (32 MB)
FILES_BETA = "files-api-2025-04-14"
# The reply headers the SDKs read; everything else of the upstream's stays there.
RELAYED_HEADERS = frozenset({"content-type", "request-id", "retry-after", "retry-after-ms", "x-should-retry"})
_RELAYED_PREFIX = "anthropic-ratelimit-"


@dataclass(frozen=True)
class GatewayConfig:
    """``upstream``: a base URL speaking the Messages API, ``mock`` (the built-in reply), or None
    (the gateway is off). ``upstream_key``: the key the upstream sees instead of the client's."""

    upstream: str | None = None
    upstream_key: str | None = field(default=None, repr=False)
    max_request: int = DEFAULT_MAX_REQUEST
    timeout: float = 600.0
    connect_timeout: float = 10.0

    @property
    def is_mock(self) -> bool:
        return self.upstream == "mock"


class UpstreamFailed(Exception):
    """The upstream could not be reached or did not answer in time: 502 or 504."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "filesapi_gateway_requests",
            "Messages gateway requests answered, by endpoint and status",
            ["endpoint", "status"],
            registry=registry,
        )
        self.files = Counter(
            "filesapi_gateway_resolved_files",
            "Files inlined into Messages requests, by block kind",
            ["kind"],
            registry=registry,
        )
        self.bytes = Counter(
            "filesapi_gateway_resolved_bytes",
            "Bytes of files inlined into Messages requests",
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "filesapi_gateway_upstream_seconds",
            "Time from sending a request upstream until its response headers arrived, by endpoint",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )


class Gateway:
    """One per app: the configuration, the metrics and one pooled client for the upstream."""

    def __init__(self, config: GatewayConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self.metrics = _Metrics(registry)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(
        self,
        endpoint: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterator[bytes],
    ) -> httpx.Response:
        """POST to the upstream; the response is returned with its body unread (stream it, then
        close it). Transport failures become ``UpstreamFailed``."""
        assert self.config.upstream is not None
        url = self.config.upstream.rstrip("/") + path_and_query
        request = self.client.build_request("POST", url, headers=dict(headers), content=body)
        started = time.perf_counter()
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamFailed(
                504, f"The upstream did not answer within {self.config.timeout:g} seconds."
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamFailed(502, f"The upstream could not be reached: {type(exc).__name__}.") from None
        self.metrics.upstream_latency.labels(endpoint).observe(time.perf_counter() - started)
        return response


def upstream_headers(
    client: Mapping[str, str], betas: list[str], config: GatewayConfig, length: int
) -> dict[str, str]:
    """What the upstream is sent: the version, the betas minus the Files API's, and a credential
    (the gateway's key, or without one the client's own header)."""
    headers = {
        "content-type": "application/json",
        "content-length": str(length),
        "accept": client.get("accept") or "application/json",
        "accept-encoding": "identity",  # relayed as it comes: nothing to decompress and recompress
    }
    if version := client.get("anthropic-version"):
        headers["anthropic-version"] = version
    kept = [b for value in betas for b in (p.strip() for p in value.split(",")) if b and b != FILES_BETA]
    if kept:
        headers["anthropic-beta"] = ",".join(dict.fromkeys(kept))
    if config.upstream_key:
        headers["x-api-key"] = config.upstream_key
    else:
        for name in ("x-api-key", "authorization"):
            if value := client.get(name):
                headers[name] = value
    return headers


def relayed_headers(upstream: httpx.Headers) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in upstream.multi_items()
        if name in RELAYED_HEADERS or name.startswith(_RELAYED_PREFIX)
    ]
