"""Small-request load: wrk when installed, else a Python keep-alive client (slower, for a rough figure)."""

from __future__ import annotations

import re
import time

from harness.clients import API_HEADERS, run_wrk, wrk_argv


def wrk_rps(url: str, connections: int, seconds: int, threads: int) -> tuple[float, int, str]:
    """(req/s, non-2xx responses, p99 as wrk printed it plus any socket errors)."""
    result = run_wrk(wrk_argv(url, connections, seconds, threads=threads, headers=API_HEADERS), seconds + 60)
    errors = f" ({result.socket_errors})" if result.socket_errors else ""
    return result.rps, result.non2xx, result.p99_text + errors


def python_rps(url: str, connections: int, seconds: float) -> tuple[float, int, str]:
    """Fallback when wrk is missing: keep-alive HTTP/1.1 over asyncio streams (itself CPU-bound, so
    it under-reports fast servers; install wrk for real numbers)."""
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in API_HEADERS.items())
        + "\r\n"
    ).encode()

    async def one(deadline: float, counts: list[int]) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                counts[0 if status < 400 else 1] += 1
        finally:
            writer.close()

    async def main() -> tuple[int, int]:
        counts = [0, 0]
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(one(deadline, counts) for _ in range(connections)))
        return counts[0], counts[1]

    started = time.monotonic()
    ok, bad = asyncio.run(main())
    return (ok + bad) / (time.monotonic() - started), bad, "n/a (python client)"
