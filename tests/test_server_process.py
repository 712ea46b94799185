"""Through the real server process: restarts lose nothing, 1 GiB round trips, the CLI."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import GA_HEADERS, LiveServer, start_server, stop_server


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "filesapi", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def _upload(base_url: str, data: bytes, name: str, headers: dict[str, str] = GA_HEADERS) -> dict:
    response = httpx.post(base_url + "/v1/files", files={"file": (name, data)}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_restart_loses_nothing_acknowledged(tmp_path: Path, how: signal.Signals) -> None:
    data_dir = tmp_path / "data"
    server = start_server(tmp_path, "--data-dir", str(data_dir))
    files = {}
    for i in range(20):
        payload = os.urandom(1000 + i * 5000)
        files[_upload(server.base_url, payload, f"f{i}.bin")["id"]] = payload
    deleted = list(files)[:3]
    for file_id in deleted:
        assert httpx.delete(f"{server.base_url}/v1/files/{file_id}", headers=GA_HEADERS).status_code == 200
    # SIGKILL hits the whole server (granian's main process and its worker) with no chance to flush.
    if how == signal.SIGKILL:
        subprocess.run(["pkill", "-KILL", "-P", str(server.process.pid)], check=False)
    server.process.send_signal(how)
    server.process.wait(timeout=20)

    again = start_server(tmp_path, "--data-dir", str(data_dir))
    try:
        listed = httpx.get(again.base_url + "/v1/files?limit=100", headers=GA_HEADERS).json()["data"]
        assert {f["id"] for f in listed} == set(files) - set(deleted)
        for file_id, payload in files.items():
            response = httpx.get(f"{again.base_url}/v1/files/{file_id}/content", headers=GA_HEADERS)
            if file_id in deleted:
                assert response.status_code == 404
            else:
                assert response.content == payload
    finally:
        stop_server(again)


def _worker_rss_mb(server: LiveServer) -> float:
    """Resident memory of the server's processes (granian main + worker), in MB."""
    out = subprocess.run(
        ["ps", "-o", "rss=", "--ppid", str(server.process.pid)], capture_output=True, text=True
    )
    children = sum(int(x) for x in out.stdout.split())
    own = int(
        subprocess.run(
            ["ps", "-o", "rss=", "-p", str(server.process.pid)], capture_output=True, text=True
        ).stdout.strip()
        or 0
    )
    return max(children, own) / 1024


@pytest.mark.slow
def test_one_gib_round_trip_through_the_server(tmp_path: Path) -> None:
    size = 1 << 30
    server = start_server(tmp_path, "--max-file-size", "2GiB")
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _worker_rss_mb(server))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        block = os.urandom(1 << 20)
        sent = hashlib.blake2b()

        def body():
            boundary_head = (
                b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n"
            )
            yield boundary_head
            for i in range(size >> 20):
                chunk = i.to_bytes(8, "big") + block[8:]  # every MiB differs
                sent.update(chunk)
                yield chunk
            yield b"\r\n--bnd--\r\n"

        headers = GA_HEADERS | {"content-type": "multipart/form-data; boundary=bnd"}
        response = httpx.post(server.base_url + "/v1/files", content=body(), headers=headers, timeout=600)
        assert response.status_code == 200, response.text
        meta = response.json()
        assert meta["size_bytes"] == size

        received = hashlib.blake2b()
        total = 0
        with httpx.stream(
            "GET", f"{server.base_url}/v1/files/{meta['id']}/content", headers=GA_HEADERS, timeout=600
        ) as download:
            assert download.status_code == 200
            assert download.headers["content-length"] == str(size)
            for chunk in download.iter_bytes(1 << 20):
                received.update(chunk)
                total += len(chunk)
        assert total == size
        assert received.digest() == sent.digest()
    finally:
        stop.set()
        sampler.join()
        stop_server(server)
    # Streaming, not buffering: the server never holds a sizeable part of the GiB in memory.
    assert peak[0] < 250, f"server RSS peaked at {peak[0]:.0f} MB during a 1 GiB round trip"


