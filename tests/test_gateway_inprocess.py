"""Gateway edge cases in-process (httpx's ASGI transport against the app, the recording upstream on
a loopback port): corrupt stored bytes mid-resolution, text that is not UTF-8, settings from env."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import GA_HEADERS
from filesapi.app import build_app, open_state
from filesapi.config import Settings
from filesapi.gateway import GatewayConfig
from gateway_upstream import Recorder, start_recorder, stop_recorder


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    running = start_recorder()
    yield running.recorder
    stop_recorder(running)


@pytest.fixture
async def http(recorder: Recorder, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    recorder.reset()
    async with open_state(Settings(data_dir=tmp_path / "data", inline_max_size=0)) as state:
        app = build_app(state, gateway=GatewayConfig(upstream=recorder.url))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=GA_HEADERS) as client:
            client.state = state  # type: ignore[attr-defined]
            yield client


def _doc(file_id: str) -> dict[str, object]:
    content = [
        {"type": "document", "source": {"type": "file", "file_id": file_id}},
        {"type": "text", "text": "x"},
    ]
    return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}


async def _upload(http: httpx.AsyncClient, name: str, data: bytes, media_type: str) -> str:
    response = await http.post("/v1/files", files={"file": (name, data, media_type)})
    file_id: str = response.json()["id"]
    return file_id


async def test_corrupt_stored_bytes_abort_the_upstream_request(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    pdf = b"%PDF-1.4\n" + b"\x02" * 3_000_000
    file_id = await _upload(http, "c.pdf", pdf, "application/pdf")
    path = await http.state.service.blobs.send_path(file_id)  # type: ignore[attr-defined]  # a hard link
    assert path is not None
    Path(path).write_bytes(pdf[:-1] + b"\x03")  # same size, other bytes
    response = await http.post("/v1/messages", json=_doc(file_id))
    assert response.status_code == 500 and response.json()["error"]["type"] == "api_error"
    assert "checksum" in response.json()["error"]["message"]
    for received in recorder.received:  # the upstream never got a complete body
        assert base64.b64encode(pdf[:-1] + b"\x03") not in received.body
    sent_before = len(recorder.received)
    again = await http.post("/v1/messages", json=_doc(file_id))  # quarantined now: refused up front
    assert again.status_code == 500 and len(recorder.received) == sent_before


async def test_text_that_is_not_utf8_is_a_400(http: httpx.AsyncClient, recorder: Recorder) -> None:
    file_id = await _upload(http, "latin1.txt", "caf\xe9".encode("latin-1"), "text/plain")
    response = await http.post("/v1/messages", json=_doc(file_id))
    assert response.status_code == 400 and "not UTF-8" in response.json()["error"]["message"]
    assert recorder.received == []


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"FILESAPI_UPSTREAM": "mock", "FILESAPI_UPSTREAM_KEY": "k", "FILESAPI_UPSTREAM_MAX_REQUEST": "5MB"}
    )
    assert (settings.upstream, settings.upstream_key, settings.upstream_max_request) == (
        "mock",
        "k",
        5_000_000,
    )
    assert "upstream_key" not in repr(settings)  # the key never shows in a repr or log line
    with pytest.raises(ValueError, match="--upstream"):
        Settings(upstream="ftp://example")


async def test_text_is_measured_by_its_escaped_length_not_as_base64(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.reset()
    limit = 1_000_000
    async with open_state(Settings(data_dir=tmp_path / "data")) as state:
        app = build_app(state, gateway=GatewayConfig(upstream=recorder.url, max_request=limit))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=GA_HEADERS) as http:
            fits = await _upload(http, "fits.txt", b"a" * 900_000, "text/plain")  # base64 would not fit
            assert (await http.post("/v1/messages", json=_doc(fits))).status_code == 200
            assert len(recorder.last().body) <= limit
            quoted = await _upload(http, "quotes.txt", b'"' * 600_000, "text/plain")  # escaped: 1.2 MB
            response = await http.post("/v1/messages", json=_doc(quoted))
            assert response.status_code == 413 and response.json()["error"]["type"] == "request_too_large"
            assert len(recorder.received) == 1
