"""GA ``GET /v1/files?limit=100`` (first page) and the deepest page (beta ``after_id`` near
the oldest file) on a store of 1,000,000 files (SQLite), sequential keep-alive requests:
p50 and p99. The anchor of the first page is /healthz with the same client. Also GA
``GET /v1/files`` (the default page of 20) with wrk at the metadata benchmark's connections,
against ``GET /v1/files/ID`` on the same server: req/s. The store is built once with the
server's own schema and cached in bench/.cache/ per schema revision."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.clients import (
    API_HEADERS,
    BETA_HEADER,
    WrkResult,
    api,
    sequential_latencies,
    shell_join,
    upload,
    wrk,
)
from harness.clients import run as run_cmd
from harness.context import CACHE, ROOT, Benchmark, Ctx
from harness.plan import Plan, count
from harness.servers import FilesapiServer
from harness.stats import Row, figure_below, percentile, ratio_at_least, ratio_at_most

from benchmarks.common import anchor_first


def rows(plan: Plan) -> dict[str, Row]:
    return {
        "list_first": Row(
            "list",
            f"list first page (100 of {count(plan.list_files)}), p50",
            "ms",
            "/healthz p50",
            "< 10 ms",
            figure_below(10),
            ("limit", 10, False),
            digits=2,
            short="list first\npage p50",
        ),
        "list_deep": Row(
            "list",
            "list deepest page, p50",
            "ms",
            "first page p50",
            "<= 1.5 x first page",
            ratio_at_most(1.5),
            ("ratio", 1.5, False),
            digits=2,
            short="list deepest\npage p50",
        ),
        "list_vs_meta": Row(
            "list",
            f"GA list first page req/s vs metadata GET req/s, {plan.meta_connections} connections",
            "req/s",
            "metadata GET, same server",
            ">= 0.9 x metadata GET",
            ratio_at_least(0.9),
            ("ratio", 0.9, True),
            short="list first page\nvs metadata GET",
        ),
    }


def schema_key(ctx: Ctx) -> str:
    """The schema revision this filesapi needs plus a digest of its migration scripts."""
    probe = ctx.work / "schema-probe"
    out = run_cmd(
        [
            ctx.python,
            "-c",
            "import filesapi, pathlib, hashlib, sys\n"
            "from filesapi.metadata.migrate import head_revision\n"
            "d = pathlib.Path(filesapi.__file__).parent / 'metadata' / 'migrations' / 'versions'\n"
            "h = hashlib.sha256(b''.join(p.read_bytes() for p in sorted(d.glob('*.py'))))\n"
            "print(head_revision(), h.hexdigest()[:10])",
        ],
        env=ctx.env,
        cwd=ctx.work,
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not read the schema revision: {out.stderr}")
    shutil.rmtree(probe, ignore_errors=True)
    head, digest = out.stdout.split()
    return f"{head}-{digest}"


def build_list_store(ctx: Ctx, n: int, dest: Path) -> None:
    """A metadata.db with n files in the open-mode workspace ``default``: the schema from
    ``filesapi db upgrade``, the workspace and one template row from the real server (one upload),
    then n - 1 more rows inserted directly with executemany in one transaction (no blobs)."""
    build = ctx.work / "list-build"
    shutil.rmtree(build, ignore_errors=True)
    argv = [ctx.python, "-m", "filesapi", "db", "upgrade", "--data-dir", str(build)]
    ctx.command("list", shell_join(argv).replace(str(ctx.work), "$WORK"))
    out = run_cmd(argv, env=ctx.env, cwd=ctx.work)
    if out.returncode != 0:
        raise RuntimeError(f"filesapi db upgrade failed: {out.stdout}{out.stderr}")
    server = FilesapiServer(ctx, "list-build")
    server.data_dir = build
    with server:
        upload(server, ctx.source(ctx.plan.small_size))
    db = sqlite3.connect(build / "metadata.db", isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        template = db.execute("SELECT * FROM files").fetchone()
        columns = list(template.keys())
        sys.path.insert(0, ctx.env.get("PYTHONPATH", "").split(os.pathsep)[0] or str(ROOT / "src"))
        from filesapi.ids import IdClock

        clock = IdClock()
        base = dict(template)

        def rows() -> Iterator[tuple[Any, ...]]:
            for i in range(n - 1):
                file_id, created = clock.new_file_id()
                base["id"], base["created_at_us"], base["filename"] = file_id, created, f"file-{i:07d}.bin"
                yield tuple(base[c] for c in columns)

        started = time.monotonic()
        db.execute("BEGIN")
        db.executemany(
            f"INSERT INTO files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows()
        )
        db.execute(
            "UPDATE workspaces SET used_bytes = ? WHERE name = 'default'", (n * template["size_bytes"],)
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ctx.log(f"inserted {n - 1:,} rows in {time.monotonic() - started:.1f} s")
    finally:
        db.close()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    shutil.copyfile(build / "metadata.db", tmp)
    tmp.rename(dest)
    shutil.rmtree(build, ignore_errors=True)


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    first, deep, vs_meta = ctx.rows["list_first"], ctx.rows["list_deep"], ctx.rows["list_vs_meta"]
    key = schema_key(ctx)
    cached = CACHE / f"list-store-{key}-{plan.list_files}" / "metadata.db"
    ctx.command(
        "list",
        f"# the store, built once and cached in bench/.cache/: python -m filesapi db upgrade --data-dir D; "
        f"one upload through the server (workspace 'default' + a template row); {plan.list_files - 1:,} more "
        "rows with sqlite3 executemany in one transaction, ids from filesapi.ids.IdClock().new_file_id()",
    )
    if cached.exists():
        ctx.log(f"using the cached store {cached.relative_to(ROOT)}")
    else:
        ctx.log(
            f"building a store of {plan.list_files:,} files "
            f"(cached afterwards in {cached.parent.relative_to(ROOT)})"
        )
        build_list_store(ctx, plan.list_files, cached)
    server = FilesapiServer(ctx, "list")
    server.data_dir.mkdir(parents=True)
    shutil.copyfile(cached, server.data_dir / "metadata.db")
    n = plan.list_requests
    with server:
        db = sqlite3.connect(server.data_dir / "metadata.db")
        try:
            # the 102nd-oldest id: after_id=<it> gives the oldest 101 files, a full last page + has_more
            (pivot,) = db.execute("SELECT id FROM files ORDER BY id ASC LIMIT 1 OFFSET 101").fetchone()
            (total,) = db.execute("SELECT count(*) FROM files").fetchone()
        finally:
            db.close()
        first_path, deep_path = "/v1/files?limit=100", f"/v1/files?limit=100&after_id={pivot}"
        page = api(server.url, "GET", first_path)
        deepest = api(server.url, "GET", deep_path, BETA_HEADER)
        if len(page["data"]) != 100 or len(deepest["data"]) != 100:
            raise RuntimeError(f"pages of {len(page['data'])} and {len(deepest['data'])} files, expected 100")
        ctx.command(
            "list",
            f"{n} x GET {first_path} and {n} x GET {deep_path.replace(pivot, '<102nd-oldest id>')} "
            "(+ anthropic-beta: files-api-2025-04-14), sequential on one keep-alive connection "
            f"(Python http.client), after 5 warm-up requests each; store of {total:,} files",
        )
        # GA, no limit: the default page (20), on the same server as a GET of the newest file's metadata
        default_page = api(server.url, "GET", "/v1/files")
        page_size, newest = len(default_page["data"]), default_page["data"][0]["id"]
        if page_size < 20 or default_page["next_page"] is None:
            raise RuntimeError(f"the default GA page holds {page_size} files, expected a full page")
        ctx.command(
            "list",
            f"the default GA page ({page_size} files, next_page set) of the same workspace 'default' and "
            "GET /v1/files/ID of its newest file, with wrk at the metadata benchmark's connections:",
        )
        for path, hdrs in ((first_path, None), (deep_path, BETA_HEADER), ("/healthz", None)):
            sequential_latencies(server.url, path, 5, hdrs)  # warm-up
        for rnd in range(plan.rounds):
            lat: dict[str, list[float]] = {}
            steps = [
                ("healthz", "/healthz", None),
                ("first", first_path, None),
                ("deep", deep_path, BETA_HEADER),
            ]
            for name, path, hdrs in steps if anchor_first(rnd) else steps[::-1]:
                lat[name] = sequential_latencies(server.url, path, n, hdrs)
            p50 = {k: percentile(v, 0.5) for k, v in lat.items()}
            first.add(p50["first"], p50["healthz"])
            deep.add(p50["deep"], p50["first"])
            ctx.sample("list", "first page p99 ms", percentile(lat["first"], 0.99))
            ctx.sample("list", "deepest page p99 ms", percentile(lat["deep"], 0.99))
            ctx.sample("list", "/healthz p99 ms", percentile(lat["healthz"], 0.99))
            got: dict[str, WrkResult] = {}
            for which in ("meta", "list") if anchor_first(rnd) else ("list", "meta"):
                path = "/v1/files" if which == "list" else f"/v1/files/{newest}"
                got[which] = wrk(ctx, "list", server.url + path, plan.meta_connections, headers=API_HEADERS)
            vs_meta.add(got["list"].rps, got["meta"].rps)
            ctx.sample("list", "default GA page (wrk) p99 ms", got["list"].p99_ms)
            ctx.sample("list", "metadata GET on the list store (wrk) p99 ms", got["meta"].p99_ms)
            for which, res in got.items():
                if res.socket_errors:
                    ctx.note("list", f"round {rnd + 1}, {which}: wrk {res.socket_errors}")
            ctx.log(
                f"round {rnd + 1}: first page p50 {p50['first']:.2f} ms, deepest {p50['deep']:.2f} ms, "
                f"/healthz {p50['healthz']:.2f} ms; default GA page {got['list'].rps:,.0f} req/s, "
                f"metadata GET {got['meta'].rps:,.0f} req/s"
            )


BENCHMARK = Benchmark("list", __doc__ or "", rows, run)
