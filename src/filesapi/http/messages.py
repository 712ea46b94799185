"""The Messages gateway's endpoints: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``
(``?beta=true`` as the beta clients call them). Authorize as the Files API does, resolve the
request's file ids in the caller's workspace, then forward to the upstream (or the mock) and relay
its answer: status, body and the headers the SDKs read, streamed event by event for SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from filesapi.gateway import Gateway
from filesapi.gateway.citations import rewrite_json_body
from filesapi.gateway.mock import dumps, mock_count_tokens, mock_events, mock_message
from filesapi.gateway.resolve import Resolution, resolve
from filesapi.gateway.sse import SSERelay, rewrite_event, split_events
from filesapi.gateway.upstream import UpstreamFailed, relayed_headers, upstream_headers
from filesapi.http.calls import app_state, authorize
from filesapi.http.envelope import error_response, request_id
from filesapi.http.files import limited_body

__all__ = ["messages_routes"]

_OFF = (
    "The Messages gateway is off on this server. Start it with an upstream to answer {path}: "
    "filesapi serve --upstream https://api.anthropic.com --upstream-key KEY (or FILESAPI_UPSTREAM and "
    "FILESAPI_UPSTREAM_KEY), or --upstream mock for a built-in deterministic reply."
)
_SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _read_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in limited_body(request, limit)])


def _note_files(request: Request, gateway: Gateway, resolution: Resolution) -> None:
    """The files a call resolved, for the access log and the console (ids, names, sizes only)."""
    request.scope["state"]["gateway_files"] = [f.summary() for f in resolution.files]
    for resolved in resolution.files:
        gateway.metrics.files.labels(resolved.ref.kind).inc()
    gateway.metrics.bytes.inc(resolution.resolved_bytes)


class _Counted:
    """An ASGI response that counts itself in the gateway's request metric once it is sent."""

    def __init__(self, response: Any, gateway: Gateway, endpoint: str, status: int) -> None:
        self.response = response
        self.gateway = gateway
        self.endpoint = endpoint
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            self.gateway.metrics.requests.labels(self.endpoint, str(self.status)).inc()


async def _handle(request: Request, endpoint: str) -> Any:
    gateway = _gateway(request)
    config = gateway.config
    if config.upstream is None:
        return error_response(404, "not_found_error", _OFF.format(path=request.url.path), request_id(request))
    call = await authorize(request)
    raw = await _read_body(request, config.max_request)
    service = app_state(request).service
    try:
        resolution = await resolve(service, call.principal, raw, config.max_request)
    except Exception:
        gateway.metrics.requests.labels(endpoint, "refused").inc()
        raise
    _note_files(request, gateway, resolution)
    if config.is_mock:
        response = await _mock(request, resolution, endpoint)
        return _Counted(response, gateway, endpoint, 200)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = upstream_headers(
        request.headers, request.headers.getlist("anthropic-beta"), config, resolution.content_length
    )
    try:
        body = resolution.chunks(service) if resolution.files else resolution.raw
        upstream = await gateway.send(endpoint, path, headers, body)
    except UpstreamFailed as failed:
        gateway.metrics.requests.labels(endpoint, str(failed.status)).inc()
        kind = "timeout_error" if failed.status == 504 else "api_error"
        return error_response(
            failed.status, kind, failed.message, request_id(request), headers={"x-should-retry": "true"}
        )
    request.scope["state"]["upstream_request_id"] = upstream.headers.get("request-id")
    relayed = relayed_headers(upstream.headers)
    if upstream.headers.get("content-type", "").startswith("text/event-stream"):
        events = (rewrite_event(e, resolution.documents) async for e in split_events(upstream.aiter_raw()))
        relay = SSERelay(upstream.status_code, relayed, events, upstream.aclose)
        return _Counted(relay, gateway, endpoint, upstream.status_code)
    try:
        answer = await upstream.aread()
    except httpx.TimeoutException:
        return error_response(504, "timeout_error", "The upstream stopped answering.", request_id(request))
    except httpx.TransportError as exc:
        message = f"The upstream's answer broke off: {type(exc).__name__}."
        return error_response(502, "api_error", message, request_id(request))
    finally:
        await upstream.aclose()
    if upstream.status_code == 200:
        answer = rewrite_json_body(answer, resolution.documents)
    response = Response(answer, status_code=upstream.status_code, headers=dict(relayed))
    return _Counted(response, gateway, endpoint, upstream.status_code)


async def _mock(request: Request, resolution: Resolution, endpoint: str) -> Response | SSERelay:
    service = app_state(request).service
    if endpoint == "count_tokens":
        return Response(dumps(mock_count_tokens(resolution)), media_type="application/json")
    message = await mock_message(service, resolution, request_id(request))
    if resolution.body.get("stream") is True:
        events = (rewrite_event(e, resolution.documents) async for e in mock_events(message))

        async def nothing() -> None:
            return None

        return SSERelay(200, _SSE_HEADERS, events, nothing)
    body = rewrite_json_body(json.dumps(message).encode(), resolution.documents)
    return Response(body, media_type="application/json")


async def create_message(request: Request) -> Any:
    return await _handle(request, "messages")


async def count_tokens(request: Request) -> Any:
    return await _handle(request, "count_tokens")


messages_routes = [
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
