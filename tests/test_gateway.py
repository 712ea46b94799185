"""The Messages gateway driven by the official Python SDK through a real filesapi server, against a
recording upstream (what was forwarded: bodies, headers, keys; what comes back: errors, citations,
SSE pacing, disconnects) and against ``--upstream mock``."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from starlette.responses import JSONResponse

from conftest import LiveServer, free_port, start_server, stop_server
from gateway_upstream import Recorder, message, start_recorder, stop_recorder, stream_events

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))
TEXT = 'Résumé: the quick brown fox "quotes" and \\backslashes\\\nline two\t✓\n'
MODEL = "claude-test"
UPSTREAM_KEY = "sk-upstream-secret-0123456789"
ADMIN_KEY = "admin-secret-for-metrics"


@dataclass
class Gateway:
    server: LiveServer
    keys: dict[str, str]

    def client(self, workspace: str = "a", **kwargs: Any) -> anthropic.Anthropic:
        key = self.keys.get(workspace, "client-key-open")
        return anthropic.Anthropic(api_key=key, base_url=self.server.base_url, max_retries=0, **kwargs)


def _make_keys(data_dir: Path, *workspaces: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    keys = {}
    for workspace in workspaces:
        out = subprocess.run(
            [sys.executable, "-m", "filesapi", "keys", "create", "--workspace", workspace,
             "--data-dir", str(data_dir), *extra],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        keys[workspace] = out.stdout.strip().splitlines()[-1]
    return keys


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    running = start_recorder()
    yield running.recorder
    stop_recorder(running)


@pytest.fixture
def rec(recorder: Recorder) -> Recorder:
    recorder.reset()
    return recorder


@pytest.fixture(scope="module")
def open_gw(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """--auth open, no --upstream-key: the client's credential passes through."""
    server = start_server(
        tmp_path_factory.mktemp("gw-open"), "--upstream", recorder.url, "--upstream-max-request", "1MB"
    )
    yield Gateway(server, {})
    stop_server(server)


@pytest.fixture(scope="module")
def keys_gw(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """--auth keys with --upstream-key, two workspaces."""
    tmp = tmp_path_factory.mktemp("gw-keys")
    data = tmp / "data"
    keys = _make_keys(data, "a", "b")
    server = start_server(
        tmp, "--auth", "keys", "--data-dir", str(data), "--admin-key", ADMIN_KEY,
        "--upstream", recorder.url, "--upstream-key", UPSTREAM_KEY,
    )  # fmt: skip
    yield Gateway(server, keys)
    stop_server(server)


@pytest.fixture(scope="module")
def mock_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gw-mock")
    data = tmp / "data"
    keys = _make_keys(data, "a", "b")
    server = start_server(tmp, "--auth", "keys", "--data-dir", str(data), "--upstream", "mock")
    yield Gateway(server, keys)
    stop_server(server)


def upload(client: anthropic.Anthropic, name: str, data: bytes, media_type: str) -> str:
    return client.beta.files.upload(file=(name, data, media_type)).id


def doc(file_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "document", "source": {"type": "file", "file_id": file_id}, **extra}


def image(file_id: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "file", "file_id": file_id}}


def user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "hi"}]}]


# -- forwarding


def test_a_request_without_files_reaches_the_upstream_unchanged(open_gw: Gateway, rec: Recorder) -> None:
    client = open_gw.client()
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hello"}], system="be brief",
        metadata={"user_id": "u1"},
    )  # fmt: skip
    sent = rec.last()
    assert sent.path == "/v1/messages" and sent.query == ""
    assert sent.json() == {
        "model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hello"}],
        "system": "be brief", "metadata": {"user_id": "u1"},
    }  # fmt: skip
    assert sent.headers["anthropic-version"] == client.default_headers["anthropic-version"]
    assert sent.headers.get("authorization") == "Bearer client-key-open"  # no --upstream-key: passed on
    assert "anthropic-beta" not in sent.headers
    assert raw.headers["request-id"] == "req_upstream_1"
    assert raw.parse().id == "msg_recorded"


