"""The outermost ASGI layer: request ids, security headers, the send timeout, the last-resort 500,
and recording each request (metrics, the access log, the request journal).

It wraps the whole Starlette app so that every response, including 404s for unknown paths and
500s for bugs, carries a ``request-id`` and goes out as the JSON error envelope.
"""

from __future__ import annotations

import asyncio
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
from filesapi.http.observe import Observer
from filesapi.ids import new_request_id
from filesapi.numbers import decimal
from filesapi.records import RequestRecord

__all__ = ["SECURITY_HEADERS", "AbortConnection", "RequestContext", "SendTimedOut"]

log = logging.getLogger("filesapi.http")

_PID = os.getpid()  # which worker process answered (each forks or spawns its own interpreter)
# What a client sends is cut to this before it is logged or kept in the journal.
_MAX_LOGGED = 32
_MAX_LOGGED_PATH = 1024
# A last body chunk this small fits the socket's buffer: the server takes it at once, stalled client
# or not (and a timer per answer costs as much as the rest of a small one's send).
_UNTIMED_BYTES = 16 * 1024

# Uploaded HTML or SVG must never run from this origin: nothing is sniffed, nothing may load or run.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; sandbox"),
]


def _credential(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1").strip()


def _error_type(body: Any) -> str | None:
    try:
        error: Any = json.loads(body).get("error")
        return str(error["type"])[:64] if isinstance(error, dict) else None
    except (ValueError, AttributeError, KeyError, TypeError):
        return None


class SendTimedOut(Exception):
    """The client did not take a response chunk within the send timeout."""


class AbortConnection(Exception):
    """Raised to end the connection without an answer (a fault rule's ``disconnect``)."""


class RequestContext:
    """``send_timeout``: a response body chunk the client does not take within it ends the
    response (``SendTimedOut``; a reader that stopped reading would otherwise hold its slot in the
    guard forever). Timed here, in the one send wrapper every answer passes, not in one more."""

    def __init__(
        self,
        app: ASGIApp,
        observer: Observer,
        journal: Journal,
        shared: SharedState,
        send_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.observer = observer
        self.journal = journal
        self.shared = shared
        self.send_timeout = send_timeout

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
        timeout = self.send_timeout

        async def send_with_headers(message: Message) -> None:
            nonlocal status, complete, bytes_out, error_type
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", ()))
                has_id = has_type_options = has_policy = False
                length = None
                for name, value in headers:  # the app's own headers are lower case (Starlette's)
                    if name == b"content-length":
                        length = value
                    elif name == b"request-id":
                        has_id = True  # the gateway relays its upstream's
                    elif name == b"x-content-type-options":
                        has_type_options = True
                    elif name == b"content-security-policy":
                        has_policy = True  # a page of the server's own (docs, console) sets a looser one
                if not has_id:
                    headers.append((b"request-id", request_id.encode()))
                if not has_type_options:
                    headers.append(SECURITY_HEADERS[0])
                if not has_policy:
                    headers.append(SECURITY_HEADERS[1])
                message = {**message, "headers": headers}
                if status != 304 and scope["method"] != "HEAD":
                    state["declared_length"] = decimal(length.decode("latin-1")) if length else None
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if status >= 400 and bytes_out == 0 and error_type is None:
                    error_type = _error_type(body)
                bytes_out += len(body)
                complete = not message.get("more_body", False)
                if timeout and (not complete or len(body) > _UNTIMED_BYTES):
                    try:
                        async with asyncio.timeout(timeout):
                            await send(message)
                    except TimeoutError:
                        stalled = f"the client took no response bytes for {timeout:g} seconds"
                        raise SendTimedOut(stalled) from None
                    return
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
            self._record(scope, state, request_id, started_us, started, status, bytes_out, error_type)

    def _record(
        self,
        scope: Scope,
        state: dict[str, Any],
        request_id: str,
        started_us: int,
        started: float,
        status: int,
        bytes_out: int,
        error_type: str | None,
    ) -> None:
        """One record of the request, for the metrics, the access log and the journal."""
        duration_ms = (time.perf_counter() - started) * 1000
        key = bearer = agent = None
        stainless = False
        betas: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-api-key":
                key = value if key is None else key
            elif name == b"authorization":
                if bearer is None and value[:7].lower() == b"bearer ":
                    bearer = value[7:]
            elif name == b"anthropic-beta":
                betas.append(value.decode("latin-1"))
            elif name == b"user-agent":
                agent = agent if agent is not None else value
            elif name.startswith(b"x-stainless-"):
                stainless = True
        method = scope["method"]
        path = scope["path"]
        record = RequestRecord(
            request_id=request_id,
            started_us=started_us,
            duration_ms=round(duration_ms, 3),
            method=method[:_MAX_LOGGED],
            path=path[:_MAX_LOGGED_PATH],
            route=getattr(scope.get("route"), "path", "unmatched"),
            operation=operation_of(method, path),
            dialect="beta" if betas and is_beta(betas) else "ga",
            status=status or None,
            error_type=error_type,
            workspace=state.get("workspace"),
            workspace_id=state.get("workspace_id"),
            api_key=redact_key(_credential(key if key is not None else bearer)),
            sdk=sdk_of_headers(scope["headers"]) if stainless else None,
            user_agent=agent.decode("latin-1")[:200] if agent is not None else "",
            fault=state.get("fault"),
            worker=_PID,
            bytes_in=state.get("bytes_in", 0),  # counted by the upload handler as it reads
            bytes_out=bytes_out,
            upload=state.get("upload"),
            files=state.get("gateway_files"),  # Messages gateway calls (never their bytes)
            upstream_request_id=state.get("upstream_request_id"),
        )
        self.observer.record(record)
        self.journal.append(record)
