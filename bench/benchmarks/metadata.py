"""GET /v1/files/ID with ``wrk -t2 -c64 --latency``, against GET /healthz (a bare JSON
endpoint on the same server) and against the bare route (the same JSON from a plain
Starlette route on granian, one worker: HTTP and ASGI without filesapi's own work): req/s
and p99."""

from __future__ import annotations

import urllib.request

from harness.anchors import BareRoute
from harness.clients import API_HEADERS, WrkResult, upload, wrk
from harness.context import Benchmark, Ctx
from harness.plan import Plan
from harness.servers import FilesapiServer
from harness.stats import Row, figure_below, ratio_at_least

from benchmarks.common import order


def rows(plan: Plan) -> dict[str, Row]:
    return {
        "meta_rps": Row(
            "metadata",
            f"metadata GET, {plan.meta_connections} connections",
            "req/s",
            "/healthz",
            ">= 0.5 x /healthz",
            ratio_at_least(0.5),
            ("ratio", 0.5, True),
            short="metadata GET\nreq/s",
        ),
        "meta_bare": Row(
            "metadata",
            f"metadata GET vs the bare route, {plan.meta_connections} connections",
            "req/s",
            "bare Starlette route",
            ">= 0.5 x bare route",
            ratio_at_least(0.5),
            ("ratio", 0.5, True),
            short="metadata GET\nvs bare route",
        ),
        "meta_p99": Row(
            "metadata",
            f"metadata GET p99, {plan.meta_connections} connections",
            "ms",
            "/healthz p99",
            "< 20 ms",
            figure_below(20),
            ("limit", 20, False),
            digits=1,
            short="metadata GET\np99",
        ),
    }


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    rps, p99, bare_rps = ctx.rows["meta_rps"], ctx.rows["meta_p99"], ctx.rows["meta_bare"]
    with FilesapiServer(ctx, "metadata") as server:
        file_id, _ = upload(server, ctx.source(plan.small_size))
        request = urllib.request.Request(f"{server.url}/v1/files/{file_id}", headers=API_HEADERS)
        with urllib.request.urlopen(request) as answer:
            body = answer.read()
        with BareRoute(ctx, body) as bare:
            for rnd in range(plan.rounds):
                got: dict[str, WrkResult] = {}
                # The bare route first in even rounds, last in odd ones (drift hits every figure).
                sequence = ("bare", *order(rnd)) if rnd % 2 == 0 else (*order(rnd), "bare")
                for which in sequence:
                    base = bare.url if which == "bare" else server.url
                    path = "/healthz" if which == "anchor" else f"/v1/files/{file_id}"
                    got[which] = wrk(ctx, "metadata", base + path, plan.meta_connections, headers=API_HEADERS)
                _record(ctx, rnd, got, rps, p99, bare_rps)


def _record(ctx: Ctx, rnd: int, got: dict[str, WrkResult], rps: Row, p99: Row, bare_rps: Row) -> None:
    """One round's figures: the rows, the samples, the notes and the log line."""
    rps.add(got["filesapi"].rps, got["anchor"].rps)
    bare_rps.add(got["filesapi"].rps, got["bare"].rps)
    p99.add(got["filesapi"].p99_ms, got["anchor"].p99_ms)
    ctx.sample("metadata", "metadata p50 ms", got["filesapi"].p50_ms)
    ctx.sample("metadata", "/healthz p50 ms", got["anchor"].p50_ms)
    for which, res in got.items():
        if res.socket_errors:
            ctx.note("metadata", f"round {rnd + 1}, {which}: wrk {res.socket_errors}")
    ctx.log(
        f"round {rnd + 1}: metadata {got['filesapi'].rps:,.0f} req/s "
        f"p99 {got['filesapi'].p99_ms:.1f} ms; "
        f"/healthz {got['anchor'].rps:,.0f} req/s p99 {got['anchor'].p99_ms:.1f} ms; "
        f"bare route {got['bare'].rps:,.0f} req/s p99 {got['bare'].p99_ms:.1f} ms"
    )


BENCHMARK = Benchmark("metadata", __doc__ or "", rows, run)
