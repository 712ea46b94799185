"""The Messages gateway: ``POST /v1/messages`` (and ``count_tokens``) with ``file_id`` sources
resolved from the caller's workspace and inlined, forwarded to an upstream that speaks the Messages
API (or answered by the built-in mock), citations given their ``file_id`` back.

Modules: ``resolve`` (finding and inlining files), ``upstream`` (configuration, metrics, the HTTP
client), ``sse`` (relaying streamed events), ``citations``, ``mock``. The HTTP endpoints are in
``filesapi.http.messages``.
"""

from filesapi.gateway.upstream import DEFAULT_MAX_REQUEST, Gateway, GatewayConfig

__all__ = ["DEFAULT_MAX_REQUEST", "Gateway", "GatewayConfig"]
