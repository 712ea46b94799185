"""A request's body as chunks, refused past a size limit and cut off when the client crawls.

``BodyReader`` reads the ASGI ``receive`` channel itself. The timeouts (``body_timeout``: nothing
arrived for that long; ``min_upload_rate``: below that many bytes a second on average, after a
grace period; ``upload_deadline``: the whole upload took too long) are kept by one timer per
request, which wakes at the earliest moment a chunk could be late and goes back to sleep if it is
not: per chunk the reader only notes the time. (An ``asyncio.timeout`` around every receive made
and cancelled a timer per chunk, a tenth of a small upload's own time.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive

from filesapi.errors import FileTooLarge, InvalidRequest, RequestTimeout
from filesapi.http.guard import HttpOptions

__all__ = ["BodyReader"]

_EARLY = 1e-3  # a timer may fire this much before its time (the loop's clock resolution)


_STALLED, _SLOW, _DEADLINE = range(3)


def _allowed(options: HttpOptions, elapsed: float, total: int) -> tuple[float, int]:
    """How long the next chunk may take, ``elapsed`` seconds into an upload that has sent
    ``total`` bytes, and which limit says so."""
    wait, rule = options.body_timeout, _STALLED
    if options.min_upload_rate:
        slow = options.upload_rate_grace + total / options.min_upload_rate - elapsed
        if slow < wait:
            wait, rule = max(slow, 0.0), _SLOW
    if options.upload_deadline:
        late = options.upload_deadline - elapsed
        if late < wait:
            wait, rule = max(late, 0.0), _DEADLINE
    return wait, rule


def _why(options: HttpOptions, elapsed: float, total: int) -> str:
    """What to say when the chunk awaited ``elapsed`` seconds into the upload was late."""
    wait, rule = _allowed(options, elapsed, total)
    if rule == _SLOW:
        return (
            f"The upload is too slow: {total} bytes in {elapsed + wait:.0f} seconds, below this server's "
            f"minimum of {options.min_upload_rate} bytes a second."
        )
    if rule == _DEADLINE:
        return f"The upload did not finish within this server's {options.upload_deadline:g}-second limit."
    return f"The request body stalled: nothing arrived for {wait:g} seconds (after {total} bytes)."


class BodyReader:
    """``async for chunk in BodyReader(receive, state, options, limit)``: the body's non-empty
    chunks. Raises ``FileTooLarge`` past ``limit`` bytes, ``RequestTimeout`` when a chunk is late
    (see the module), ``InvalidRequest`` when the client disconnects. ``state`` (the scope's
    ``state``) gets ``bytes_in``, the bytes received so far. ``close()`` stops the timer of a body
    not read to its end (it would stop by itself within a ``body_timeout``)."""

    __slots__ = (
        "_cancelling",
        "_done",
        "_late",
        "_limit",
        "_loop",
        "_options",
        "_receive",
        "_started",
        "_state",
        "_task",
        "_timer",
        "_waiting_since",
        "total",
    )

    def __init__(self, receive: Receive, state: dict[str, Any], options: HttpOptions, limit: int) -> None:
        self._receive = receive
        self._state = state
        self._options = options
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self.total = 0
        self._done = False
        self._waiting_since: float | None = None  # while a receive is awaited: since when
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._late: str | None = None  # why the timer cut the wait off

    def __aiter__(self) -> BodyReader:
        return self

    async def __anext__(self) -> bytes:
        while not self._done:
            task = asyncio.current_task()
            assert task is not None
            if task is not self._task:
                self._task, self._cancelling = task, task.cancelling()
            now = self._loop.time()
            self._waiting_since = now
            if self._timer is None:
                self._timer = self._loop.call_at(self._deadline(now), self._check)
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                if self._late is not None and task.uncancel() <= self._cancelling:
                    why, self._late = self._late, None
                    self.close()
                    raise RequestTimeout(why) from None
                raise
            finally:
                self._waiting_since = None
            kind = message["type"]
            if kind == "http.request":
                if not message.get("more_body", False):
                    self.close()
                body: bytes = message.get("body", b"")
                if body:
                    self.total += len(body)
                    self._state["bytes_in"] = self.total
                    if self.total > self._limit:
                        self.close()
                        raise FileTooLarge(
                            f"Request body is larger than this server's limit of {self._limit} bytes."
                        )
                    return body
            elif kind == "http.disconnect":
                self.close()
                raise InvalidRequest("The client disconnected before the upload was complete.")
        raise StopAsyncIteration

    def close(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deadline(self, since: float) -> float:
        """When a chunk awaited since ``since`` is late. Never earlier than the deadline of a
        chunk awaited earlier: so a timer set for one wait is never late for a later one."""
        return since + _allowed(self._options, since - self._started, self.total)[0]

    def _check(self) -> None:
        """The timer: cut off a wait that is late, else sleep until it could be. When no receive
        is awaited, the timer stops; the next wait sets it again."""
        since = self._waiting_since
        if since is None or self._done or self._task is None:
            self._timer = None
            return
        deadline = self._deadline(since)
        if self._loop.time() < deadline - _EARLY:
            self._timer = self._loop.call_at(deadline, self._check)
            return
        self._timer = None
        self._late = _why(self._options, since - self._started, self.total)
        self._task.cancel()
