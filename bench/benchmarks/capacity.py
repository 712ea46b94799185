"""PostgreSQL at 10,000,000 files (--quick: 20,000) over 1,000 workspaces, one (the
open-mode workspace) holding half; built once by harness/pgdataset.py (binary COPY, no API
calls) and cached outside the checkout. One `filesapi serve` on it, one on an empty database
of the same cluster (the anchor, same run): GA list first and deepest page, ids[] list,
scope-filtered list, metadata GET (sequential p50), 4 KiB uploads (wrk), then one sweeper
pass freeing the expired 1% with GETs running meanwhile, `filesapi gc`, `filesapi scrub` (on
the anchor's real files), table and index sizes, connections in pg_stat_activity."""

from __future__ import annotations

import threading
import time
from typing import Any

from harness import pgdataset
from harness.clients import API_HEADERS, BETA_HEADER, api, sequential_latencies, shell_join, wrk
from harness.clients import run as run_cmd
from harness.context import Benchmark, Ctx, Unavailable
from harness.plan import Plan, count
from harness.servers import FilesapiServer
from harness.stats import Row, figure_below, percentile, ratio_at_least, ratio_at_most

from benchmarks.small import small_upload_script

NAME = "capacity"


def _row(label: str, anchor: str, target: str, met: Any, short: str, unit: str = "ms") -> Row:
    return Row(NAME, label, unit, anchor, target, met, None, digits=2, short=short, section="stores")


def rows(plan: Plan) -> dict[str, Row]:
    n = count(plan.capacity_files)
    return {
        "cap_list_first": _row(
            f"PG {n} files: list first page, p50", "empty database", "< 5 ms", figure_below(5), "cap first"
        ),
        "cap_list_deep": _row(
            f"PG {n} files: list deepest page, p50",
            "first page p50",
            "<= 1.5 x first",
            ratio_at_most(1.5),
            "cap deep",
        ),
        "cap_ids": _row(f"PG {n} files: ids[] (20), p50", "empty database", "-", lambda r: None, "cap ids"),
        "cap_scoped": _row(
            f"PG {n} files: scope list, p50", "empty database", "-", lambda r: None, "cap scope"
        ),
        "cap_get": _row(f"PG {n} files: metadata GET, p50", "empty database", "-", lambda r: None, "cap get"),
        "cap_get_rps": _row(
            f"PG {n} files: metadata GET, wrk {plan.meta_connections} connections",
            "empty database",
            "-",
            lambda r: None,
            "cap get/s",
            unit="req/s",
        ),
        "cap_upload": _row(
            f"PG {n} files: 4 KiB uploads",
            "empty database",
            ">= 0.8 x empty",
            ratio_at_least(0.8),
            "cap upload",
            unit="files/s",
        ),
        "cap_sweep_get": _row(
            "GET p99 during a sweep pass", "GET p99 before it", "-", lambda r: None, "cap sweep"
        ),
    }


def _psql(pg: Any, url: str, query: str) -> str:
    out = run_cmd([str(pg.bindir / "psql"), url, "-At", "-F", "\t", "-c", query], timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"psql: {out.stderr}")
    return out.stdout.strip()


def _reset(pg: Any, url: str) -> None:
    """Undo what an earlier run changed: its uploads, the sweep's purges, the open workspace's name."""
    _psql(pg, url, "UPDATE workspaces SET name = 'default' WHERE name = 'cap-0000'")
    _psql(pg, url, "DELETE FROM inline_contents")
    _psql(pg, url, "DELETE FROM files WHERE filename = 'small.txt'")
    _psql(
        pg,
        url,
        "UPDATE files SET purged_at_us = NULL, lease_until_us = NULL WHERE purged_at_us IS NOT NULL"
        " OR lease_until_us IS NOT NULL",
    )
    _psql(pg, url, "VACUUM ANALYZE files")


def _p50(url: str, path: str, n: int, headers: dict[str, str] | None = None) -> float:
    return percentile(sequential_latencies(url, path, n, headers), 0.5)


class _ConnSampler:
    """The most connections pg_stat_activity showed on a database while the block ran."""

    def __init__(self, pg: Any, database: str) -> None:
        self.pg, self.database, self.peak = pg, database, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            q = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{self.database}'"
            self.peak = max(self.peak, int(_psql(self.pg, self.pg.admin_url, q) or 0))
            self._stop.wait(0.3)

    def __enter__(self) -> _ConnSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