def test_files_are_inlined_everywhere_they_may_appear(open_gw: Gateway, rec: Recorder) -> None:
    client = open_gw.client()
    pdf = upload(client, "report.pdf", PDF, "application/pdf")
    text = upload(client, "notes.txt", TEXT.encode(), "text/plain")
    md = upload(client, "readme.md", b"# Title\n\nbody\n", "application/octet-stream")
    png = upload(client, "pixel.png", PNG, "image/png")
    hidden = httpx.post(
        open_gw.server.base_url + "/v1/admin/files?downloadable=false",
        headers={"x-api-key": "any", "anthropic-version": "2023-06-01"},
        files={"file": ("secret.pdf", PDF, "application/pdf")},
    ).json()
    assert hidden["downloadable"] is False
    messages: Any = [
        {"role": "user", "content": [doc(pdf, title="Report", citations={"enabled": True}), doc(text), {"type": "text", "text": "read"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "fetch", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [image(png), doc(md), doc(hidden["id"])]},
        ]},
    ]  # fmt: skip
    client.beta.messages.create(
        model=MODEL, max_tokens=5, messages=messages, betas=["files-api-2025-04-14", "other-beta-2025-01-01"]
    )
    sent = rec.last()
    assert sent.path == "/v1/messages"  # this SDK version calls beta messages without ?beta=true
    assert sent.headers["anthropic-beta"] == "other-beta-2025-01-01"  # the Files API's beta is dropped
    assert int(sent.headers["content-length"]) == len(sent.body)
    body = sent.json()
    first, third = body["messages"][0]["content"], body["messages"][2]["content"][0]["content"]
    assert first[0] == {
        "type": "document", "title": "Report", "citations": {"enabled": True},
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()},
    }  # fmt: skip
    assert first[1]["source"] == {"type": "text", "media_type": "text/plain", "data": TEXT}
    assert third[0]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert third[1]["source"] == {"type": "text", "media_type": "text/plain", "data": "# Title\n\nbody\n"}
    assert base64.b64decode(third[2]["source"]["data"]) == PDF  # downloadable: false resolves too
    assert body["messages"][1] == messages[1]
    assert first[2] == {"type": "text", "text": "read"}


def test_only_the_files_beta_means_no_beta_header(open_gw: Gateway, rec: Recorder) -> None:
    client = open_gw.client()
    client.beta.messages.create(model=MODEL, max_tokens=5, messages=user(), betas=["files-api-2025-04-14"])
    assert "anthropic-beta" not in rec.last().headers
    # Newer SDKs call the beta paths with ?beta=true: it reaches the upstream as sent.
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "anthropic-beta": "files-api-2025-04-14"}
    response = httpx.post(
        open_gw.server.base_url + "/v1/messages/count_tokens?beta=true",
        headers=headers,
        json={"model": MODEL, "messages": user()},
    )
    assert response.json() == {"input_tokens": 42}
    assert (rec.last().path, rec.last().query) == ("/v1/messages/count_tokens", "beta=true")


@pytest.mark.parametrize(
    ("name", "data", "media_type", "block"),
    [
        ("archive.zip", b"PK\x03\x04" + b"\x00" * 40, "application/zip", "document"),
        ("pixel.png", PNG, "image/png", "document"),
        ("report.pdf", PDF, "application/pdf", "image"),
        ("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "image"),
    ],
)
def test_a_file_of_the_wrong_type_is_a_400_naming_block_and_type(
    open_gw: Gateway, rec: Recorder, name: str, data: bytes, media_type: str, block: str
) -> None:
    client = open_gw.client()
    file_id = upload(client, name, data, media_type)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=user(doc(file_id) if block == "document" else image(file_id))
        )
    assert "messages[0].content[0]" in caught.value.message and media_type in caught.value.message
    assert rec.received == []