def test_keys_cli_and_keys_auth(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = _cli("keys", "create", "--workspace", "team-a", "--label", "ci", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    key_a = created.stdout.strip().splitlines()[-1]
    assert key_a.startswith("sk-fapi-")
    key_b = (
        _cli("keys", "create", "--workspace", "team-b", "--data-dir", data).stdout.strip().splitlines()[-1]
    )
    listing = _cli("keys", "list", "--data-dir", data).stdout
    assert "team-a" in listing and "team-b" in listing and "active" in listing
    assert key_a not in listing and key_a.split("-")[-1] not in listing  # never the secret

    server = start_server(tmp_path, "--data-dir", data, "--auth", "keys")
    try:
        headers_a = {"x-api-key": key_a, "anthropic-version": "2023-06-01"}
        headers_b = {"authorization": f"Bearer {key_b}", "anthropic-version": "2026-10-21"}
        file_a = _upload(server.base_url, b"secret of a", "a.txt", headers_a)["id"]
        for method, path in [("GET", ""), ("GET", "/content"), ("DELETE", "")]:
            response = httpx.request(method, f"{server.base_url}/v1/files/{file_a}{path}", headers=headers_b)
            assert response.status_code == 404
        assert httpx.get(server.base_url + "/v1/files", headers=headers_b).json()["data"] == []
        assert [
            f["id"] for f in httpx.get(server.base_url + "/v1/files", headers=headers_a).json()["data"]
        ] == [file_a]
        # A GA cursor made for workspace A is useless in B.
        _upload(server.base_url, b"second", "b.txt", headers_a)
        cursor = httpx.get(server.base_url + "/v1/files?limit=1", headers=headers_a).json()["next_page"]
        assert (
            httpx.get(server.base_url + "/v1/files", params={"page": cursor}, headers=headers_b).status_code
            == 400
        )
        bad = {
            "x-api-key": key_a[:-1] + ("x" if key_a[-1] != "x" else "y"),
            "anthropic-version": "2023-06-01",
        }
        assert httpx.get(server.base_url + "/v1/files", headers=bad).status_code == 401
        assert (
            httpx.get(
                server.base_url + "/v1/files", headers={**headers_a, "x-api-key": "anything"}
            ).status_code
            == 401
        )

        key_id = key_a.split("-")[2]
        revoked = _cli("keys", "revoke", key_id, "--data-dir", data)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(server.base_url + "/v1/files", headers=headers_a).status_code == 401
        assert "revoked" in _cli("keys", "list", "--data-dir", data).stdout
        assert _cli("keys", "revoke", key_id, "--data-dir", data).returncode == 1
    finally:
        stop_server(server)


def test_db_commands_and_out_of_date_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # A database with content but no migration history (an older, pre-Alembic layout).
    with sqlite3.connect(data / "metadata.db") as conn:
        conn.execute("CREATE TABLE legacy (x)")
    current = _cli("db", "current", "--data-dir", str(data))
    assert current.returncode == 2 and "current: none" in current.stdout
    refused = _cli("serve", "--data-dir", str(data), "--port", "1")
    assert refused.returncode == 1
    assert "filesapi db upgrade" in refused.stderr
    upgraded = _cli("db", "upgrade", "--data-dir", str(data))
    assert upgraded.returncode == 0, upgraded.stderr
    assert _cli("db", "current", "--data-dir", str(data)).returncode == 0


def test_open_auth_refuses_a_public_address() -> None:
    refused = _cli("serve", "--memory", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 1
    assert "--auth keys" in refused.stderr


def test_help_explains_every_flag() -> None:
    out = _cli("serve", "--help").stdout
    for flag in [
        "--host",
        "--port",
        "--data-dir",
        "--memory",
        "--auth",
        "--max-file-size",
        "--workspace-quota",
        "--profile",
        "--inline-max-size",
        "FILESAPI_MAX_FILE_SIZE",
    ]:
        assert flag in out


def test_env_vars_configure_the_server(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, "--memory", env={"FILESAPI_MAX_FILE_SIZE": "1KB", "FILESAPI_PROFILE": "hosted"}
    )
    try:
        body = _upload(server.base_url, b"x" * 1000, "ok.txt")
        assert body["downloadable"] is False
        too_big = httpx.post(
            server.base_url + "/v1/files", files={"file": ("big", b"x" * 1001)}, headers=GA_HEADERS
        )
        assert too_big.status_code == 413
    finally:
        stop_server(server)


def test_workers_auto_is_one_per_core_on_disk_and_one_in_memory(server_factory) -> None:
    from filesapi.config import available_cores

    on_disk = server_factory("--workers", "auto")
    cores = available_cores()
    assert f"; {cores} worker{'s' if cores > 1 else ''})" in on_disk.log()
    assert f"Spawning worker-{cores} " in on_disk.log() and f"worker-{cores + 1} " not in on_disk.log()
    in_memory = server_factory("--workers", "auto", "--memory")
    assert "; 1 worker)" in in_memory.log()
    assert httpx.get(in_memory.base_url + "/v1/files", headers=GA_HEADERS).status_code == 200


def test_workers_auto_from_the_environment() -> None:
    from filesapi.config import Settings, available_cores

    assert Settings.from_env({"FILESAPI_WORKERS": "auto"}).workers == min(64, available_cores())
    assert Settings.from_env({"FILESAPI_WORKERS": "AUTO", "FILESAPI_MEMORY": "true"}).workers == 1
    assert Settings.from_env({"FILESAPI_WORKERS": "3"}).workers == 3
