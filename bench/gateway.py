"""The Messages gateway's cost, measured in one run against an anchor of the same run: a recording
Messages upstream (its own process, uvicorn) called directly, and the same upstream called through
``filesapi serve --upstream`` (granian, SQLite + disk).

    python bench/gateway.py [--requests 300]

Prints: the p50 latency added by the gateway for a request without files (target < 2 ms) and for
one with a 1 MB PDF (the direct call sends the same PDF inline as base64, so both carry the same
bytes upstream), the time to the first SSE event (target: < 2 ms added), and the gateway worker's
RSS while it resolves a 30 MB PDF (target: < 200 MB above idle).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}
REPLY = {
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "m",
    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_upstream(port: int) -> None:
    """The upstream: reads the whole body, answers a message (or, for stream: true, two events)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    reply = json.dumps(REPLY).encode()

    async def messages(request: Request) -> Response:
        body = await request.body()
        if b'"stream":true' in body.replace(b" ", b""):

            async def events() -> Any:
                yield b'event: message_start\ndata: {"type":"message_start","message":' + reply + b"}\n\n"
                yield b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

            return StreamingResponse(events(), media_type="text/event-stream")
        return Response(reply, media_type="application/json")

    app = Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _p50(call: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _first_event_ms(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, headers=HEADERS, json=body) as response:
        for _ in response.iter_raw():
            return (time.perf_counter() - started) * 1000
    raise RuntimeError("no event")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--upstream-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream_server:
        serve_upstream(args.upstream_server)
        return
    n = args.requests
    up_port, gw_port = _free_port(), _free_port()
    upstream_url, gateway_url = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    with tempfile.TemporaryDirectory() as tmp:
        up = subprocess.Popen([sys.executable, __file__, "--upstream-server", str(up_port)])
        gw = subprocess.Popen(
            [sys.executable, "-m", "filesapi", "serve", "--port", str(gw_port), "--data-dir", tmp,
             "--upstream", upstream_url, "--upstream-max-request", "64MB", "--log-level", "warning"],
            env={**os.environ, "FILESAPI_LOG_FORMAT": "json"}, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait(upstream_url + "/", up)
            _wait(gateway_url + "/healthz", gw)
            run(n, upstream_url, gateway_url, gw.pid)
        finally:
            for process in (gw, up):
                process.terminate()
                process.wait(timeout=20)


def run(n: int, upstream: str, gateway: str, gateway_pid: int) -> None:
    client = httpx.Client(timeout=120)
    plain = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hello"}]}
    pdf = b"%PDF-1.7\n" + os.urandom(1_000_000)
    file_id = client.post(
        gateway + "/v1/files", headers={"x-api-key": "bench", "anthropic-version": "2023-06-01"},
        files={"file": ("bench.pdf", pdf, "application/pdf")},
    ).json()["id"]  # fmt: skip

    def with_pdf(source: dict[str, Any]) -> dict[str, Any]:
        content = [{"type": "document", "source": source}, {"type": "text", "text": "summarise"}]
        return {**plain, "messages": [{"role": "user", "content": content}]}

    inline = with_pdf(
        {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()}
    )
    by_id = with_pdf({"type": "file", "file_id": file_id})
    for _ in range(30):  # warm both paths
        client.post(upstream + "/v1/messages", headers=HEADERS, json=plain)
        client.post(gateway + "/v1/messages", headers=HEADERS, json=plain)
    inline_bytes = json.dumps(inline).encode()
    rows = []
    direct = _p50(lambda: client.post(upstream + "/v1/messages", headers=HEADERS, json=plain), n)
    through = _p50(lambda: client.post(gateway + "/v1/messages", headers=HEADERS, json=plain), n)
    rows.append(("no files: p50", direct, through))
    m = max(30, n // 5)
    direct = _p50(lambda: client.post(upstream + "/v1/messages", headers=HEADERS, content=inline_bytes), m)
    through = _p50(lambda: client.post(gateway + "/v1/messages", headers=HEADERS, json=by_id), m)
    rows.append(("1 MB PDF: p50 (direct sends it inline)", direct, through))
    streamed = {**plain, "stream": True}
    direct = statistics.median(_first_event_ms(client, upstream + "/v1/messages", streamed) for _ in range(m))
    through = statistics.median(_first_event_ms(client, gateway + "/v1/messages", streamed) for _ in range(m))
    rows.append(("time to first SSE event: p50", direct, through))
    print(f"gateway benchmark: {n} requests per latency sample, upstream = recording server (uvicorn)")
    print("| measure | direct to upstream | through filesapi | added | ratio |\n|---|---:|---:|---:|---:|")
    for name, d, t in rows:
        print(f"| {name} | {d:.2f} ms | {t:.2f} ms | {t - d:+.2f} ms | {t / d:.2f}x |")
    rss_30mb(client, gateway, gateway_pid)


def rss_30mb(client: httpx.Client, gateway: str, gateway_pid: int) -> None:
    big = b"%PDF-1.7\n" + os.urandom(30_000_000)
    file_id = client.post(
        gateway + "/v1/files", headers={"x-api-key": "bench", "anthropic-version": "2023-06-01"},
        files={"file": ("big.pdf", big, "application/pdf")},
    ).json()["id"]  # fmt: skip
    del big
    workers = _children(gateway_pid) or [gateway_pid]
    time.sleep(1)
    idle = sum(_rss_mib(p) for p in workers)
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_rss_mib(p) for p in workers))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    content = [{"type": "document", "source": {"type": "file", "file_id": file_id}}]
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    started = time.perf_counter()
    response = client.post(gateway + "/v1/messages", headers=HEADERS, json=body)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    assert response.status_code == 200, response.text[:500]
    print(
        f"\n30 MB PDF resolved and sent upstream (40 MB as base64) in {elapsed:.2f} s: gateway worker RSS "
        f"{idle:.0f} MiB idle, {peak:.0f} MiB peak, {peak - idle:+.0f} MiB above idle (target < 200 MB)"
    )


if __name__ == "__main__":
    main()