def test_container_upload_blocks_are_refused(open_gw: Gateway, rec: Recorder) -> None:
    client = open_gw.client()
    file_id = upload(client, "data.csv", b"a,b\n1,2\n", "text/csv")
    with pytest.raises(anthropic.BadRequestError, match="container_upload"):
        client.messages.create(
            model=MODEL, max_tokens=5, messages=user({"type": "container_upload", "file_id": file_id})
        )
    assert rec.received == []


def test_deleted_unknown_and_expired_files_are_404(open_gw: Gateway, rec: Recorder) -> None:
    client = open_gw.client()
    gone = upload(client, "gone.pdf", PDF, "application/pdf")
    client.beta.files.delete(gone)
    expiring = httpx.post(
        open_gw.server.base_url + "/v1/admin/files?expires_in_seconds=1",
        headers={"x-api-key": "any", "anthropic-version": "2023-06-01"},
        files={"file": ("soon.pdf", PDF, "application/pdf")},
    ).json()["id"]
    for file_id in (gone, "file_011CNha8iCJcU1wXNR6q4V8w", "not-an-id"):
        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(model=MODEL, max_tokens=5, messages=user(doc(file_id)))
    time.sleep(1.2)  # let the file expire (no timing is asserted)
    with pytest.raises(anthropic.NotFoundError) as from_gateway:
        client.messages.create(model=MODEL, max_tokens=5, messages=user(doc(expiring)))
    with pytest.raises(anthropic.NotFoundError) as from_download:
        client.beta.files.download(expiring)
    said = [e.value.body["error"]["message"] for e in (from_gateway, from_download)]  # type: ignore[index]
    assert said[0] == said[1] and "expired" in said[0]
    assert rec.received == []


def test_a_request_past_the_upstream_limit_is_413(open_gw: Gateway, rec: Recorder) -> None:
    client = open_gw.client()
    big = upload(client, "big.pdf", b"%PDF-1.4\n" + b"\x01" * 800_000, "application/pdf")  # 1.07 MB as base64
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=user(doc(big)))
    assert caught.value.status_code == 413
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "request_too_large"
    assert rec.received == []


def test_bad_json_is_an_envelope(open_gw: Gateway) -> None:
    response = httpx.post(
        open_gw.server.base_url + "/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


# -- keys and workspaces


RESOLUTION_PATHS = ["create-document", "create-image", "tool_result", "stream", "count_tokens", "beta"]


def _call(client: anthropic.Anthropic, path: str, pdf: str, png: str) -> Any:
    if path == "create-document":
        return client.messages.create(model=MODEL, max_tokens=5, messages=user(doc(pdf)))
    if path == "create-image":
        return client.messages.create(model=MODEL, max_tokens=5, messages=user(image(png)))
    if path == "tool_result":
        messages: Any = [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [doc(pdf)]}],
            },
        ]
        return client.messages.create(model=MODEL, max_tokens=5, messages=messages)
    if path == "stream":
        with client.messages.stream(model=MODEL, max_tokens=5, messages=user(doc(pdf))) as stream:
            return stream.get_final_message()
    if path == "count_tokens":
        return client.messages.count_tokens(model=MODEL, messages=user(doc(pdf)))
    return client.beta.messages.create(
        model=MODEL, max_tokens=5, messages=user(doc(pdf)), betas=["files-api-2025-04-14"]
    )


