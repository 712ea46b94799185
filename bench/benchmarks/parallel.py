"""32 concurrent 64 MiB uploads (32 curl processes): peak worker RSS, against its idle RSS."""

from __future__ import annotations

import json

from harness.clients import curl_parallel, delete_file, shell_join, upload_argv
from harness.context import Benchmark, Ctx
from harness.plan import MiB, Plan, human
from harness.servers import FilesapiServer, peak_rss, rss_mb_of
from harness.stats import Row, figure_below


def rows(plan: Plan) -> dict[str, Row]:
    par = human(plan.parallel_size)
    return {
        "rss_parallel": Row(
            "parallel",
            f"server RSS during {plan.parallel} concurrent {par} uploads",
            "MB",
            "idle",
            "< 300 MB",
            figure_below(300),
            ("limit", 300, False),
            short=f"RSS {plan.parallel} x {par}\nuploads",
            section="memory",
        ),
    }


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    row = ctx.rows["rss_parallel"]
    src = ctx.source(plan.parallel_size)
    with FilesapiServer(ctx, "parallel") as server:
        ctx.command(
            "parallel",
            f"{plan.parallel} x at once: curl -sS -o OUT_i "
            + shell_join(upload_argv("http://127.0.0.1:PORT", src, "OUT")[2:]).replace(
                str(ctx.work), "$WORK"
            ),
        )
        for rnd in range(plan.rounds):
            idle = server.rss_mb()
            outs = [ctx.work / f"parallel-{i}.json" for i in range(plan.parallel)]
            with peak_rss(server) as peak:
                seconds = curl_parallel(
                    [upload_argv(server.url, src, out) for out in outs], "parallel uploads"
                )
            row.add(rss_mb_of(peak), idle)
            ctx.sample("parallel", "total MiB/s", plan.parallel * plan.parallel_size / seconds / MiB)
            ctx.log(
                f"round {rnd + 1}: peak RSS {row.figure[-1]:.0f} MB (idle {idle:.0f} MB), {seconds:.1f} s"
            )
            for out in outs:
                delete_file(server.url, json.loads(out.read_text())["id"])


BENCHMARK = Benchmark("parallel", __doc__ or "", rows, run)
