"""Metrics, structured access logs, and what they must never contain."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from conftest import BETA_HEADERS, GA_HEADERS, Api, start_server, stop_server
from filesapi.controls.journal import JournalQuery
from filesapi.logs import JsonFormatter


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in metrics")


async def test_metrics_count_requests_bytes_and_storage(api: Api) -> None:
    await api.upload(b"x" * 1234, "a.bin")
    await api.http.get("/v1/files", headers=BETA_HEADERS)
    await api.http.get("/v1/files/file_missing")
    body = (await api.http.get("/metrics")).text
    assert (
        _metric(body, "filesapi_requests_total", route="/v1/files", method="POST", dialect="ga", status="200")
        == 1
    )
    assert (
        _metric(
            body, "filesapi_requests_total", route="/v1/files", method="GET", dialect="beta", status="200"
        )
        == 1
    )
    assert _metric(body, "filesapi_requests_total", route="/v1/files/{file_id}", status="404") == 1
    assert _metric(body, "filesapi_received_bytes_total") > 1234
    assert _metric(body, "filesapi_workspace_files", workspace="default") == 1
    assert _metric(body, "filesapi_workspace_bytes", workspace="default") == 1234
    assert _metric(body, "filesapi_request_duration_seconds_count", route="/v1/files", method="POST") == 1


async def test_access_log_is_structured_and_never_holds_a_key(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-fapi-SECRETSECRETSECRET"
    with caplog.at_level(logging.INFO, logger="filesapi.access"):
        response = await api.upload(b"abc", headers={"x-api-key": secret, "anthropic-version": "2023-06-01"})
    records = [r for r in caplog.records if r.name == "filesapi.access"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == response.headers["request-id"]
    assert (line["method"], line["route"], line["status"], line["workspace"]) == (
        "POST",
        "/v1/files",
        200,
        "default",
    )
    assert line["bytes_in"] > 3 and line["bytes_out"] == len(response.content)
    assert line["duration_ms"] > 0
    assert secret not in json.dumps(line) and secret not in caplog.text


async def test_every_request_is_in_the_journal(api: Api) -> None:
    journal = api.http._transport.app.journal  # type: ignore[attr-defined]
    await api.http.get("/v1/files", headers={"user-agent": "Anthropic/Python 2.12.0"})
    journal.flush()
    entries, _ = journal.entries(JournalQuery(limit=5))
    assert entries[0]["path"] == "/v1/files" and entries[0]["user_agent"] == "Anthropic/Python 2.12.0"
    assert entries[0]["operation"] == "list"


def test_server_logs_one_json_line_per_request(tmp_path) -> None:
    server = start_server(tmp_path, "--memory", "--log-format", "json")
    try:
        response = httpx.get(
            server.base_url + "/v1/files",
            headers={"x-api-key": "k-secret-123", "anthropic-version": "2023-06-01"},
        )
    finally:
        stop_server(server)
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{") and '"request_id"' in x]
    ours = [x for x in lines if x["request_id"] == response.headers["request-id"]]
    assert len(ours) == 1 and ours[0]["status"] == 200 and ours[0]["route"] == "/v1/files"
    assert "k-secret-123" not in server.log()


async def test_openapi_document_and_docs_page(api: Api) -> None:
    from starlette.routing import Route

    from filesapi.http.routes import routes

    document = (await api.http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    # The Messages gateway's endpoints are the Messages API's (docs/gateway.md), not this document's.
    internal = {
        "/metrics",
        "/openapi.json",
        "/docs",
        "/v1/admin/reset",
        "/v1/messages",
        "/v1/messages/count_tokens",
    }
    served = {r.path for r in routes if isinstance(r, Route)} - internal
    assert served == set(document["paths"])
    for path, operations in document["paths"].items():
        route = next(r for r in routes if isinstance(r, Route) and r.path == path)
        assert {m.upper() for m in operations} <= route.methods
    page = await api.http.get("/docs")
    assert page.status_code == 200 and "/v1/files/{file_id}/content" in page.text
    assert "style-src 'unsafe-inline'" in page.headers["content-security-policy"]
    assert "sandbox" in (await api.http.get("/v1/files")).headers["content-security-policy"]


async def test_405_lists_every_method_of_the_path(api: Api) -> None:
    response = await api.http.request("PUT", "/v1/files")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


def test_one_scrape_reports_every_worker(server_factory) -> None:
    server = server_factory("--workers", "2")
    sizes = [100, 200, 300]
    for size in sizes:
        response = httpx.post(
            server.base_url + "/v1/files", files={"file": ("f", b"x" * size)}, headers=GA_HEADERS
        )
        assert response.status_code == 200
    gets = 40
    for _ in range(gets):  # each on a new connection: the workers share them
        assert httpx.get(server.base_url + "/v1/files", headers=GA_HEADERS).status_code == 200
    # Whichever worker answers a scrape, it reports the requests of both, and the storage once.
    for _ in range(6):
        body = httpx.get(server.base_url + "/metrics").text
        ga = {"route": "/v1/files", "dialect": "ga", "status": "200"}
        assert _metric(body, "filesapi_requests_total", method="GET", **ga) == gets
        assert _metric(body, "filesapi_requests_total", method="POST", **ga) == len(sizes)
        assert (
            _metric(body, "filesapi_request_duration_seconds_count", route="/v1/files", method="GET") == gets
        )
        assert _metric(body, "filesapi_workspace_files", workspace="default") == len(sizes)
        assert _metric(body, "filesapi_workspace_bytes", workspace="default") == sum(sizes)
        assert body.count('filesapi_workspace_bytes{workspace="default"}') == 1
    assert "Traceback" not in server.log()
