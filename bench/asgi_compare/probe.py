"""The probe ASGI app, imported by the server processes as ``asgi_compare.probe:probe_app``
(PYTHONPATH=bench/): it reads the request body with bare receive() calls and reports the chunk sizes
the server delivered, the raw body throughput, and the ASGI extensions offered."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any


async def probe_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body with bare receive() calls and answers with the chunk sizes it got."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    sizes: list[int] = []
    started = time.perf_counter()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            sizes.append(len(body))
        if not message.get("more_body", False):
            break
    elapsed = time.perf_counter() - started
    sizes_sorted = sorted(sizes)
    result = {
        "server": scope.get("server"),
        "extensions": sorted((scope.get("extensions") or {}).keys()),
        "http_version": scope.get("http_version"),
        "bytes": sum(sizes),
        "chunks": len(sizes),
        "min": sizes_sorted[0] if sizes else 0,
        "median": int(statistics.median(sizes_sorted)) if sizes else 0,
        "max": sizes_sorted[-1] if sizes else 0,
        "seconds_in_app": elapsed,
    }
    body = json.dumps(result).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
