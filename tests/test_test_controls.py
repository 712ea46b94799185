"""Test controls (--test-controls) and the request journal, against real server processes and the
official Python SDK: fault rules, the x-filesapi-fault header, the movable clock, and one journal,
one rule set and one clock shared by every worker of a --workers 2 server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import LiveServer

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


def admin(server: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server.base_url + path, headers=HEADERS, timeout=30, **kwargs)


def arm(server: LiveServer, **rule: Any) -> dict[str, Any]:
    response = admin(server, "POST", "/v1/admin/faults", json=rule)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def journal(server: LiveServer, **params: Any) -> list[dict[str, Any]]:
    response = admin(server, "GET", "/v1/admin/requests", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def sdk(server: LiveServer, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="test-key", **kwargs)


@pytest.fixture
def server(server_factory: Any) -> LiveServer:
    started: LiveServer = server_factory("--memory", "--test-controls", "--sweep-interval", "0.2")
    return started


def test_default_retries_ride_through_two_529s_and_the_journal_shows_three_attempts(
    server: LiveServer,
) -> None:
    rule = arm(server, operation="upload", status=529, times=2)
    with sdk(server) as client:
        uploaded = client.files.upload(file=("a.txt", b"hello", "text/plain"))
    attempts = list(reversed(journal(server, operation="upload")))
    assert [a["status"] for a in attempts] == [529, 529, 200]
    assert [a["fault"] for a in attempts] == [rule["id"], rule["id"], None]
    assert [a["error_type"] for a in attempts] == ["overloaded_error", "overloaded_error", None]
    assert all(a["sdk"]["language"] == "python" and a["sdk"]["package_version"] for a in attempts)
    assert [a["sdk"]["retry_count"] for a in attempts] == [0, 1, 2]
    assert attempts[2]["upload"] == {
        "filename": "a.txt",
        "size": 5,
        "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "crc32c": attempts[2]["upload"]["crc32c"],
    }
    assert uploaded.size_bytes == 5
    listed = admin(server, "GET", "/v1/admin/faults").json()["data"]
    assert [(r["id"], r["hits"], r["remaining"]) for r in listed] == [(rule["id"], 2, 0)]
    assert all("test-key" not in str(a) for a in attempts)  # the key is shown redacted


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (529, anthropic.OverloadedError, "overloaded_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (503, anthropic.ServiceUnavailableError, "api_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
    ],
)
def test_without_retries_the_sdk_raises_the_typed_error(
    server: LiveServer, status: int, error: type[Exception], error_type: str
) -> None:
    arm(server, operation="list", status=status)
    with sdk(server, max_retries=0) as client, pytest.raises(error) as raised:
        client.files.list()
    response = raised.value.response  # type: ignore[attr-defined]
    assert response.json()["error"]["type"] == error_type
    assert response.json()["request_id"] == response.headers["request-id"]
    assert ("retry-after" in response.headers) == (status in (429, 503, 529))


def test_retry_after_is_honoured(server: LiveServer) -> None:
    arm(server, operation="list", status=429, times=1, retry_after_seconds=3)
    with sdk(server) as client:
        client.files.list()
    refused, served = list(reversed(journal(server, operation="list")))
    assert (refused["status"], served["status"]) == (429, 200)
    # The SDK's own first backoff is under a second; it waited the 3 seconds the server asked for.
    waited = (served["started_us"] - refused["started_us"]) / 1e6 - refused["duration_ms"] / 1000
    assert waited >= 2.9


def test_a_truncated_download_is_detected(server: LiveServer) -> None:
    with sdk(server, max_retries=0) as client:
        uploaded = client.files.upload(file=("big.bin", b"x" * 100_000, "application/octet-stream"))
        arm(server, operation="download", truncate_after_bytes=1000, times=1)
        # The headers promise 100,000 bytes: the Python SDK reads the body as part of the call and
        # reports the short one as APIConnectionError, caused by the transport's RemoteProtocolError
        # (with retries on, it would retry the download).
        with pytest.raises(anthropic.APIConnectionError) as raised:
            client.files.download(uploaded.id).read()
        assert type(raised.value.__cause__).__name__ == "RemoteProtocolError"
        assert "complete message body" in str(raised.value.__cause__)
        assert client.files.download(uploaded.id).read() == b"x" * 100_000  # the rule was used up
    entry = journal(server, operation="download")[-1]
    assert (entry["status"], entry["bytes_out"]) == (200, 1000)


def test_a_disconnect_is_a_connection_error_and_default_retries_ride_through_it(server: LiveServer) -> None:
    rule = arm(server, operation="list", disconnect=True, times=2)
    with sdk(server, max_retries=0) as client, pytest.raises(anthropic.APIConnectionError):
        client.files.list()
    with sdk(server) as client:
        assert client.files.list().data == []
    statuses = [e["status"] for e in reversed(journal(server, operation="list"))]
    assert statuses == [None, None, 200]  # no answer at all for the two that hit the rule
    assert admin(server, "GET", "/v1/admin/faults").json()["data"][0]["hits"] == 2 == rule["times"]


def test_a_delay_past_the_sdk_timeout_is_the_sdk_timeout_error(server: LiveServer) -> None:
    arm(server, operation="retrieve", delay_ms=2000)
    with sdk(server, max_retries=0, timeout=0.5) as client, pytest.raises(anthropic.APITimeoutError):
        client.files.retrieve_metadata("file_011ngdqPKvKnuZD5F3TtAmv7")


def test_the_fault_header_applies_to_one_request(server: LiveServer) -> None:
    with sdk(server, max_retries=0) as client:
        with pytest.raises(anthropic.OverloadedError):
            client.files.list(extra_headers={"x-filesapi-fault": "status=529"})
        assert client.files.list().data == []
    bad = httpx.get(server.base_url + "/v1/files", headers={**HEADERS, "x-filesapi-fault": "stauts=529"})
    assert bad.status_code == 400 and "stauts" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"operation": "upload", "stauts": 529}, "stauts"),
        ({"operation": "uplaod", "status": 529}, "operation"),
        ({"operation": "upload", "status": 418}, "status"),
        ({"operation": "upload", "status": 529, "delay_ms": 5}, "exactly one action"),
        ({"operation": "upload", "probability": 2, "status": 529}, "probability"),
        ({"operation": "list", "truncate_after_bytes": 5}, "truncate_after_bytes"),
        ({"operation": "list", "status": 529, "workspace": "no-such-workspace"}, "workspace"),
    ],
)
def test_a_typo_never_arms_nothing(server: LiveServer, rule: dict[str, Any], named: str) -> None:
    response = admin(server, "POST", "/v1/admin/faults", json=rule)
    assert response.status_code == 400 and named in response.json()["error"]["message"]
    assert admin(server, "GET", "/v1/admin/faults").json()["data"] == []


def test_seeded_probability_is_reproducible_and_rules_can_be_deleted(server: LiveServer) -> None:
    def run() -> list[int]:
        rule = arm(server, operation="list", status=500, probability=0.5, seed=7)
        statuses = [httpx.get(server.base_url + "/v1/files", headers=HEADERS).status_code for _ in range(16)]
        assert admin(server, "DELETE", f"/v1/admin/faults/{rule['id']}").status_code == 200
        return statuses

    first, second = run(), run()
    assert first == second and 200 in first and 500 in first
    assert admin(server, "DELETE", "/v1/admin/faults/fault_nope").status_code == 404


def test_the_clock_expires_files_and_the_next_sweep_frees_their_bytes(server: LiveServer) -> None:
    uploaded = httpx.post(
        server.base_url + "/v1/files",
        headers=HEADERS,
        files={"file": ("soon.txt", b"expiring bytes")},
        data={"expires_in_seconds": "3600"},
    ).json()
    before = admin(server, "GET", "/v1/admin/clock").json()
    assert before["offset_seconds"] == 0
    assert admin(server, "POST", "/v1/admin/clock", json={"advance_seconds": -5}).status_code == 400
    moved = admin(server, "POST", "/v1/admin/clock", json={"advance_seconds": 3601}).json()
    assert moved["offset_seconds"] == 3601 and moved["now"] > uploaded["expires_at"]
    with sdk(server, max_retries=0) as client:
        with pytest.raises(anthropic.NotFoundError) as raised:
            client.files.download(uploaded["id"])
        assert raised.value.body["error"]["details"]["error_code"] == "file_expired"  # type: ignore[index]
        later = client.files.upload(file=("later.txt", b"new"))
        assert later.created_at.timestamp() > time.time() + 3500  # new files are made at the clock's time
        assert later.id > uploaded["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the sweeper runs every 0.2 s here
        storage = admin(server, "GET", "/v1/console/storage").json()
        if storage["total"]["bytes"] == 3:  # only later.txt's
            break
        time.sleep(0.1)
    assert storage["total"]["bytes"] == 3


def test_without_test_controls_there_are_none(server_factory: Any) -> None:
    plain: LiveServer = server_factory("--memory")
    for path in ("/v1/admin/faults", "/v1/admin/clock"):
        assert admin(plain, "GET", path).status_code == 404
    fault = httpx.get(plain.base_url + "/v1/files", headers={**HEADERS, "x-filesapi-fault": "status=529"})
    assert fault.status_code == 200
    assert (
        admin(plain, "GET", "/v1/admin/requests", params={"operation": "list"}).json()["data"][0]["status"]
        == 200
    )


def test_journal_filters_cursor_and_unknown_parameters(server: LiveServer) -> None:
    for _ in range(5):
        httpx.get(server.base_url + "/v1/files", headers=HEADERS)
    httpx.get(server.base_url + "/v1/files/file_011ngdqPKvKnuZD5F3TtAmv7", headers=HEADERS)
    page = admin(server, "GET", "/v1/admin/requests", params={"operation": "list", "limit": 3}).json()
    assert len(page["data"]) == 3 and page["has_more"]
    rest = journal(server, operation="list", before=page["last_id"])
    assert len(rest) == 2 and {e["request_id"] for e in rest}.isdisjoint(
        e["request_id"] for e in page["data"]
    )
    assert [e["operation"] for e in journal(server, status=404)] == ["retrieve"]
    assert journal(server, method="get", operation="retrieve")[0]["status"] == 404
    assert journal(server, since="2100-01-01T00:00:00Z") == []
    assert len(journal(server, request_id=rest[0]["request_id"])) == 1
    bad = admin(server, "GET", "/v1/admin/requests", params={"opration": "list"})
    assert bad.status_code == 400 and "opration" in bad.json()["error"]["message"]
    assert admin(server, "GET", "/v1/admin/requests", params={"limit": 1001}).status_code == 400
    assert admin(server, "DELETE", "/v1/admin/requests").status_code == 200
    assert journal(server, operation="list") == []


def test_workers_share_rules_clock_and_journal(server_factory: Any) -> None:
    server: LiveServer = server_factory("--workers", "2", "--test-controls")
    admin(server, "DELETE", "/v1/admin/requests")

    def fresh_get(path: str) -> httpx.Response:  # a new connection each: either worker may answer
        return httpx.get(server.base_url + path, headers=HEADERS)

    # A rule with three hits gives three hits for the whole server, whichever worker answers.
    arm(server, operation="list", status=503, times=3)
    statuses = [fresh_get("/v1/files").status_code for _ in range(40)]
    assert statuses.count(503) == 3 and statuses.count(200) == 37
    # An unlimited rule holds in every worker.
    arm(server, operation="retrieve", status=529)
    assert {fresh_get("/v1/files/file_011ngdqPKvKnuZD5F3TtAmv7").status_code for _ in range(20)} == {529}
    # The clock too.
    admin(server, "POST", "/v1/admin/clock", json={"advance_seconds": 7200})
    assert {admin(server, "GET", "/v1/admin/clock").json()["offset_seconds"] for _ in range(20)} == {7200}
    # And the journal is complete: every request of either worker, once.
    lists = journal(server, operation="list", limit=1000)
    retrieves = journal(server, operation="retrieve", limit=1000)
    assert (len(lists), len(retrieves)) == (40, 20)
    assert len({e["request_id"] for e in lists + retrieves}) == 60
    workers = {e["worker"] for e in lists + retrieves}
    assert len(workers) == 2, "both workers should have answered some of 60 fresh connections"
    assert {e["worker"] for e in retrieves if e["status"] == 529} == {e["worker"] for e in retrieves}
    clocks = journal(server, operation="admin", method="GET", limit=1000)
    assert len({e["worker"] for e in clocks}) >= 1


def test_cli_faults_and_requests(server: LiveServer) -> None:
    from click.testing import CliRunner

    from filesapi.cli import main

    runner = CliRunner()
    where = ["--base-url", server.base_url, "--api-key", "test-key"]
    added = runner.invoke(main, ["faults", "add", "operation=list", "status=503", "times=1", *where])
    assert added.exit_code == 0, added.output
    rule = json.loads(added.output)
    assert (rule["status"], rule["times"], rule["retry_after_seconds"]) == (503, 1, 1)
    typo = runner.invoke(main, ["faults", "add", "operation=list", "stauts=503", *where])
    assert typo.exit_code != 0 and "stauts" in typo.output
    listed = runner.invoke(main, ["faults", "ls", *where])
    assert rule["id"] in listed.output and "status=503" in listed.output and "1 left" in listed.output
    assert httpx.get(server.base_url + "/v1/files", headers=HEADERS).status_code == 503
    table = runner.invoke(main, ["requests", "--operation", "list", *where])
    assert table.exit_code == 0 and " 503 GET" in table.output and rule["id"] in table.output
    as_json = runner.invoke(main, ["requests", "--operation", "list", "--json", *where])
    assert [json.loads(line)["status"] for line in as_json.output.splitlines()] == [503]
    assert runner.invoke(main, ["faults", "clear", *where]).exit_code == 0
    assert json.loads(runner.invoke(main, ["faults", "ls", "--json", *where]).output or "null") is None


TYPESCRIPT = Path(__file__).resolve().parent.parent / "conformance" / "typescript"


def test_typescript_sdk_against_the_test_controls(server: LiveServer) -> None:
    """conformance/typescript/controls.mjs with the pinned @anthropic-ai/sdk 1.16.0 (installed by
    `npm ci` there, as conformance/run.py does)."""
    if shutil.which("node") is None or not (TYPESCRIPT / "node_modules" / "sdk-1.16.0").exists():
        pytest.skip("needs node and `npm ci` in conformance/typescript")
    run = subprocess.run(
        ["node", "controls.mjs", "sdk-1.16.0"],
        cwd=TYPESCRIPT,
        env={**os.environ, "FILESAPI_BASE_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = {
        line.split(" ", 2)[1]: json.loads(line.split(" ", 2)[2])
        for line in run.stdout.splitlines()
        if line.startswith("RESULT ")
    }
    assert results["retries"] == [[529, "js", 0], [529, "js", 1], [200, "js", 2]]
    assert [results[f"typed_{s}"]["raised"] for s in (529, 429, 503)] == [
        "OverloadedError",
        "RateLimitError",
        "ServiceUnavailableError",
    ]
    # The TypeScript SDK hands the download's body over as a stream: the short body surfaces
    # when it is read, as undici's TypeError "terminated" (cause: "other side closed").
    assert (
        results["truncated"]["raised"] == "TypeError" and results["truncated"]["cause"] == "other side closed"
    )
    assert results["disconnect"]["raised"] == "APIConnectionError"
    assert results["timeout"]["raised"] == "APIConnectionTimeoutError"


def test_messages_faults_with_the_gateway(server_factory: Any) -> None:
    server: LiveServer = server_factory("--memory", "--test-controls", "--upstream", "mock")
    arm(server, operation="messages", status=529, times=1)
    with sdk(server) as client:
        reply = client.messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.content
    statuses = [e["status"] for e in reversed(journal(server, operation="messages"))]
    assert statuses == [529, 200]