_SWEEP = """
import asyncio, sys, time
from pathlib import Path
from filesapi.cli._storage import with_service
from filesapi.config import Settings

async def one_pass(service):
    started, purged, rounds = time.monotonic(), 0, 0
    while True:
        report = await service.sweep(orphans=False)
        rounds += 1
        purged += report.expired_purged
        if report.expired_purged == 0 and report.deletes_finished == 0:
            print(purged, rounds, time.monotonic() - started)
            return

asyncio.run(with_service(Settings(database_url=sys.argv[1], data_dir=Path(sys.argv[2])), one_pass))
"""


def _timed(ctx: Ctx, argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    started = time.monotonic()
    out = run_cmd(argv, env=ctx.env, cwd=ctx.work, timeout=7200)
    took = time.monotonic() - started
    if out.returncode not in ok:
        raise RuntimeError(f"{shell_join(argv)}: {out.stderr[-2000:]}")
    return took, out.stdout


def _some_id(pg: Any, url: str) -> str:
    """A file of the open-mode workspace, 50 from its newest."""
    ws = _psql(pg, url, "SELECT id FROM workspaces WHERE name = 'default'")
    return _psql(
        pg, url, f"SELECT id FROM files WHERE workspace_id = '{ws}' ORDER BY id DESC OFFSET 50 LIMIT 1"
    )


def _measure_reads(ctx: Ctx, server: FilesapiServer, pg: Any, url: str, n: int) -> dict[str, float]:
    ws = _psql(pg, url, "SELECT id FROM workspaces WHERE name = 'default'")
    oldest = _psql(
        pg, url, f"SELECT id FROM files WHERE workspace_id = '{ws}' ORDER BY id OFFSET 100 LIMIT 1"
    )
    some = _psql(
        pg, url, f"SELECT id FROM files WHERE workspace_id = '{ws}' ORDER BY id DESC OFFSET 50 LIMIT 20"
    )
    ids = some.split() or [oldest]
    return {
        "first": _p50(server.url, "/v1/files?limit=100", n),
        "deep": _p50(server.url, f"/v1/files?limit=100&after_id={oldest}", n, BETA_HEADER),
        "ids": _p50(server.url, "/v1/files?" + "&".join(f"ids[]={i}" for i in ids), n),
        "scoped": _p50(server.url, "/v1/files?limit=100&scope_id=scope-7", n),
        "get": _p50(server.url, f"/v1/files/{ids[0]}", n),
    }


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    try:
        pg, big_url, datadir = pgdataset.ensure(pgdataset.Shape(plan.capacity_files), ctx.python, ctx.log)
    except (ImportError, RuntimeError) as exc:
        raise Unavailable(f"no PostgreSQL here ({exc})") from exc
    ctx.command(
        NAME, f"python bench/harness/pgdataset.py {plan.capacity_files}   # once; cached in {datadir}"
    )
    try:
        _reset(pg, big_url)
        _psql(pg, pg.admin_url, "DROP DATABASE IF EXISTS cap_empty")
        _psql(pg, pg.admin_url, "CREATE DATABASE cap_empty")
        empty_url = pg.url("cap_empty")
        _timed(ctx, [ctx.python, "-m", "filesapi", "db", "upgrade", "--database-url", empty_url])
        sweep_off = ["--sweep-interval", "1000000"]
        big = FilesapiServer(ctx, "cap-big", ["--database-url", big_url, *sweep_off])
        empty = FilesapiServer(ctx, "cap-empty", ["--database-url", empty_url, *sweep_off])
        ctx.command(NAME, shell_join(big.argv("PORT")).replace(str(ctx.work), "$WORK"))
        script = small_upload_script(ctx)
        with big, empty:
            for rnd in range(plan.rounds):
                rates = {}
                for label, server, db in (("empty", empty, empty_url), ("big", big, big_url)):
                    with _ConnSampler(pg, db.rsplit("/", 1)[1]) as conns:
                        result = wrk(
                            ctx, NAME, f"{server.url}/v1/files", plan.small_connections, script=script
                        )
                    rates[label] = result.rps
                    ctx.sample(NAME, f"{label}: peak connections during uploads", conns.peak)
                ctx.rows["cap_upload"].add(rates["big"], rates["empty"])
                got = {
                    label: _measure_reads(ctx, server, pg, db, plan.list_requests)
                    for label, server, db in (("empty", empty, empty_url), ("big", big, big_url))
                }
                for key, what in (("first", "cap_list_first"), ("ids", "cap_ids"), ("scoped", "cap_scoped")):
                    ctx.rows[what].add(got["big"][key], got["empty"][key])
                ctx.rows["cap_get"].add(got["big"]["get"], got["empty"]["get"])
                served = {
                    label: wrk(
                        ctx,
                        NAME,
                        f"{server.url}/v1/files/{_some_id(pg, db)}",
                        plan.meta_connections,
                        headers=API_HEADERS,
                    ).rps
                    for label, server, db in (("empty", empty, empty_url), ("big", big, big_url))
                }
                ctx.rows["cap_get_rps"].add(served["big"], served["empty"])
                ctx.rows["cap_list_deep"].add(got["big"]["deep"], got["big"]["first"])
                ctx.log(f"round {rnd + 1}: uploads {rates}, reads {got}")
            _sweep_and_tools(ctx, pg, big, big_url, empty, empty_url)
        _sizes(ctx, pg, big_url)
    finally:
        pg.stop()


def _sweep_and_tools(
    ctx: Ctx, pg: Any, big: FilesapiServer, big_url: str, empty: FilesapiServer, empty_url: str
) -> None:
    target = api(big.url, "GET", "/v1/files?limit=1")["data"][0]["id"]
    path = f"/v1/files/{target}"
    before = sequential_latencies(big.url, path, 300)
    during: list[float] = []
    sweeping = threading.Event()

    def probe() -> None:
        while not sweeping.is_set():
            during.extend(sequential_latencies(big.url, path, 50))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    _, out = _timed(ctx, [ctx.python, "-c", _SWEEP, big_url, str(big.data_dir)])
    sweeping.set()
    thread.join()
    purged, rounds, pass_s = out.split()
    ctx.command(NAME, "sweep pass: FileService.sweep(orphans=False) in a loop until it purges nothing")
    ctx.sample(NAME, "sweep pass: expired files purged", float(purged))
    ctx.sample(NAME, "sweep pass: rounds of 500", float(rounds))
    ctx.sample(NAME, "sweep pass: seconds", float(pass_s))
    ctx.sample(NAME, "GET p50 ms before the sweep", percentile(before, 0.5))
    ctx.sample(NAME, "GET p50 ms during the sweep", percentile(during, 0.5))
    ctx.rows["cap_sweep_get"].add(percentile(during, 0.99), percentile(before, 0.99))
    for label, server, db in (("big", big, big_url), ("empty", empty, empty_url)):
        gc_s, _ = _timed(
            ctx,
            [ctx.python, "-m", "filesapi", "gc", "--database-url", db, "--data-dir", str(server.data_dir)],
        )
        ctx.sample(NAME, f"{label}: filesapi gc seconds", gc_s)
    files = int(_psql(pg, empty_url, "SELECT count(*) FROM files"))
    scrub_s, _ = _timed(
        ctx,
        [ctx.python, "-m", "filesapi", "scrub", "--no-progress", "--database-url", empty_url,
         "--data-dir", str(empty.data_dir)],
        ok=(0, 1),  # 1: it found bad files (reported, not a failure of the measurement)
    )  # fmt: skip
    ctx.sample(NAME, "scrub: files checked (the anchor's real 4 KiB files)", files)
    ctx.sample(NAME, "scrub: seconds", scrub_s)
    ctx.note(
        NAME,
        "scrub runs on the empty database's files (uploaded by the benchmark, real inline bytes): the "
        "big dataset is metadata-only, so a scrub there would only report every file missing.",
    )


def _sizes(ctx: Ctx, pg: Any, url: str) -> None:
    query = (
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 2 DESC"
    )
    for line in _psql(pg, url, query).splitlines():
        name, size = line.split("\t")
        if int(size) > 1 << 20:
            ctx.sample(NAME, f"size MiB: {name}", int(size) / (1 << 20))


BENCHMARK = Benchmark(NAME, __doc__ or "", rows, run)
