"""A large PostgreSQL metadata dataset, built server-side once and cached (the capacity benchmark).

``files`` rows stream into PostgreSQL by binary ``COPY`` from a Python generator (no API calls):
ids have the server's exact shape (``filesapi.ids``: creation time in the top 56 bits, 72 random
bits, base58) and are issued in time order over the year before the build, so the id order is the
creation order the server relies on. Shape of the data:

- ``workspaces`` workspaces (``default``, ``cap-0001`` ...); ``default`` holds ``big_share`` of the files, the
  others share the rest at random;
- 10% carry a scope (``scope-0`` ... ``scope-99``), 1% an expiry in the past (what one sweeper
  pass frees), 1% an expiry in the future;
- metadata only: 4 KiB each, ``stored_inline`` false, no blob anywhere. Downloads are not measured
  on it; scrub is measured on a store of its own with real blobs (``benchmarks/capacity.py``).

Indexes are dropped for the load and rebuilt after (as ``pg_restore`` does), then ``VACUUM
ANALYZE``. The cluster lives outside the checkout (``FILESAPI_CAPACITY_CACHE``, else
``~/.cache/filesapi-capacity``; ``/var/tmp/filesapi-capacity`` when run as root, whose home the
``postgres`` user cannot enter), one per schema revision and size, reused while its ``complete``
marker is there.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filesapi.ids import b58encode_fixed
from filesapi.metadata.sql import _FILE_FIELDS

DAY_US = 86_400 * 1_000_000
DB = "capacity"
_COLUMNS = _FILE_FIELDS  # the columns an upload writes, in the order rows() yields them


@dataclass(frozen=True)
class Shape:
    files: int
    workspaces: int = 1_000
    big_share: float = 0.5
    seed: int = 20


def cache_root() -> Path:
    env = os.environ.get("FILESAPI_CAPACITY_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/tmp/filesapi-capacity")
    return Path.home() / ".cache" / "filesapi-capacity"


def workspace_id(n: int) -> str:
    return "wrkspc_01" + b58encode_fixed(n + 1_000_003, 22)


def workspace_name(n: int) -> str:
    """The big workspace is ``default``, the one an open-mode server acts on."""
    return "default" if n == 0 else f"cap-{n:04d}"


def rows(shape: Shape, end_us: int) -> Iterator[tuple[Any, ...]]:
    """The files, oldest first; ``end_us``: the newest file's time (the build's start)."""
    rnd = random.Random(shape.seed)
    start_us = end_us - 365 * DAY_US
    step = (end_us - start_us) // shape.files
    ws_ids = [workspace_id(n) for n in range(shape.workspaces)]
    others = shape.workspaces - 1
    for i in range(shape.files):
        ts = start_us + i * step + rnd.randrange(step)
        ws = ws_ids[0] if rnd.random() < shape.big_share else ws_ids[1 + rnd.randrange(others)]
        fid = "file_01" + b58encode_fixed((ts << 72) | rnd.getrandbits(72), 22)
        k = i % 100
        scope = f"scope-{rnd.randrange(100)}" if k < 10 else None
        expires = ts + DAY_US if k == 50 else (end_us + 3650 * DAY_US if k == 51 else None)
        if expires is not None and k == 50:
            expires = min(expires, end_us - 60_000_000)  # in the past at any benchmark run
        yield (
            fid,
            ws,
            f"doc-{i}.txt",
            "text/plain",
            4096,
            "crc32c:00000000",
            ts,
            False,
            scope,
            expires,
            False,
        )


async def _load(url: str, shape: Shape, log: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        now = time.time_ns() // 1000
        await conn.executemany(
            "INSERT INTO workspaces (id, name, used_bytes, created_at_us) VALUES ($1, $2, 0, $3)",
            [(workspace_id(n), workspace_name(n), now - 366 * DAY_US) for n in range(shape.workspaces)],
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'files' AND indexname <> 'files_pkey'"
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        await conn.execute("ALTER TABLE files DROP CONSTRAINT files_pkey")
        # The rows are generated consistent with the foreign key; skip its per-row trigger.
        await conn.execute("SET session_replication_role = replica")
        started = time.monotonic()
        batch: list[tuple[Any, ...]] = []
        done = 0
        for row in rows(shape, now):
            batch.append(row)
            if len(batch) == 200_000:
                await conn.copy_records_to_table("files", records=batch, columns=_COLUMNS)
                done += len(batch)
                batch.clear()
                log(f"  {done:,} rows ({time.monotonic() - started:.0f} s)")
        if batch:
            await conn.copy_records_to_table("files", records=batch, columns=_COLUMNS)
        log(f"  copied in {time.monotonic() - started:.0f} s; building indexes")
        await conn.execute("SET session_replication_role = DEFAULT")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("ALTER TABLE files ADD CONSTRAINT files_pkey PRIMARY KEY (id)")
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute(
            "UPDATE workspaces w SET used_bytes = s.b FROM (SELECT workspace_id, sum(size_bytes) b FROM files"
            " GROUP BY workspace_id) s WHERE s.workspace_id = w.id"
        )
        await conn.execute("VACUUM ANALYZE")
        log(f"  indexed and analyzed at {time.monotonic() - started:.0f} s")
    finally:
        await conn.close()


def schema_revision() -> str:
    versions = (
        Path(__file__).resolve().parents[2] / "src" / "filesapi" / "metadata" / "migrations" / "versions"
    )
    return sorted(p.name.split("_")[0] for p in versions.glob("[0-9]*.py"))[-1]


def ensure(shape: Shape, python: str = sys.executable, log: Any = print) -> tuple[Any, str, Path]:
    """Start the cached cluster holding ``shape`` (building it first if needed). Returns the
    ``PostgresServer`` (from tests/servers_pg.py), the database URL and the data folder."""
    tests = str(Path(__file__).resolve().parents[2] / "tests")
    if tests not in sys.path:
        sys.path.append(tests)
    from servers_pg import start_postgres

    datadir = cache_root() / f"pg-{schema_revision()}-{shape.files}"
    marker = datadir.parent / f"{datadir.name}.complete"
    if datadir.exists() and not marker.exists():
        subprocess.run(["rm", "-rf", str(datadir)], check=True)  # an interrupted build
    server = start_postgres(datadir)
    url = server.url(DB)
    if not marker.exists():
        log(f"building {shape.files:,} files in {datadir} (once)")
        server._psql(f'CREATE DATABASE "{DB}"')
        subprocess.run(
            [python, "-m", "filesapi", "db", "upgrade", "--database-url", url], check=True, timeout=300
        )
        asyncio.run(_load(url, shape, log))
        marker.write_text(f"{shape}\n")
    return server, url, datadir


def main() -> None:
    """``python bench/harness/pgdataset.py FILES``: build (or check) the cached dataset and stop."""
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    server, url, datadir = ensure(Shape(files))
    print(url, datadir)
    server.stop()


if __name__ == "__main__":
    main()
