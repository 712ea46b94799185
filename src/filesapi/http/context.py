"""The outermost ASGI layer: request ids, security headers, the last-resort 500, the access log.

It wraps the whole Starlette app so that every response, including 404s for unknown paths and
500s for bugs, carries a ``request-id`` and goes out as the JSON error envelope.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filesapi.http.envelope import error_response
from filesapi.ids import new_request_id

__all__ = ["SECURITY_HEADERS", "RequestContext"]

log = logging.getLogger("filesapi.http")
access_log = logging.getLogger("filesapi.access")

# Uploaded HTML or SVG must never run from this origin: nothing is sniffed, nothing may load or run.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; sandbox"),
]


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        complete = False
        sent_bytes = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status, complete, sent_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"request-id", request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            elif message["type"] == "http.response.pathsend":
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
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
            access_log.info(
                "%s %s %s %.1fms out=%d request_id=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                sent_bytes,
                request_id,
            )
