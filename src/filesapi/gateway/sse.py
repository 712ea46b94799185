"""Relaying an upstream's server-sent events to the client as they arrive.

Events pass through byte for byte, one ``http.response.body`` message each, except those that
carry citations of file-derived documents: those are parsed and written back with ``file_id``.
A client that disconnects cancels the relay, which closes the upstream response (and with it the
upstream request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from starlette.types import Receive, Scope, Send

from filesapi.gateway.citations import rewrite_event_data

__all__ = ["SSERelay", "encode_event", "rewrite_event", "split_events"]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


async def split_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Whole events (each with its blank-line terminator) from a byte stream cut anywhere."""
    pending = b""
    async for chunk in chunks:
        pending = pending + chunk if pending else chunk
        start = 0
        for match in _EVENT_END.finditer(pending):
            yield pending[start : match.end()]
            start = match.end()
        pending = pending[start:]
    if pending:
        yield pending


def encode_event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def rewrite_event(event: bytes, documents: Mapping[int, str]) -> bytes:
    """The event with ``file_id`` on its citations, or the same bytes when it has none to add."""
    if not documents or b"citation" not in event:
        return event
    lines = event.decode("utf-8", "replace").splitlines()
    data_lines = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
    try:
        data = json.loads("\n".join(data_lines))
    except ValueError:
        return event
    if not rewrite_event_data(data, documents):
        return event
    others = "".join(line + "\n" for line in lines if line and not line.startswith("data:"))
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"{others}data: {body}\n\n".encode()


class SSERelay:
    """An ASGI response that sends each event of ``events`` as soon as it is produced, and stops
    (running ``close``) when the client disconnects, whether or not an event is under way."""

    def __init__(
        self,
        status: int,
        headers: Sequence[tuple[str, str]],
        events: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.status = status
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        self.events = events
        self.close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pump() -> None:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            async for event in self.events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        relay = asyncio.ensure_future(pump())
        watcher = asyncio.ensure_future(until_disconnect())
        try:
            await asyncio.wait({relay, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, watcher):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await watcher
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
            finally:
                with contextlib.suppress(asyncio.CancelledError):
                    await self.close()
