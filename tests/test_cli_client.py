"""The CLI as a client: upload, ls, stat, download, rm against a live server, failures included."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import LiveServer, free_port


def cli(
    server_url: str, *args: str, key: str | None = "k", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["ANTHROPIC_BASE_URL"] = server_url
    if key is not None:
        env["ANTHROPIC_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "filesapi", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_round_trip_with_a_large_file(server_factory, tmp_path: Path) -> None:
    server: LiveServer = server_factory("--memory")
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for i in range(24):
            handle.write(os.urandom(1 << 20) if i % 5 == 0 else bytes([i]) * (1 << 20))
    small = tmp_path / 'we"ird name.txt'
    small.write_text("hello")

    uploaded = cli(server.base_url, "upload", str(big), str(small), "--progress")
    assert uploaded.returncode == 0, uploaded.stderr
    big_id, small_id = uploaded.stdout.split()
    assert "big.bin" in uploaded.stderr  # the progress bar named the file

    rows = [json.loads(line) for line in cli(server.base_url, "ls", "--json").stdout.splitlines()]
    assert [r["id"] for r in rows] == [small_id, big_id]
    assert rows[0]["filename"] == 'we"ird name.txt'
    assert rows[1]["size_bytes"] == big.stat().st_size
    table = cli(server.base_url, "ls").stdout
    assert big_id in table and "25.2 MB" in table

    meta = json.loads(cli(server.base_url, "stat", big_id).stdout)
    assert meta["filename"] == "big.bin"

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    got = cli(server.base_url, "download", big_id, "-o", str(out_dir))
    assert got.returncode == 0, got.stderr
    digest = hashlib.sha256((out_dir / "big.bin").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(big.read_bytes()).hexdigest()
    assert [p.name for p in out_dir.iterdir()] == ["big.bin"]  # no partial file left
    assert cli(server.base_url, "download", small_id, "-o", "-").stdout == "hello"
    here = cli(server.base_url, "download", small_id, cwd=tmp_path)
    assert here.returncode == 0 and (tmp_path / 'we"ird name.txt').read_text() == "hello"

    removed = cli(server.base_url, "rm", big_id, "file_011ngdqPKvKnuZD5F3TtAmv7", small_id)
    assert removed.returncode == 1
    assert removed.stdout.splitlines() == [f"deleted {big_id}", f"deleted {small_id}"]
    assert "404 not_found_error" in removed.stderr
    assert cli(server.base_url, "ls", "--json").stdout == ""


def test_ls_all_pages_through_everything(server_factory, tmp_path: Path) -> None:
    server = server_factory("--memory")
    paths = []
    for i in range(7):
        path = tmp_path / f"f{i}.txt"
        path.write_text(str(i))
        paths.append(str(path))
    ids = cli(server.base_url, "upload", *paths).stdout.split()
    listed = cli(server.base_url, "ls", "--json", "--limit", "3").stdout.splitlines()
    assert len(listed) == 3
    everything = [
        json.loads(x)["id"]
        for x in cli(server.base_url, "ls", "--json", "--all", "--limit", "3").stdout.splitlines()
    ]
    assert everything == ids[::-1]


def test_failures_have_messages_and_exit_codes(server_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = subprocess.run(
        [sys.executable, "-m", "filesapi", "keys", "create", "--workspace", "w", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    server = server_factory("--auth", "keys", "--data-dir", str(data))
    wrong = cli(server.base_url, "ls", key="sk-fapi-wrong")
    assert wrong.returncode == 1
    assert "401 authentication_error" in wrong.stderr and "request req_" in wrong.stderr
    assert cli(server.base_url, "ls", key=key).returncode == 0
    missing = cli(server.base_url, "stat", "file_nope", key=key)
    assert missing.returncode == 1 and "404 not_found_error" in missing.stderr
    gone = cli(server.base_url, "download", "file_nope", "-o", str(tmp_path / "x"), key=key)
    assert gone.returncode == 1 and not (tmp_path / "x").exists()
    dead = cli(f"http://127.0.0.1:{free_port()}", "ls")
    assert dead.returncode == 3 and "cannot reach" in dead.stderr
    no_key = cli("https://files.example.invalid", "ls", key=None)
    assert no_key.returncode == 2 and "API key" in no_key.stderr