@pytest.mark.parametrize("path", RESOLUTION_PATHS)
def test_keys_mode_resolves_only_the_callers_workspace(keys_gw: Gateway, rec: Recorder, path: str) -> None:
    a, b = keys_gw.client("a"), keys_gw.client("b")
    pdf_a, png_a = upload(a, "a.pdf", PDF, "application/pdf"), upload(a, "a.png", PNG, "image/png")
    pdf_b, png_b = upload(b, "b.pdf", PDF, "application/pdf"), upload(b, "b.png", PNG, "image/png")
    if path == "stream":
        rec.reply = lambda received: rec.gated_stream(stream_events())
        rec.gate.set()
    with pytest.raises(anthropic.NotFoundError) as caught:
        _call(a, path, pdf_b, png_b)  # another workspace's ids: as if they did not exist
    assert (pdf_b if path != "create-image" else png_b) in caught.value.message
    assert rec.received == []
    _call(a, path, pdf_a, png_a)
    sent = rec.last()
    assert sent.headers["x-api-key"] == UPSTREAM_KEY  # the gateway's key, never the client's
    assert keys_gw.keys["a"] not in json.dumps(sent.headers) and "authorization" not in sent.headers
    data = sent.json()["messages"][-1]["content"]
    block = data[0]["content"][0] if path == "tool_result" else data[0]
    assert base64.b64decode(block["source"]["data"]) == (PNG if path == "create-image" else PDF)


def test_keys_mode_refuses_a_bad_key_before_anything(keys_gw: Gateway, rec: Recorder) -> None:
    client = anthropic.Anthropic(api_key="not-a-key", base_url=keys_gw.server.base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model=MODEL, max_tokens=5, messages=user())
    assert rec.received == []


# -- what comes back


def test_upstream_errors_come_back_as_the_same_typed_errors(keys_gw: Gateway, rec: Recorder) -> None:
    envelope = {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
        "request_id": "req_up_429",
    }
    headers = {
        "request-id": "req_up_429", "retry-after": "7", "x-should-retry": "true",
        "anthropic-ratelimit-requests-remaining": "0", "x-internal-thing": "stays upstream",
    }  # fmt: skip
    rec.reply = lambda received: JSONResponse(envelope, status_code=429, headers=headers)
    with pytest.raises(anthropic.RateLimitError) as caught:
        keys_gw.client("a").messages.create(model=MODEL, max_tokens=5, messages=user())
    error = caught.value
    assert error.body == envelope and error.request_id == "req_up_429"
    assert error.response.headers["retry-after"] == "7"
    assert error.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "x-internal-thing" not in error.response.headers
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    rec.reply = lambda received: JSONResponse(overloaded, status_code=529)
    with pytest.raises(anthropic.OverloadedError):
        keys_gw.client("a").messages.count_tokens(model=MODEL, messages=user())


def test_citations_get_their_file_id_back(keys_gw: Gateway, rec: Recorder) -> None:
    client = keys_gw.client("a")
    text = upload(client, "cited.txt", TEXT.encode(), "text/plain")
    pdf = upload(client, "cited.pdf", PDF, "application/pdf")
    citations = [
        {"type": "char_location", "cited_text": "quick", "document_index": 0, "document_title": None,
         "start_char_index": 0, "end_char_index": 5, "file_id": None},
        {"type": "page_location", "cited_text": "p", "document_index": 2, "document_title": None,
         "start_page_number": 1, "end_page_number": 2},
        {"type": "char_location", "cited_text": "inline", "document_index": 1, "document_title": None,
         "start_char_index": 0, "end_char_index": 6, "file_id": None},
    ]  # fmt: skip
    rec.reply = lambda received: JSONResponse(message("cited", citations))
    inline = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "inline doc"},
    }
    reply = client.messages.create(model=MODEL, max_tokens=5, messages=user(doc(text), inline, doc(pdf)))
    got = reply.content[0].citations  # type: ignore[union-attr]
    assert got is not None
    assert [c.file_id for c in got] == [text, pdf, None]  # the inline document has no file


def test_streamed_citations_get_their_file_id_back(keys_gw: Gateway, rec: Recorder) -> None:
    client = keys_gw.client("a")
    pdf = upload(client, "cited.pdf", PDF, "application/pdf")
    citation = {"type": "page_location", "cited_text": "p", "document_index": 0, "document_title": "T",
                "start_page_number": 3, "end_page_number": 4, "file_id": None}  # fmt: skip
    rec.reply = lambda received: rec.gated_stream(stream_events(citation), {"request-id": "req_up_sse"})
    rec.gate.set()
    with client.messages.stream(model=MODEL, max_tokens=5, messages=user(doc(pdf))) as stream:
        seen = [e.citation.file_id for e in stream if e.type == "citation"]
        final = stream.get_final_message()
        assert stream.request_id == "req_up_sse"
    assert seen == [pdf]
    assert final.content[0].citations[0].file_id == pdf  # type: ignore[union-attr,index]


