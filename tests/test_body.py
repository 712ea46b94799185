"""The request body reader on its own: limits, disconnects, and the one timer that cuts off a
stalled, crawling or overlong upload (and nothing else)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from filesapi.errors import FileTooLarge, InvalidRequest, RequestTimeout
from filesapi.http.body import BodyReader
from filesapi.http.guard import HttpOptions

Receive = Callable[[], Awaitable[dict[str, Any]]]


def _messages(*bodies: bytes, gaps: float = 0.0, end: bool = True) -> Receive:
    """A receive channel: each body after ``gaps`` seconds; then, with ``end``, the last message
    says no more body follows; without it, the channel goes quiet forever."""
    queue = list(bodies)

    async def receive() -> dict[str, Any]:
        if gaps:
            await asyncio.sleep(gaps)
        if not queue:
            if end:
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()
        return {"type": "http.request", "body": queue.pop(0), "more_body": True}

    return receive


def _reader(receive: Receive, limit: int = 1 << 20, **options: Any) -> tuple[BodyReader, dict[str, Any]]:
    state: dict[str, Any] = {}
    return BodyReader(receive, state, HttpOptions(**options), limit), state


async def test_chunks_pass_through_and_are_counted() -> None:
    reader, state = _reader(_messages(b"ab", b"", b"cde"))
    assert [chunk async for chunk in reader] == [b"ab", b"cde"]
    assert reader.total == 5 and state["bytes_in"] == 5
    with pytest.raises(StopAsyncIteration):
        await reader.__anext__()


async def test_a_body_past_the_limit_is_refused() -> None:
    reader, state = _reader(_messages(b"x" * 6, b"y" * 6), limit=10)
    with pytest.raises(FileTooLarge, match="limit of 10 bytes"):
        [chunk async for chunk in reader]
    assert state["bytes_in"] == 12


async def test_a_disconnect_is_an_invalid_request() -> None:
    sent = [{"type": "http.request", "body": b"a", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return sent.pop(0)

    reader, _ = _reader(receive)
    with pytest.raises(InvalidRequest, match="disconnected"):
        [chunk async for chunk in reader]


async def test_a_stalled_body_times_out() -> None:
    reader, _ = _reader(_messages(b"abc", end=False), body_timeout=0.1, min_upload_rate=0)
    assert await reader.__anext__() == b"abc"
    with pytest.raises(RequestTimeout, match=r"stalled: nothing arrived for 0.1 seconds \(after 3 bytes\)"):
        await reader.__anext__()


async def test_a_crawling_body_is_cut_off_after_the_grace_period() -> None:
    # 10 bytes every 20 ms is 500 bytes a second, below the minimum of 100,000.
    reader, _ = _reader(
        _messages(*[b"x" * 10] * 100, gaps=0.02), min_upload_rate=100_000, upload_rate_grace=0.1
    )
    got = 0
    with pytest.raises(RequestTimeout, match=r"too slow: .* below this server's minimum of 100000"):
        async for chunk in reader:
            got += len(chunk)
    assert 0 < got < 1000


async def test_an_upload_past_its_deadline_is_cut_off() -> None:
    reader, _ = _reader(_messages(*[b"x"] * 1000, gaps=0.01), upload_deadline=0.15, min_upload_rate=0)
    with pytest.raises(RequestTimeout, match=r"within this server's 0\.15-second limit"):
        [chunk async for chunk in reader]


async def test_time_spent_by_the_consumer_is_not_the_clients() -> None:
    """The timer measures waits for the client only: a consumer busy (say, on a slow disk) for
    longer than body_timeout between chunks is not cut off, before or after the timer fired."""
    reader, _ = _reader(_messages(b"a", b"b", b"c"), body_timeout=0.05, min_upload_rate=0)
    got = []
    async for chunk in reader:
        got.append(chunk)
        await asyncio.sleep(0.12)
    assert got == [b"a", b"b", b"c"]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    reader, _ = _reader(_messages(end=False), body_timeout=5)
    task = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_abandoned_body_does_not_cut_off_its_task_later() -> None:
    """A body left unread (the form ended before the body did) has its timer stopped by
    ``close()``; and even without it, the timer never cancels a task that is not waiting on the
    client."""
    for close in (True, False):
        reader, _ = _reader(_messages(b"a", b"b", end=False), body_timeout=0.05, min_upload_rate=0)
        assert await reader.__anext__() == b"a"
        if close:
            reader.close()
        await asyncio.sleep(0.15)  # would be cancelled here if the timer fired at this task
        assert reader._timer is None
