"""GET /v1/files/ID/content of that 1 GiB file with curl -o /dev/null, against nginx
(sendfile on) serving the same bytes. Worker RSS as for upload."""

from __future__ import annotations

from harness.anchors import Nginx
from harness.clients import CURL_HEADERS, download, shell_join, upload
from harness.context import Benchmark, Ctx
from harness.plan import GiB, MiB, Plan, human
from harness.servers import FilesapiServer, peak_rss, rss_mb_of
from harness.stats import Row, ratio_at_least

from benchmarks.common import order, rss_flat_row


def rows(plan: Plan) -> dict[str, Row]:
    big = human(plan.big)
    return {
        "download": Row(
            "download",
            f"download {big}, local disk",
            "MiB/s",
            "nginx",
            ">= 0.55 x nginx",
            ratio_at_least(0.55),
            ("ratio", 0.55, True),
            short=f"download {big}\n(local disk)",
        ),
        "rss_download": rss_flat_row("download", plan),
    }


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    src, probe_src = ctx.source(plan.big), ctx.source(plan.probe)
    row, rss = ctx.rows["download"], ctx.rows["rss_download"]
    with FilesapiServer(ctx, "download") as server, Nginx(ctx, src.parent) as nginx:
        big_id, _ = upload(server, src)
        small_id, _ = upload(server, probe_src)
        nginx_url = f"http://127.0.0.1:{nginx.port}/{src.name}"
        conf = nginx.conf.read_text().replace(str(ctx.work), "$WORK").replace(str(nginx.port), "NGINX")
        ctx.command("download", f"cat > $WORK/nginx/nginx.conf <<'EOF'\n{conf}EOF")
        ctx.command("download", "nginx -p $WORK/nginx -c $WORK/nginx/nginx.conf")
        ctx.command(
            "download", f"curl -sS -o /dev/null -w '%{{time_total}}' http://127.0.0.1:NGINX/{src.name}"
        )
        ctx.command(
            "download",
            "curl -sS -o /dev/null -w '%{time_total}' "
            + shell_join(CURL_HEADERS)
            + " http://127.0.0.1:PORT/v1/files/ID/content",
        )
        for rnd in range(plan.rounds):
            nginx_s = filesapi_s = 0.0
            for which in order(rnd):
                if which == "anchor":
                    nginx_s = download(nginx_url, plan.big, [])
                    continue
                with peak_rss(server) as small_peak:
                    download(f"{server.url}/v1/files/{small_id}/content", plan.probe, CURL_HEADERS)
                cpu0 = server.cpu()
                with peak_rss(server) as big_peak:
                    filesapi_s = download(f"{server.url}/v1/files/{big_id}/content", plan.big, CURL_HEADERS)
                ctx.sample("download", "server CPU s/GiB", (server.cpu() - cpu0) / (plan.big / GiB))
                rss.add(rss_mb_of(big_peak), rss_mb_of(small_peak))
            row.add(plan.big / filesapi_s / MiB, plan.big / nginx_s / MiB)
            ctx.log(
                f"round {rnd + 1}: filesapi {row.figure[-1]:,.0f} MiB/s, nginx {row.anchor[-1]:,.0f} MiB/s; "
                f"RSS {rss.figure[-1]:.0f} MB ({human(plan.big)}) / "
                f"{rss.anchor[-1]:.0f} MB ({human(plan.probe)})"
            )


BENCHMARK = Benchmark("download", __doc__ or "", rows, run, tools=("nginx",))
