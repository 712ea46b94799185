"""The plans of the hot queries: each must use its index, on PostgreSQL and on SQLite.

The statements are the ones ``filesapi.metadata.sql`` runs (not copies), explained on a small
dataset (50,000 files over 50 workspaces, one holding half, 10% scoped, 1% expired, 0.2% hidden)
after ANALYZE. On PostgreSQL each is explained twice: as a custom plan (the parameters' values
known) and as the generic plan a prepared statement switches to after five runs, so an index the
planner would only pick for some values is caught too. A plan that scans the whole table, or
another index than expected, fails here instead of showing only as a slow benchmark at 10 million rows.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql, sqlite

from filesapi.metadata import sql
from servers_pg import PostgresServer

WORKSPACE = "wrkspc_01" + "x" * 21 + "2"  # the big workspace (half the files)
NOW_US = 10_000_000
SOME_IDS = [f"file_01{i:0>22}".replace("0", "A") for i in (10, 20_000, 49_990)]

# Inserted straight by SQL: the plan depends on the table's statistics, not on the ids' shape.
_DATASET = """
INSERT INTO workspaces (id, name, used_bytes, created_at_us)
SELECT 'wrkspc_01' || lpad(w::text, 22, 'x'), 'ws' || w, 0, 0 FROM generate_series(2, 5001) w;
INSERT INTO api_keys (key_id, workspace_id, key_hash, created_at_us)
SELECT lpad(k::text, 12, 'x'), 'wrkspc_01' || lpad((2 + k % 5000)::text, 22, 'x'), 'h', 0
FROM generate_series(1, 5000) k;
INSERT INTO files (id, workspace_id, filename, mime_type, size_bytes, checksum, created_at_us,
                   downloadable, scope_id, expires_at_us, deleted_at_us, stored_inline)
SELECT 'file_01' || replace(lpad(i::text, 22, '0'), '0', 'A'),
       'wrkspc_01' || lpad((CASE WHEN i % 2 = 0 THEN 2 ELSE 3 + i % 49 END)::text, 22, 'x'),
       'f' || i, 'text/plain', 4096, 'crc32c:00000000', i, false,
       CASE WHEN i % 10 = 0 THEN 'scope-' || (i / 10 % 20) END,
       CASE WHEN i % 100 = 7 THEN 1000 WHEN i % 20 = 3 THEN 1000000000000 END,
       CASE WHEN i % 500 = 1 THEN i END,
       false
