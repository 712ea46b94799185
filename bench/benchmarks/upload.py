"""1 GiB multipart upload (checksum + fsync + commit included) with curl -F, against
``dd if=FILE of=OUT bs=1M conv=fsync`` on the filesystem of the server's data folder.
Also the server worker's peak RSS during it and during a 256 MiB upload (flatness)."""

from __future__ import annotations

from harness.anchors import dd_fsync
from harness.clients import delete_file, shell_join, upload, upload_argv
from harness.context import Benchmark, Ctx
from harness.plan import GiB, MiB, Plan, human
from harness.servers import FilesapiServer, peak_rss, rss_mb_of
from harness.stats import Row, ratio_at_least

from benchmarks.common import order, rss_flat_row


def rows(plan: Plan) -> dict[str, Row]:
    big = human(plan.big)
    return {
        "upload": Row(
            "upload",
            f"upload {big}, local disk (multipart, CRC32C + fsync)",
            "MiB/s",
            "dd conv=fsync",
            ">= 0.8 x dd",
            ratio_at_least(0.8),
            ("ratio", 0.8, True),
            short=f"upload {big}\n(local disk)",
        ),
        "rss_upload": rss_flat_row("upload", plan),
    }


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    src, probe_src = ctx.source(plan.big), ctx.source(plan.probe)
    row, rss = ctx.rows["upload"], ctx.rows["rss_upload"]
    with FilesapiServer(ctx, "upload") as server:
        ctx.command("upload", shell_join(server.argv("PORT")).replace(str(ctx.work), "$WORK"))
        ctx.command(
            "upload",
            "curl -sS -o OUT -w '%{http_code} %{time_total}' "
            + shell_join(upload_argv("http://127.0.0.1:PORT", src, "OUT")[2:]).replace(
                str(ctx.work), "$WORK"
            ),
        )
        idle = server.rss_mb()
        for rnd in range(plan.rounds):
            dd_seconds = filesapi_seconds = 0.0
            for which in order(rnd):
                if which == "anchor":
                    dd_seconds = dd_fsync(ctx, src, server.data_dir / "dd.out")
                    continue
                with peak_rss(server) as small_peak:
                    small_id, _ = upload(server, probe_src)
                cpu0 = server.cpu()
                with peak_rss(server) as big_peak:
                    big_id, filesapi_seconds = upload(server, src)
                ctx.sample("upload", "server CPU s/GiB", (server.cpu() - cpu0) / (plan.big / GiB))
                rss.add(rss_mb_of(big_peak), rss_mb_of(small_peak))
                delete_file(server.url, small_id)
                delete_file(server.url, big_id)
            row.add(plan.big / filesapi_seconds / MiB, plan.big / dd_seconds / MiB)
            ctx.log(
                f"round {rnd + 1}: filesapi {row.figure[-1]:,.0f} MiB/s, dd {row.anchor[-1]:,.0f} MiB/s; "
                f"RSS {rss.figure[-1]:.0f} MB ({human(plan.big)}) / "
                f"{rss.anchor[-1]:.0f} MB ({human(plan.probe)})"
            )
        ctx.sample("upload", "worker RSS idle MB", idle)


BENCHMARK = Benchmark("upload", __doc__ or "", rows, run)