def test_events_arrive_before_the_upstream_has_finished(keys_gw: Gateway, rec: Recorder) -> None:
    rec.reply = lambda received: rec.gated_stream(stream_events())
    with keys_gw.client("a").messages.stream(model=MODEL, max_tokens=5, messages=user()) as stream:
        events = iter(stream)
        first = next(events)
        assert first.type == "message_start"
        assert not rec.gate.is_set() and not rec.finished.is_set()  # the upstream is still mid-stream
        rec.gate.set()
        rest = [e.type for e in events]
    assert "content_block_delta" in rest and rest[-1] == "message_stop"
    assert stream.get_final_message().content[0].text == "streamed"  # type: ignore[union-attr]


def test_a_client_disconnect_cancels_the_upstream_request(keys_gw: Gateway, rec: Recorder) -> None:
    rec.reply = lambda received: rec.gated_stream(stream_events())
    with keys_gw.client("a").messages.stream(model=MODEL, max_tokens=5, messages=user()) as stream:
        assert next(iter(stream)).type == "message_start"
    # The client has closed its connection; the gate is never opened.
    deadline = time.monotonic() + 15
    while not rec.cancelled.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rec.cancelled.is_set() and not rec.finished.is_set()


def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--memory", "--upstream", f"http://127.0.0.1:{free_port()}")
    try:
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url, max_retries=0)
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.create(model=MODEL, max_tokens=5, messages=user())
        assert caught.value.status_code == 502
        assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "api_error"
    finally:
        stop_server(server)


def test_silent_upstream_is_504_not_a_hang(recorder: Recorder, tmp_path: Path) -> None:
    recorder.reset()
    recorder.hang = True
    server = start_server(tmp_path, "--memory", "--upstream", recorder.url, "--upstream-timeout", "0.5")
    try:
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url, max_retries=0, timeout=30)
        with pytest.raises(anthropic.GatewayTimeoutError) as caught:
            client.messages.create(model=MODEL, max_tokens=5, messages=user())
        assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "timeout_error"
    finally:
        recorder.gate.set()
        stop_server(server)


def test_without_an_upstream_the_endpoints_say_how_to_turn_it_on(live_server: LiveServer) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=live_server.base_url, max_retries=0)
    with pytest.raises(anthropic.NotFoundError, match="--upstream"):
        client.messages.create(model=MODEL, max_tokens=5, messages=user())
    with pytest.raises(anthropic.NotFoundError, match="--upstream"):
        client.beta.messages.count_tokens(model=MODEL, messages=user())


# -- observability


def test_logs_console_and_metrics_show_files_never_bytes_or_keys(keys_gw: Gateway, rec: Recorder) -> None:
    client = keys_gw.client("a")
    secret_text = "TOP-SECRET-CONTENT-" + "x" * 20
    file_id = upload(client, "diary.txt", secret_text.encode(), "text/plain")
    client.messages.create(model=MODEL, max_tokens=5, messages=user(doc(file_id)))
    headers = {"x-api-key": keys_gw.keys["a"], "anthropic-version": "2023-06-01"}
    recent = httpx.get(keys_gw.server.base_url + "/v1/console/requests", headers=headers).json()["data"]
    call = [r for r in recent if r["path"] == "/v1/messages" and r["files"]][-1]
    assert call["files"][0]["id"] == file_id and call["files"][0]["filename"] == "diary.txt"
    assert (
        call["files"][0]["size_bytes"] == len(secret_text) and call["upstream_request_id"] == "req_upstream_1"
    )
    time.sleep(0.5)  # the log is flushed in batches
    log = keys_gw.server.log()
    assert file_id in log and '"diary.txt"' in log
    assert secret_text not in log and UPSTREAM_KEY not in log and keys_gw.keys["a"] not in log
    metrics = httpx.get(
        keys_gw.server.base_url + "/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("filesapi_gateway_")
    }
    assert samples['filesapi_gateway_resolved_files_total{kind="document"}'] >= 1
    assert samples["filesapi_gateway_resolved_bytes_total"] >= len(secret_text)
    assert samples['filesapi_gateway_requests_total{endpoint="messages",status="200"}'] >= 1
    assert samples['filesapi_gateway_upstream_seconds_count{endpoint="messages"}'] >= 1


