"""Admin commands on the server's own storage: seed, stats, scrub, gc, reset."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import GA_HEADERS, start_server, stop_server
from filesapi.blobs.local import shard_of


def admin(storage: list[str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "filesapi", *args, *storage],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """CLI flags naming one storage: SQLite + local disk, or PostgreSQL + local disk."""
    flags = ["--data-dir", str(tmp_path / "data")]
    if request.param == "postgres":
        flags += ["--database-url", request.getfixturevalue("postgres_server").create_database()]
    return flags


def _tree(root: Path) -> dict[str, bytes]:
    # Two small files (stored inline in SQLite) and one past the 64 KiB inline limit (a blob).
    files = {"a.txt": b"alpha", "sub/b.pdf": b"%PDF-1.4 beta", "sub/deeper/c.bin": bytes(range(256)) * 400}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_seed_stats_and_reset(storage: list[str], tmp_path: Path) -> None:
    files = _tree(tmp_path / "tree")
    seeded = admin(
        storage,
        "seed",
        str(tmp_path / "tree"),
        "--workspace",
        "team",
        "--scope-id",
        "sesn_9",
        "--generated",
        "--profile",
        "hosted",
    )
    assert seeded.returncode == 0, seeded.stderr
    ids = dict(reversed(line.split("\t")) for line in seeded.stdout.splitlines())
    assert set(ids) == set(files)

    stats = [json.loads(x) for x in admin(storage, "stats", "--json").stdout.splitlines()]
    team = next(s for s in stats if s["workspace"] == "team")
    assert (team["files"], team["bytes"]) == (3, sum(len(v) for v in files.values()))

    key = admin(storage, "keys", "create", "--workspace", "team").stdout.strip().splitlines()[-1]
    server = start_server(tmp_path, *storage, "--auth", "keys", "--profile", "hosted")
    try:
        headers = {
            "x-api-key": key,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "files-api-2025-04-14",
        }
        listed = httpx.get(
            server.base_url + "/v1/files", params={"scope_id": "sesn_9"}, headers=headers
        ).json()
        assert {f["filename"] for f in listed["data"]} == {"a.txt", "b.pdf", "c.bin"}
        assert all(f["downloadable"] and f["scope"]["id"] == "sesn_9" for f in listed["data"])
        pdf = next(f for f in listed["data"] if f["filename"] == "b.pdf")
        assert pdf["mime_type"] == "application/pdf"
        content = httpx.get(f"{server.base_url}/v1/files/{ids['sub/b.pdf']}/content", headers=headers).content
        assert content == files["sub/b.pdf"]

        assert admin(storage, "reset", "--workspace", "team").returncode == 1  # asks; no tty says no
        done = admin(storage, "reset", "--workspace", "team", "--yes")
        assert done.returncode == 0 and "deleted 3 files" in done.stdout
        assert httpx.get(server.base_url + "/v1/files", headers=headers).json()["data"] == []
    finally:
        stop_server(server)


def test_scrub_finds_and_quarantines_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    storage = ["--data-dir", str(data)]
    _tree(tmp_path / "tree")
    (tmp_path / "tree" / "d.txt").write_bytes(b"delta, small")
    ids = dict(
        reversed(x.split("\t")) for x in admin(storage, "seed", str(tmp_path / "tree")).stdout.splitlines()
    )
    clean = admin(storage, "scrub")
    assert clean.returncode == 0 and "checked 4 files" in clean.stderr and "bad: 0" in clean.stderr

    victim = ids["sub/deeper/c.bin"]
    blob = next((data / "blobs").rglob(victim))
    raw = bytearray(blob.read_bytes())
    raw[1000] ^= 0xFF  # one flipped bit-pattern, same size
    blob.write_bytes(bytes(raw))
    inline_victim = ids["d.txt"]
    with contextlib.closing(sqlite3.connect(data / "metadata.db")) as db, db:
        # the same in a small file's inline bytes, and a small file whose bytes are gone
        db.execute(
            "UPDATE inline_contents SET content = ? WHERE file_id = ?", (b"delta, smalL", inline_victim)
        )
        assert db.execute("DELETE FROM inline_contents WHERE file_id = ?", (ids["a.txt"],)).rowcount == 1

    found = admin(storage, "scrub")
    assert found.returncode == 1
    assert f"BAD {victim}" in found.stdout and "checksum" in found.stdout
    assert f"BAD {inline_victim}" in found.stdout
    assert f"BAD {ids['a.txt']}" in found.stdout and "missing" in found.stdout
    assert f"BAD {ids['sub/b.pdf']}" not in found.stdout

    quarantined = admin(storage, "scrub", "--quarantine")
    assert "quarantined: 3" in quarantined.stderr
    server = start_server(tmp_path, *storage)
    try:
        for bad in (victim, inline_victim):
            response = httpx.get(f"{server.base_url}/v1/files/{bad}/content", headers=GA_HEADERS)
            assert response.status_code == 500
            assert response.headers["x-should-retry"] == "false"
            assert "quarantined" in response.json()["error"]["message"]
            assert httpx.get(f"{server.base_url}/v1/files/{bad}", headers=GA_HEADERS).status_code == 200
        good = httpx.get(f"{server.base_url}/v1/files/{ids['sub/b.pdf']}/content", headers=GA_HEADERS)
        assert good.status_code == 200
    finally:
        stop_server(server)


def test_gc_removes_leftovers_and_keeps_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    storage = ["--data-dir", str(data)]
    _tree(tmp_path / "tree")
    ids = dict(
        reversed(x.split("\t")) for x in admin(storage, "seed", str(tmp_path / "tree")).stdout.splitlines()
    )
    # What a crash leaves: a temp file mid-write and a published blob whose row never committed.
    (data / "blobs" / "tmp" / "file_crashed.abcd.part").write_bytes(b"half")
    orphan_id = "file_011ngdqPKvKnuZD5F3TtAmxx"
    orphan = data / "blobs" / "blobs" / shard_of(orphan_id) / orphan_id
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"no row")
    result = admin(storage, "gc", "--grace", "0")
    assert result.returncode == 0, result.stderr
    assert "orphan blobs removed: 1" in result.stdout
    assert "unfinished uploads removed: 1" in result.stdout
    assert not orphan.exists()
    assert list((data / "blobs" / "tmp").iterdir()) == []
    assert any((data / "blobs").rglob(ids["sub/deeper/c.bin"]))  # the one file kept as a blob
    assert admin(storage, "scrub").returncode == 0  # every file, inline or not, still whole