FROM generate_series(1, 50000) i;
"""


def _hot_queries() -> dict[str, tuple[Executable, dict[str, Any]]]:
    """Every query a request or a sweep runs per call, with realistic parameters."""
    page = {"workspace_id": WORKSPACE, "scope_id": None, "after_id": None, "before_id": None, "limit": 101}
    cursor = SOME_IDS[1]
    return {
        "list_first_page": (sql._list_query(False, False, False), page),
        "list_after_cursor": (sql._list_query(True, False, False), {**page, "after_id": cursor}),
        "list_before_cursor": (sql._list_query(False, True, False), {**page, "before_id": cursor}),
        "list_scoped": (sql._list_query(False, False, True), {**page, "scope_id": "scope-3"}),
        "list_scoped_after_cursor": (
            sql._list_query(True, False, True),
            {**page, "scope_id": "scope-3", "after_id": cursor},
        ),
        "get_by_id": (sql._GET_FILE, {"file_id": cursor, "workspace_id": WORKSPACE}),
        "ids_lookup": (sql._GET_FILES, {"workspace_id": WORKSPACE, "ids": SOME_IDS}),
        "used_bytes": (sql._USED_BYTES, {"workspace_id": WORKSPACE}),
        "files_version": (sql._FILES_VERSION, {"workspace_id": WORKSPACE}),
        "quota_charge": (sql._CHARGE_WITHIN_QUOTA, {"workspace_id": WORKSPACE, "size": 1, "quota": 10**12}),
        "find_key": (sql._FIND_KEY, {"key_id": "abcdefghijkm"}),
        "claim_hidden": (sql._claim_query(sql._HIDDEN_ROWS, sql.files.c.id, 500, NOW_US), {}),
        "claim_expired": (
            sql._claim_query(sql._expired_rows(NOW_US), sql.files.c.expires_at_us, 500, NOW_US),
            {},
        ),
        # A small batch makes an ordered walk of another index look cheap to the planner (what it
        # chose at 10 million rows when the claim was ordered by id).
        "claim_expired_few": (
            sql._claim_query(sql._expired_rows(NOW_US), sql.files.c.expires_at_us, 5, NOW_US),
            {},
        ),
        "orphan_existence": (sql._existing_ids_query(SOME_IDS), {}),
        "scrub_scan": (sql._scan_query(cursor, 500), {}),
    }


# The index each must use (any of a set when two serve it equally well: an exact id is found
# as fast by the primary key as by (workspace_id, id)).
EXPECTED_PG: dict[str, set[str]] = {
    "list_first_page": {"ix_files_workspace_id_id"},
    "list_after_cursor": {"ix_files_workspace_id_id"},
    "list_before_cursor": {"ix_files_workspace_id_id"},
    "list_scoped": {"ix_files_workspace_id_scope_id_id"},
    "list_scoped_after_cursor": {"ix_files_workspace_id_scope_id_id"},
    "get_by_id": {"files_pkey", "ix_files_workspace_id_id"},
    "ids_lookup": {"files_pkey", "ix_files_workspace_id_id"},
    "used_bytes": {"workspaces_pkey"},
    "files_version": {"workspaces_pkey"},
    "quota_charge": {"workspaces_pkey"},
    "find_key": {"api_keys_pkey"},
    "claim_hidden": {"ix_files_hidden"},
    "claim_expired": {"ix_files_expiring"},
    "claim_expired_few": {"ix_files_expiring"},
    "orphan_existence": {"files_pkey"},
    "scrub_scan": {"files_pkey"},
}
# SQLite names the primary key of a text column sqlite_autoindex_files_1.
EXPECTED_SQLITE = {
    name: {"sqlite_autoindex_files_1" if i == "files_pkey" else i for i in names}
    | ({"sqlite_autoindex_files_1"} if "files_pkey" in names else set())
    for name, names in EXPECTED_PG.items()
}
EXPECTED_SQLITE["used_bytes"] = {"sqlite_autoindex_workspaces_1"}
EXPECTED_SQLITE["files_version"] = {"sqlite_autoindex_workspaces_1"}
EXPECTED_SQLITE["quota_charge"] = {"sqlite_autoindex_workspaces_1"}
EXPECTED_SQLITE["find_key"] = {"sqlite_autoindex_api_keys_1"}


def _positional(statement: Executable, params: dict[str, Any], dialect: Any) -> tuple[str, list[Any]]:
    """The statement as the driver receives it (IN lists expanded) and its positional values."""
    state = statement.compile(dialect=dialect).construct_expanded_state(params)
    return state.statement, list(state.positional_parameters or ())


def _walk(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


@pytest.fixture(scope="module")
def pg_url(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database()

    async def load() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(_DATASET)
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    asyncio.run(load())
    return url


async def _pg_plan(url: str, statement: Executable, params: dict[str, Any], mode: str) -> dict[str, Any]:
    text, args = _positional(statement, params, postgresql.asyncpg.dialect())  # type: ignore[attr-defined]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"SET plan_cache_mode = {mode}")
        async with conn.transaction():  # FOR UPDATE may only be explained inside one
            raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + text, *args)
    finally:
        await conn.close()
    return dict(json.loads(raw)[0]["Plan"])


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("name", sorted(EXPECTED_PG))
async def test_postgres_plan_uses_its_index(pg_url: str, name: str, mode: str) -> None:
    statement, params = _hot_queries()[name]
    plan = await _pg_plan(pg_url, statement, params, mode)
    nodes = list(_walk(plan))
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    scans = [n["Node Type"] for n in nodes if n.get("Relation Name") == "files"]
    assert "Seq Scan" not in scans, json.dumps(plan, indent=1)
    assert used & EXPECTED_PG[name], f"{name} uses {used or 'no index'}: {json.dumps(plan, indent=1)}"
    # An unscoped page comes in index order: no sort of the workspace's rows. (A scope's few rows
    # may be fetched by bitmap and sorted: cheaper while a scope holds few, the planner's choice.)
    if name.startswith("list_") and "scoped" not in name:
        assert "Sort" not in {n["Node Type"] for n in nodes}, json.dumps(plan, indent=1)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "metadata.db"
    subprocess.run(
        [sys.executable, "-m", "filesapi", "db", "upgrade", "--database-url", f"sqlite:///{path}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO workspaces (id, name, used_bytes, created_at_us) VALUES (?, ?, 0, 0)",
            [("wrkspc_01" + str(w).rjust(22, "x"), f"ws{w}") for w in range(2, 5002)],
        )
        rows = []
        for i in range(1, 20_001):
            ws = 2 if i % 2 == 0 else 3 + i % 49
            rows.append(
                (
                    f"file_01{i:0>22}".replace("0", "A"),
                    "wrkspc_01" + str(ws).rjust(22, "x"),
                    f"scope-{i // 10 % 20}" if i % 10 == 0 else None,
                    1000 if i % 100 == 7 else None,
                    i if i % 500 == 1 else None,
                )
            )
        db.executemany(
            "INSERT INTO files (id, workspace_id, filename, mime_type, size_bytes, checksum, created_at_us,"
            " downloadable, scope_id, expires_at_us, deleted_at_us, stored_inline)"
            " VALUES (?1, ?2, 'f', 'text/plain', 4096, 'crc32c:00000000', 0, 0, ?3, ?4, ?5, 0)",
            rows,
        )
        db.execute("ANALYZE")
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED_SQLITE))
def test_sqlite_plan_uses_its_index(sqlite_db: Path, name: str) -> None:
    statement, params = _hot_queries()[name]
    text, args = _positional(statement, params, sqlite.pysqlite.dialect())  # type: ignore[attr-defined]
    with sqlite3.connect(sqlite_db) as db:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + text, args)]
    files_steps = [step for step in plan if " files" in step]
    assert not any(step.startswith("SCAN files") and "INDEX" not in step for step in files_steps), plan
    assert any(index in step for step in plan for index in EXPECTED_SQLITE[name]), plan
