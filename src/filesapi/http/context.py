"""The outermost ASGI layer: request ids, security headers, the last-resort 500, and recording
each request (metrics, the access log, the request journal).

It wraps the whole Starlette app so that every response, including 404s for unknown paths and
500s for bugs, carries a ``request-id`` and goes out as the JSON error envelope.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filesapi.controls.journal import Journal, operation_of, redact_key, sdk_of_headers
from filesapi.controls.shared import SharedState
from filesapi.http.dialect import is_beta
from filesapi.http.envelope import error_response
from filesapi.http.guard import SendTimedOut
from filesapi.http.observe import Observer
from filesapi.ids import new_request_id
from filesapi.numbers import decimal

__all__ = ["SECURITY_HEADERS", "AbortConnection", "RequestContext"]

log = logging.getLogger("filesapi.http")

_PID = os.getpid()  # which worker process answered (each forks or spawns its own interpreter)
# What a client sends is cut to this before it is logged or kept in the journal.
_MAX_LOGGED = 32
_MAX_LOGGED_PATH = 1024

# Uploaded HTML or SVG must never run from this origin: nothing is sniffed, nothing may load or run.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; sandbox"),
]


def _header(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", []) if k == name]


def _api_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-api-key":
            return str(value.decode("latin-1")).strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1")).strip()
    return None


def _error_type(body: Any) -> str | None:
    try:
        error: Any = json.loads(body).get("error")
        return str(error["type"])[:64] if isinstance(error, dict) else None
    except (ValueError, AttributeError, KeyError, TypeError):
        return None


class AbortConnection(Exception):
    """Raised to end the connection without an answer (a fault rule's ``disconnect``)."""


class RequestContext:
    def __init__(self, app: ASGIApp, observer: Observer, journal: Journal, shared: SharedState) -> None:
        self.app = app
        self.observer = observer
        self.journal = journal
        self.shared = shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        started_us = self.shared.now_us()
        status = 0
        complete = False
        bytes_out = 0
        error_type: str | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal status, complete, bytes_out, error_type
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"request-id" not in present:  # the gateway relays its upstream's
                    headers.append((b"request-id", request_id.encode()))
                # A page of the server's own (docs, console) sets its own, looser policy.
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
                if status != 304 and scope["method"] != "HEAD":
                    length = dict(headers).get(b"content-length")
                    state["declared_length"] = decimal(length.decode("latin-1")) if length else None
            elif message["type"] == "http.response.body":
                if status >= 400 and bytes_out == 0 and error_type is None:
                    error_type = _error_type(message.get("body", b""))
                bytes_out += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            elif message["type"] == "http.response.pathsend":
                bytes_out += state.get("declared_length") or 0
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except AbortConnection:
            raise
        except SendTimedOut as exc:
            log.warning(
                "%s %s cut off: %s (request %s)", scope["method"], scope["path"][:200], exc, request_id
            )
            raise  # the server aborts the connection; the slot is already free
        except Exception:
            if status == 0:
                log.exception(
                    "unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id
                )
                response = error_response(
                    500, "api_error", "Internal server error.", request_id, headers={"x-should-retry": "true"}
                )
                await response(scope, receive, send_with_headers)
            elif not complete:
                log.exception(
                    "response of %s %s broke off (request %s)", scope["method"], scope["path"], request_id
                )
                raise  # let the server abort the connection: the client must see a truncated body
            else:
                log.exception(
                    "error after %s %s was answered (request %s)", scope["method"], scope["path"], request_id
                )
        finally:
            route = scope.get("route")
            method = scope["method"][:_MAX_LOGGED]
            path = scope["path"][:_MAX_LOGGED_PATH]
            dialect = "beta" if is_beta(_header(scope, b"anthropic-beta")) else "ga"
            duration_ms = (time.perf_counter() - started) * 1000
            user_agent = (_header(scope, b"user-agent") or [""])[0][:200]
            route_path = getattr(route, "path", "unmatched")
            self.observer.record(
                time=started_us / 1e6,
                request_id=request_id,
                method=method,
                path=path,
                route=route_path,
                dialect=dialect,
                status=status,
                duration_ms=duration_ms,
                bytes_in=state.get("bytes_in", 0),  # counted by the upload handler as it reads
                bytes_out=bytes_out,
                workspace=state.get("workspace"),
                user_agent=user_agent,
                files=state.get("gateway_files"),
                upstream_request_id=state.get("upstream_request_id"),
            )
            self.journal.append(
                {
                    "request_id": request_id,
                    "started_us": started_us,
                    "duration_ms": round(duration_ms, 3),
                    "method": method,
                    "path": path,
                    "route": route_path,
                    "operation": operation_of(scope["method"], scope["path"]),
                    "dialect": dialect,
                    "status": status or None,
                    "error_type": error_type,
                    "workspace": state.get("workspace"),
                    "workspace_id": state.get("workspace_id"),
                    "api_key": redact_key(_api_key(scope)),
                    "sdk": sdk_of_headers(scope.get("headers", [])),
                    "user_agent": user_agent,
                    "fault": state.get("fault"),
                    "worker": _PID,
                    "bytes_in": state.get("bytes_in", 0),
                    "bytes_out": bytes_out,
                    "upload": state.get("upload"),
                    "files": state.get("gateway_files"),  # Messages gateway calls (never their bytes)
                    "upstream_request_id": state.get("upstream_request_id"),
                }
            )
