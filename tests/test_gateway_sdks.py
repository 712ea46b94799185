"""The gateway against a third-party Messages mock (aimock, from npm, its own process), with the
official TypeScript SDK as well as the Python one, and with files resolved from PostgreSQL + S3.

aimock 1.43 drops document and image blocks when it turns a request into its journal entry, so the
journal shows which calls reached it (path, model, the user's text) but not the file bytes. For the
bytes, aimock runs with ``--proxy-only``: a request no fixture matches is relayed, raw, to the
recording upstream, which shows exactly what aimock received.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from conftest import LiveServer, backend_settings, start_server, stop_server
from gateway_upstream import (
    NODE_DIR,
    TS_DIR,
    Aimock,
    Recorder,
    npm_ci,
    start_aimock,
    start_recorder,
    stop_recorder,
)
from test_gateway import PDF, PNG, TEXT, doc, image, upload, user

FIXTURES = {"fixtures": [{"match": {"userMessage": "hi"}, "response": {"content": "Hello from fixture"}}]}
TS_SDK = TS_DIR / "node_modules" / "sdk-1.16.0" / "index.mjs"


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    running = start_recorder()
    yield running.recorder
    stop_recorder(running)


@pytest.fixture(scope="module")
def aimock(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aimock]:
    yield from start_aimock(
        tmp_path_factory.mktemp("aimock"), FIXTURES, "--proxy-only", "--provider-anthropic", recorder.url
    )


@pytest.fixture(scope="module")
def aimock_gw(aimock: Aimock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("gw-aimock"), "--upstream", aimock.url)
    yield server
    stop_server(server)


def _messages_calls(aimock: Aimock) -> list[dict[str, Any]]:
    return [e for e in aimock.journal() if e["path"].startswith("/v1/messages")]


def test_python_sdk_through_the_gateway_to_aimock(
    aimock_gw: LiveServer, aimock: Aimock, recorder: Recorder
) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=aimock_gw.base_url, max_retries=0)
    pdf = upload(client, "a.pdf", PDF, "application/pdf")
    png = upload(client, "a.png", PNG, "image/png")
    before = len(_messages_calls(aimock))
    reply = client.messages.create(model="claude-test", max_tokens=5, messages=user(doc(pdf), image(png)))
    assert reply.content[0].text == "Hello from fixture"  # type: ignore[union-attr]
    with client.messages.stream(model="claude-test", max_tokens=5, messages=user(doc(pdf))) as stream:
        assert stream.get_final_message().content[0].text == "Hello from fixture"  # type: ignore[union-attr]
    beta = client.beta.messages.create(
        model="claude-test", max_tokens=5, messages=user(doc(pdf)), betas=["files-api-2025-04-14"]
    )
    assert beta.content[0].text == "Hello from fixture"  # type: ignore[union-attr]
    calls = _messages_calls(aimock)[before:]
    assert [c["body"]["model"] for c in calls] == ["claude-test"] * 3
    assert calls[1]["body"]["stream"] is True
    # No fixture for this text: aimock relays what it received, raw, to the recorder.
    recorder.reset()
    relayed = [doc(pdf), image(png), {"type": "text", "text": "pass along"}]
    client.messages.create(model="claude-test", max_tokens=5, messages=[{"role": "user", "content": relayed}])
    assert _messages_calls(aimock)[-1]["body"]["messages"][-1]["content"] == "pass along"
    received = recorder.last().json()["messages"][0]["content"]
    assert base64.b64decode(received[0]["source"]["data"]) == PDF
    assert received[1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }


def _typescript(base_url: str, key: str, *ops: str, prompt: str = "hi") -> dict[str, Any]:
    npm_ci(TS_DIR)
    result = subprocess.run(
        ["node", str(NODE_DIR / "messages.mjs"), str(TS_SDK), base_url, key, *ops],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin:/usr/local/bin", "GATEWAY_PROMPT": prompt},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_typescript_sdk_through_the_gateway_to_aimock(
    aimock_gw: LiveServer, aimock: Aimock, recorder: Recorder
) -> None:
    before = len(_messages_calls(aimock))
    out = _typescript(aimock_gw.base_url, "k", "create", "stream", "beta", "error")
    assert out["create"]["content"][0]["text"] == "Hello from fixture"
    assert (
        out["stream"]["message"]["content"][0]["text"] == "Hello from fixture" and out["stream"]["events"] > 3
    )
    assert out["beta"]["content"][0]["text"] == "Hello from fixture"
    assert out["error"] == {"name": "NotFoundError", "status": 404, "type": "not_found_error"}
    assert len(_messages_calls(aimock)) - before == 3
    recorder.reset()
    relayed = _typescript(aimock_gw.base_url, "k", "create", prompt="relay from typescript")
    sent = recorder.last().json()["messages"][0]["content"]
    assert sent[0]["source"]["data"] == relayed["files"]["pdf"][1]
    assert sent[1]["source"] == {
        "type": "text",
        "media_type": "text/plain",
        "data": relayed["files"]["text"][1],
    }


def test_typescript_sdk_against_the_mock_upstream(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--memory", "--upstream", "mock")
    try:
        out = _typescript(server.base_url, "k", "create", "stream", "count", "beta")
    finally:
        stop_server(server)
    pdf_id, pdf_b64 = out["files"]["pdf"]
    digest = hashlib.sha256(base64.b64decode(pdf_b64)).hexdigest()
    for reply in (out["create"], out["stream"]["message"], out["beta"]):
        assert (
            f"ts.pdf (application/pdf, {len(base64.b64decode(pdf_b64))} bytes, sha256 {digest})"
            in reply["content"][0]["text"]
        )
        assert reply["content"][1]["citations"][0]["file_id"] == pdf_id
    assert out["count"]["input_tokens"] > 0


@pytest.mark.parametrize("backend", ["postgres+s3"])
def test_files_resolve_from_postgres_and_s3(
    backend: str, recorder: Recorder, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = backend_settings(backend, tmp_path, request)
    assert settings.database_url and settings.blob_url
    data = tmp_path / "data"
    keys = {}
    for workspace in ("a", "b"):
        made = subprocess.run(
            [sys.executable, "-m", "filesapi", "keys", "create", "--workspace", workspace, "--database-url", settings.database_url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        keys[workspace] = made.stdout.strip().splitlines()[-1]
    server = start_server(
        tmp_path, "--auth", "keys", "--data-dir", str(data), "--database-url", settings.database_url,
        "--blob-url", settings.blob_url, "--upstream", recorder.url, "--upstream-key", "up-key",
    )  # fmt: skip
    try:
        a = anthropic.Anthropic(api_key=keys["a"], base_url=server.base_url, max_retries=0)
        b = anthropic.Anthropic(api_key=keys["b"], base_url=server.base_url, max_retries=0)
        pdf, text = (
            upload(a, "s3.pdf", PDF, "application/pdf"),
            upload(a, "s3.txt", TEXT.encode(), "text/plain"),
        )
        other = upload(b, "b.pdf", PDF, "application/pdf")
        recorder.reset()
        with pytest.raises(anthropic.NotFoundError):
            a.messages.create(model="claude-test", max_tokens=5, messages=user(doc(other)))
        assert recorder.received == []
        a.messages.create(model="claude-test", max_tokens=5, messages=user(doc(pdf), doc(text)))
        sent = recorder.last()
        assert sent.headers["x-api-key"] == "up-key"
        blocks = sent.json()["messages"][0]["content"]
        assert base64.b64decode(blocks[0]["source"]["data"]) == PDF
        assert blocks[1]["source"]["data"] == TEXT
    finally:
        stop_server(server)
