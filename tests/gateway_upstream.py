"""Upstreams for the gateway tests: a recording Messages server on a free loopback port (in a thread,
uvicorn), and the third-party mock aimock (npm ``@copilotkit/aimock``) as its own process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conftest import free_port

NODE_DIR = Path(__file__).resolve().parent / "gateway_node"
TS_DIR = Path(__file__).resolve().parent.parent / "conformance" / "typescript"


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[[Received], Response]


def message(text: str = "recorded", citations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if citations is not None:
        block["citations"] = citations
    return {
        "id": "msg_recorded",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [block],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def stream_events(citation: dict[str, Any] | None = None) -> list[bytes]:
    start = {**message(), "content": [], "stop_reason": None}
    events = [
        sse("message_start", {"message": start}),
        sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "streamed"}}),
    ]
    if citation is not None:
        events.append(
            sse(
                "content_block_delta",
                {"index": 0, "delta": {"type": "citations_delta", "citation": citation}},
            )
        )
    events += [
        sse("content_block_stop", {"index": 0}),
        sse(
            "message_delta",
            {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 1}},
        ),
        sse("message_stop", {}),
    ]
    return events


@dataclass
class Recorder:
    """What it received, in order; ``reply`` decides the answer (default: a plain message, or a
    count for count_tokens). ``gate``: streamed replies wait for it after their first event."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    reply: Reply | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    hang: bool = False  # answer nothing until ``gate`` is set

    def reset(self) -> None:
        self.received.clear()
        self.reply = None
        self.gate = threading.Event()
        self.finished = threading.Event()
        self.cancelled = threading.Event()
        self.hang = False

    def last(self) -> Received:
        assert self.received, "the upstream received nothing"
        return self.received[-1]

    def gated_stream(self, events: list[bytes], headers: dict[str, str] | None = None) -> Response:
        """The first event at once, the rest after ``gate`` is set; notes a cancellation."""
        recorder = self

        async def body() -> AsyncIterator[bytes]:
            try:
                yield events[0]
                while not recorder.gate.is_set():
                    await asyncio.sleep(0.01)
                for event in events[1:]:
                    yield event
                recorder.finished.set()
            except (asyncio.CancelledError, GeneratorExit):
                recorder.cancelled.set()
                raise

        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def handle(self, request: Request) -> Response:
        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            {k: v for k, v in request.headers.items()},
            await request.body(),
        )
        self.received.append(received)
        while self.hang and not self.gate.is_set():
            await asyncio.sleep(0.01)
        if self.reply is not None:
            return self.reply(received)
        if received.path.endswith("/count_tokens"):
            return JSONResponse({"input_tokens": 42}, headers={"request-id": "req_upstream_count"})
        return JSONResponse(message(), headers={"request-id": "req_upstream_1"})


@dataclass
class RunningRecorder:
    recorder: Recorder
    server: uvicorn.Server
    thread: threading.Thread


def start_recorder() -> RunningRecorder:
    recorder = Recorder()
    app = Starlette(routes=[Route("/{path:path}", recorder.handle, methods=["GET", "POST"])])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the recording upstream did not start"
    recorder.url = f"http://127.0.0.1:{port}"
    return RunningRecorder(recorder, server, thread)


def stop_recorder(running: RunningRecorder) -> None:
    running.server.should_exit = True
    running.thread.join(timeout=10)


def npm_ci(where: Path) -> None:
    """``npm ci`` once per lock file (a stamp in node_modules says which lock it installed), as
    conformance/run.py does for the TypeScript SDKs, whose install the gateway tests share."""
    npm = shutil.which("npm")
    assert npm, "the gateway tests need Node.js and npm (apt-get install nodejs npm)"
    import hashlib

    lock = hashlib.sha256((where / "package-lock.json").read_bytes()).hexdigest()
    stamp = where / "node_modules" / ".conformance-lock-sha256"  # the stamp conformance/run.py writes
    if stamp.exists() and stamp.read_text() == lock:
        return
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=where, check=True, timeout=600
    )
    stamp.write_text(lock)


@dataclass
class Aimock:
    url: str
    process: subprocess.Popen[bytes]

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = httpx.get(self.url + "/__aimock/journal", timeout=10).json()
        return entries


def start_aimock(tmp_path: Path, fixtures: dict[str, Any], *args: str) -> Iterator[Aimock]:
    npm_ci(NODE_DIR)
    fixture_dir = tmp_path / "aimock-fixtures"
    fixture_dir.mkdir()
    (fixture_dir / "fixtures.json").write_text(json.dumps(fixtures))
    port = free_port()
    log = (tmp_path / "aimock.log").open("wb")
    process = subprocess.Popen(
        ["node", str(NODE_DIR / "node_modules" / "@copilotkit" / "aimock" / "dist" / "cli.js"),
         "-p", str(port), "-h", "127.0.0.1", "-f", str(fixture_dir), "--log-level", "warn", *args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, (tmp_path / "aimock.log").read_text()
        try:
            httpx.get(url + "/__aimock/journal", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, (
                "aimock did not start:\n" + (tmp_path / "aimock.log").read_text()
            )
            time.sleep(0.1)
    try:
        yield Aimock(url, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
