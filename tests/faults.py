"""A TCP proxy that injects faults between filesapi and a real S3 server.

Each new connection is handled by the current mode (switching to a fault closes the open ones, so a
client's pooled keep-alive connections cannot slip past it): ``pass`` forwards bytes both ways; ``error``
answers the first request with ``HTTP/1.1 <status>`` and closes; ``stall`` reads and never
answers; ``drop`` closes at once. ``fail_next(n, mode)`` applies a mode to the next ``n``
connections only, then goes back to ``pass`` (an intermittent fault the client's retries absorb).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

__all__ = ["FaultProxy"]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.status = 503
        self._budget: int | None = None
        self.connections = 0
        self.faults = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    def set(self, mode: str, status: int = 503) -> None:
        self.mode, self.status, self._budget = mode, status, None
        if mode != "pass":
            self._close_open()

    def fail_next(self, count: int, mode: str = "error", status: int = 500) -> None:
        self.mode, self.status, self._budget = mode, status, count
        self._close_open()

    def _close_open(self) -> None:
        def close_all() -> None:
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()
            done.set()

        done = threading.Event()
        self._loop.call_soon_threadsafe(close_all)
        done.wait(5)

    @contextlib.contextmanager
    def fault(self, mode: str, status: int = 503) -> Iterator[None]:
        self.set(mode, status)
        try:
            yield
        finally:
            self.set("pass")

    def _take_mode(self) -> str:
        mode = self.mode
        if mode != "pass":
            self.faults += 1
            if self._budget is not None:
                self._budget -= 1
                if self._budget <= 0:
                    self.mode, self._budget = "pass", None
        return mode

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self._take_mode()
        try:
            if mode == "drop":
                return
            if mode == "stall":
                while await reader.read(65536):
                    pass
                return
            if mode == "error":
                await reader.readuntil(b"\r\n\r\n")
                body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                writer.write(
                    f"HTTP/1.1 {self.status} Injected\r\nContent-Type: application/xml\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._open.update((writer, up_writer))
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            self._open.difference_update((writer, up_writer))
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        def stop() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)
