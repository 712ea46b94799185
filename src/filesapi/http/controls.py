"""Test controls over HTTP (``--test-controls``): the fault layer every request passes through, and
the admin endpoints for fault rules and the clock. Without ``--test-controls`` none of this is
mounted (the endpoints answer 404, the ``x-filesapi-fault`` header is ignored)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filesapi.controls.faults import ERROR_TYPES, FaultError, FaultStore, Rule, parse_header, parse_rule
from filesapi.controls.journal import operation_of
from filesapi.controls.shared import SharedState
from filesapi.errors import FilesApiError, InvalidRequest, NotFound
from filesapi.http.calls import api_key, app_state, authorize_admin, by_method, json_response
from filesapi.http.context import AbortConnection
from filesapi.http.dialect import format_time
from filesapi.http.envelope import error_response

__all__ = ["FaultLayer", "controls_routes"]

_MESSAGES = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    408: "Request timed out.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of requests has exceeded your rate limit.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Request timeout",
    529: "Overloaded",
}


def _shutdown_connection(scope: Scope) -> bool:
    """Close the client's TCP connection under the server's feet (Linux: found in /proc/self/fd by
    its two addresses). ASGI has no message for "no answer": granian answers 500 to an app that
    ends without one, so the socket is shut down first and that answer goes nowhere."""
    client, server = scope.get("client"), scope.get("server")
    if not client or not server:
        return False
    try:  # granian gives the ports as strings
        want = ((str(client[0]), int(client[1])), (str(server[0]), int(server[1])))
    except (TypeError, ValueError):
        return False
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for name in names:
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except (OSError, ValueError):
            continue
        try:
            if sock.type == socket.SOCK_STREAM and (sock.getpeername()[:2], sock.getsockname()[:2]) == want:
                sock.shutdown(socket.SHUT_RDWR)  # acts on the connection, not just this descriptor
                return True
        except OSError:
            pass
        finally:
            sock.close()
    return False


async def _drain(receive: Receive) -> None:
    """Read the request body away, so the client gets to read the answer instead of a broken pipe."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class FaultLayer:
    """Applies the first armed rule that names a request's operation (and workspace), or the
    request's own ``x-filesapi-fault`` header."""

    def __init__(self, app: ASGIApp, faults: FaultStore, starlette: Any) -> None:
        self.app = app
        self.faults = faults
        self.starlette = starlette

    async def _workspace(self, scope: Scope) -> tuple[str, str] | None:
        request = Request(scope)
        try:
            principal = await self.starlette.state.filesapi.authenticator.authenticate(
                api_key(request), request.headers.get("anthropic-workspace-id")
            )
        except FilesApiError:
            return None
        return principal.workspace.id, principal.workspace.name

    async def _rule(self, scope: Scope, operation: str | None) -> Rule | None:
        candidates = [r for r in self.faults.rules() if r.matches(operation)]
        if not candidates:
            return None
        workspace = await self._workspace(scope) if any(r.workspace for r in candidates) else None
        for rule in candidates:
            if rule.workspace is not None and (workspace is None or rule.workspace not in workspace):
                continue
            if await asyncio.to_thread(self.faults.claim, rule):
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = state.get("request_id", "req_unknown")
        operation = operation_of(scope["method"], scope["path"])
        header = next((v for k, v in scope["headers"] if k == b"x-filesapi-fault"), None)
        try:
            rule = parse_header(header.decode("latin-1"), operation) if header is not None else None
        except FaultError as exc:
            await error_response(400, "invalid_request_error", f"x-filesapi-fault: {exc}", request_id)(
                scope, receive, send
            )
            return
        if rule is None:
            rule = await self._rule(scope, operation)
        if rule is None:
            await self.app(scope, receive, send)
            return
        state["fault"] = rule.id
        if rule.status is not None:
            await _drain(receive)
            headers = {}
            if rule.retry_after_seconds is not None:
                headers["retry-after"] = str(rule.retry_after_seconds)
            message = f"{_MESSAGES[rule.status]} (filesapi fault {rule.id})"
            await error_response(rule.status, ERROR_TYPES[rule.status], message, request_id, headers=headers)(
                scope, receive, send
            )
        elif rule.delay_ms is not None:
            await asyncio.sleep(rule.delay_ms / 1000)
            await self.app(scope, receive, send)
        elif rule.disconnect:
            _shutdown_connection(scope)
            raise AbortConnection(rule.id)
        else:
            assert rule.truncate_after_bytes is not None
            await self._truncated(scope, receive, send, rule.truncate_after_bytes)

    async def _truncated(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """The real response with its full content-length, cut after ``limit`` body bytes."""
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        headers = [*scope["headers"], (b"x-filesapi-proxy", b"1")]  # stream it here, not by redirect
        scope = {**scope, "extensions": extensions, "headers": headers}
        sent = 0
        started = False

        async def cut(message: Message) -> None:
            nonlocal sent, started
            if message["type"] == "http.response.start":
                started = message["status"] in (200, 206)
            elif message["type"] == "http.response.body" and started:
                body = message.get("body", b"")
                if sent + len(body) >= limit and (body or not message.get("more_body", False)):
                    await send(
                        {"type": "http.response.body", "body": body[: limit - sent], "more_body": True}
                    )
                    raise AbortConnection("truncated")
                sent += len(body)
            await send(message)

        await self.app(scope, receive, cut)


# -- the endpoints


def _faults(request: Request) -> FaultStore:
    faults: FaultStore = request.app.state.faults
    return faults


def _shared(request: Request) -> SharedState:
    shared: SharedState = request.app.state.shared
    return shared


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise InvalidRequest("The body must be JSON.") from None


async def add_fault(request: Request) -> Response:
    await authorize_admin(request)
    try:
        rule = parse_rule(await _json_body(request))
    except FaultError as exc:
        raise InvalidRequest(str(exc)) from None
    if (
        rule.workspace is not None
        and await app_state(request).service.metadata.find_workspace(rule.workspace) is None
    ):
        raise InvalidRequest(f"workspace: no workspace is named or has the id {rule.workspace[:80]!r}.")
    faults = _faults(request)
    await asyncio.to_thread(faults.add, rule)
    listed = next(r for r in faults.listing() if r["id"] == rule.id)
    return json_response(listed)


async def list_faults(request: Request) -> Response:
    await authorize_admin(request)
    return json_response({"data": _faults(request).listing()})


async def clear_faults(request: Request) -> Response:
    await authorize_admin(request)
    return json_response({"deleted": await asyncio.to_thread(_faults(request).delete, None)})


async def delete_fault(request: Request) -> Response:
    await authorize_admin(request)
    rule_id = request.path_params["fault_id"]
    if not await asyncio.to_thread(_faults(request).delete, rule_id):
        raise NotFound(f"No fault rule {rule_id[:80]!r}.")
    return json_response({"id": rule_id, "type": "fault_deleted"})


def _clock_json(shared: SharedState) -> dict[str, Any]:
    return {"now": format_time(shared.now_us()), "offset_seconds": shared.offset_us / 1e6}


async def get_clock(request: Request) -> Response:
    await authorize_admin(request)
    return json_response(_clock_json(_shared(request)))


async def advance_clock(request: Request) -> Response:
    await authorize_admin(request)
    body = await _json_body(request)
    if not isinstance(body, dict) or set(body) != {"advance_seconds"}:
        raise InvalidRequest('The body is {"advance_seconds": N}; unknown or missing fields.')
    seconds = body["advance_seconds"]
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= 10 * 365 * 86400
    ):
        raise InvalidRequest(
            "advance_seconds must be a number from 0 to ten years: the clock never moves back."
        )
    _shared(request).advance(round(seconds * 1_000_000))
    return json_response(_clock_json(_shared(request)))


async def reset_clock(request: Request) -> Response:
    """Back to real time. When the store holds no files, new ids may start from real time again."""
    await authorize_admin(request)
    stats = await app_state(request).service.metadata.workspace_stats()
    _shared(request).reset_clock(new_epoch=sum(s.files for s in stats) == 0)
    return json_response(_clock_json(_shared(request)))


controls_routes = [
    Route(
        "/v1/admin/faults",
        by_method(GET=list_faults, POST=add_fault, DELETE=clear_faults),
        methods=["GET", "POST", "DELETE"],
    ),
    Route("/v1/admin/faults/{fault_id}", delete_fault, methods=["DELETE"]),
    Route(
        "/v1/admin/clock",
        by_method(GET=get_clock, POST=advance_clock, DELETE=reset_clock),
        methods=["GET", "POST", "DELETE"],
    ),
]
