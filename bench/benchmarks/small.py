"""4 KiB multipart uploads from 32 concurrent connections (wrk + a Lua script; every
request creates a file): files/s, against /healthz req/s at the same concurrency. The
default stores such files inline in SQLite; a sample also shows --inline-max-size 0
(every file a blob: its own fsyncs) and the disk alone doing what that path does."""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

from harness.anchors import disk_small_files_rate
from harness.clients import API_HEADERS, WrkResult, api, shell_join, wrk
from harness.context import Benchmark, Ctx
from harness.plan import Plan, human
from harness.servers import FilesapiServer
from harness.stats import Row

from benchmarks.common import order


def rows(plan: Plan) -> dict[str, Row]:
    return {
        "small": Row(
            "small",
            f"small uploads ({human(plan.small_size)}), {plan.small_connections} connections",
            "files/s",
            f"/healthz, {plan.small_connections} conns",
            ">= 1,000 files/s",
            lambda r: r.f is not None and r.f >= 1000,
            ("limit", 1000, True),
            anchor_unit="req/s",
            short=f"small uploads\n({human(plan.small_size)}) files/s",
        ),
    }


def small_upload_script(ctx: Ctx) -> Path:
    """A wrk Lua script: POST /v1/files with a multipart body holding one small file."""
    payload = "".join(random.choices(string.ascii_letters + string.digits, k=ctx.plan.small_size))
    boundary = "----filesapibench7MA4YWxkTrZu0gW"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="small.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n{payload}\r\n--{boundary}--\r\n"
    )
    lines = [
        'wrk.method = "POST"',
        f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"',
        *(f'wrk.headers["{k}"] = "{v}"' for k, v in API_HEADERS.items()),
        f"wrk.body = {json.dumps(body)}",
    ]
    path = ctx.work / "small-upload.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    row = ctx.rows["small"]
    script = small_upload_script(ctx)
    with (
        FilesapiServer(ctx, "small") as server,
        FilesapiServer(ctx, "small-blobs", ["--inline-max-size", "0"]) as blobs_only,
    ):
        lua = re.sub(r"(\\r\\n\\r\\n)(\w{16})\w+", r"\1\2...", script.read_text())
        ctx.command(
            "small", f"cat > $WORK/{script.name} <<'EOF'   # the payload is {plan.small_size} bytes\n{lua}EOF"
        )
        for each in (server, blobs_only):
            ctx.command("small", shell_join(each.argv("PORT")).replace(str(ctx.work), "$WORK"))
        for rnd in range(plan.rounds):
            got: dict[str, WrkResult] = {}
            for which in order(rnd):
                if which == "anchor":
                    got[which] = wrk(ctx, "small", f"{server.url}/healthz", plan.small_connections)
                else:
                    got[which] = wrk(
                        ctx, "small", f"{server.url}/v1/files", plan.small_connections, script=script
                    )
            row.add(got["filesapi"].rps, got["anchor"].rps)
            as_blobs = wrk(ctx, "small", f"{blobs_only.url}/v1/files", plan.small_connections, script=script)
            ctx.sample("small", "files/s with --inline-max-size 0 (every file a blob)", as_blobs.rps)
            disk = disk_small_files_rate(
                server.data_dir / "disk-probe",
                plan.small_connections,
                plan.small_size,
                min(3, plan.wrk_seconds),
            )
            ctx.sample("small", "disk alone: durable 4 KiB files/s (see notes)", disk)
            ctx.sample("small", "upload p50 ms", got["filesapi"].p50_ms)
            ctx.sample("small", "upload p99 ms", got["filesapi"].p99_ms)
            if got["filesapi"].socket_errors:
                ctx.note("small", f"round {rnd + 1}: wrk {got['filesapi'].socket_errors}")
            ctx.log(
                f"round {rnd + 1}: {got['filesapi'].rps:,.0f} files/s (p99 {got['filesapi'].p99_ms:.0f} ms), "
                f"/healthz {got['anchor'].rps:,.0f} req/s; as blobs {as_blobs.rps:,.0f} files/s, "
                f"the disk alone {disk:,.0f} durable files/s"
            )
        listed = api(server.url, "GET", "/v1/files?limit=1")
        if not listed["data"]:
            raise RuntimeError("small uploads created no files")


BENCHMARK = Benchmark("small", __doc__ or "", rows, run)