# -- the built-in mock


def test_mock_lists_the_files_that_reached_the_model_call(mock_gw: Gateway) -> None:
    a, b = mock_gw.client("a"), mock_gw.client("b")
    pdf, text, png = (
        upload(a, "m.pdf", PDF, "application/pdf"),
        upload(a, "m.txt", TEXT.encode(), "text/plain"),
        upload(a, "m.png", PNG, "image/png"),
    )
    other = upload(b, "other.pdf", PDF, "application/pdf")
    messages = user(doc(pdf, citations={"enabled": True}), doc(text), image(png))
    reply = a.messages.create(model=MODEL, max_tokens=5, messages=messages)
    listing = reply.content[0].text  # type: ignore[union-attr]
    for name, media_type, data in (
        ("m.pdf", "application/pdf", PDF),
        ("m.txt", "text/plain", TEXT.encode()),
        ("m.png", "image/png", PNG),
    ):
        assert (
            f"{name} ({media_type}, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})" in listing
        )
    assert reply.content[1].citations[0].file_id == pdf  # type: ignore[union-attr,index]
    again = a.messages.create(model=MODEL, max_tokens=5, messages=messages)
    assert again.model_dump() == reply.model_dump()  # deterministic
    with a.messages.stream(model=MODEL, max_tokens=5, messages=messages) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].text == listing  # type: ignore[union-attr]
    assert streamed.content[1].citations[0].file_id == pdf  # type: ignore[union-attr,index]
    beta = a.beta.messages.create(
        model=MODEL, max_tokens=5, messages=user(doc(text)), betas=["files-api-2025-04-14"]
    )
    assert "m.txt (text/plain" in beta.content[0].text  # type: ignore[union-attr]
    counted = a.messages.count_tokens(model=MODEL, messages=user(doc(pdf)))
    assert counted.input_tokens == a.messages.count_tokens(model=MODEL, messages=user(doc(pdf))).input_tokens
    assert counted.input_tokens > len(PDF) // 4  # the file's bytes count
    with pytest.raises(anthropic.NotFoundError):
        a.messages.create(model=MODEL, max_tokens=5, messages=user(doc(other)))
    with pytest.raises(anthropic.BadRequestError, match="model"):
        a.messages.create(model="", max_tokens=5, messages=user())


@pytest.mark.parametrize("path", RESOLUTION_PATHS)
def test_mock_resolves_only_the_callers_workspace(mock_gw: Gateway, path: str) -> None:
    a, b = mock_gw.client("a"), mock_gw.client("b")
    pdf_a, png_a = upload(a, "a.pdf", PDF, "application/pdf"), upload(a, "a.png", PNG, "image/png")
    pdf_b, png_b = upload(b, "b.pdf", PDF, "application/pdf"), upload(b, "b.png", PNG, "image/png")
    with pytest.raises(anthropic.NotFoundError):
        _call(a, path, pdf_b, png_b)
    reply = _call(a, path, pdf_a, png_a)
    if path == "count_tokens":
        assert reply.input_tokens > len(PNG if path == "create-image" else PDF) // 4
    else:
        name = "a.png" if path == "create-image" else "a.pdf"
        assert f"{name} (" in reply.content[0].text and "b.pdf" not in reply.content[0].text
