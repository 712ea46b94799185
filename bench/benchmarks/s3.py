"""PostgreSQL + S3 mode (a real PostgreSQL from Debian's binaries and a real SeaweedFS,
started by tests/servers_pg.py and tests/servers_s3.py): 1 GiB upload and download,
against SeaweedFS's own PUT / GET of the same object with ``curl --aws-sigv4``."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from harness.clients import CURL_HEADERS, curl, delete_file, download, shell_join, upload
from harness.clients import run as run_cmd
from harness.context import ROOT, Benchmark, Ctx, Unavailable
from harness.plan import GiB, MiB, Plan, human
from harness.servers import FilesapiServer, peak_rss, rss_mb_of
from harness.stats import Row, ratio_at_least

from benchmarks.common import order


def rows(plan: Plan) -> dict[str, Row]:
    big = human(plan.big)

    def row(label: str, anchor: str, target: str, short: str) -> Row:
        return Row(
            "s3",
            f"PostgreSQL + S3: {label}",
            "MiB/s",
            anchor,
            target,
            ratio_at_least(0.8),
            ("ratio", 0.8, True),
            short=short,
            section="stores",
        )

    return {
        "s3_upload": row(f"upload {big}", "SeaweedFS PUT", ">= 0.8 x PUT", f"S3 upload\n{big}"),
        "s3_download": row(f"download {big}", "SeaweedFS GET", ">= 0.8 x GET", f"S3 download\n{big}"),
        "s3_download_redirect": row(
            f"download {big}, download_redirect (307 to the bucket)",
            "SeaweedFS GET",
            ">= 0.8 x GET",
            f"S3 download\n{big} redirected",
        ),
    }


def run(ctx: Ctx) -> None:
    plan = ctx.plan
    up, down, redirected = ctx.rows["s3_upload"], ctx.rows["s3_download"], ctx.rows["s3_download_redirect"]
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from servers_pg import start_postgres
        from servers_s3 import SeaweedS3
    except Exception as exc:  # servers_s3.py may not exist yet
        raise Unavailable(f"tests/servers_pg.py or tests/servers_s3.py not importable ({exc})") from exc
    probe = run_cmd([ctx.python, "-c", "import filesapi.blobs.s3"], env=ctx.env, cwd=ctx.work)
    if probe.returncode != 0:
        raise Unavailable(f"filesapi has no S3 blob store here ({probe.stderr.strip().splitlines()[-1]})")
    src = ctx.source(plan.big)
    pg = None
    s3 = None
    s3_root = Path(tempfile.mkdtemp(prefix="fb-s3-"))  # short: weed's unix socket paths are limited
    try:
        pg = start_postgres()
        database_url = pg.create_database(migrated=True)
        s3 = SeaweedS3(s3_root, bucket="bench")
        s3.start()
        blob_url = s3.url("filesapi")
        env = {**ctx.env, **s3.env}
        server = FilesapiServer(ctx, "s3", ["--database-url", database_url, "--blob-url", blob_url], env=env)
        # A second replica on the same database and bucket, answering whole-file downloads with a
        # 307 to a presigned URL (curl -L follows it, as the SDKs do).
        redirect_url = blob_url + "&download_redirect=300"
        redirecting = FilesapiServer(
            ctx, "s3-redirect", ["--database-url", database_url, "--blob-url", redirect_url], env=env
        )
        sig = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{s3.access_key}:{s3.secret_key}"]
        anchor_url = f"{s3.endpoint}/{s3.bucket}/anchor/{src.name}"
        ctx.command(
            "s3",
            "PostgreSQL: tests/servers_pg.py start_postgres() + create_database(); "
            "SeaweedFS: tests/servers_s3.py SeaweedS3(...).start()  (weed mini, 127.0.0.1)",
        )
        ctx.command(
            "s3",
            shell_join(server.argv("PORT"))
            .replace(str(ctx.work), "$WORK")
            .replace(database_url, "postgresql://postgres@127.0.0.1:PGPORT/DB")
            .replace(blob_url, "s3://bench/filesapi?endpoint=http://127.0.0.1:S3PORT&region=us-east-1")
            + "   # with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION",
        )
        ctx.command("s3", "the same with --blob-url 's3://...&download_redirect=300' on PORT2, then:")
        ctx.command("s3", shell_join(["curl", "-sS", "-L", "-o", "/dev/null", *CURL_HEADERS,
                                      "http://127.0.0.1:PORT2/v1/files/ID/content"]))  # fmt: skip
        ctx.command(
            "s3",
            f"curl -sS --aws-sigv4 aws:amz:us-east-1:s3 --user KEY:SECRET -T $WORK/src/{src.name} "
            f"http://127.0.0.1:S3PORT/bench/anchor/{src.name}",
        )
        ctx.command(
            "s3",
            f"curl -sS --aws-sigv4 aws:amz:us-east-1:s3 --user KEY:SECRET -o /dev/null "
            f"http://127.0.0.1:S3PORT/bench/anchor/{src.name}",
        )
        with server, redirecting:
            for rnd in range(plan.rounds):
                put_s = get_s = up_s = down_s = redirected_s = 0.0
                for which in order(rnd):
                    if which == "anchor":
                        code, put_s, _ = curl(["-o", "/dev/null", *sig, "-T", str(src), anchor_url])
                        if code != 200:
                            raise RuntimeError(f"SeaweedFS PUT: HTTP {code}")
                        get_s = download(anchor_url, plan.big, sig)
                        continue
                    cpu0 = server.cpu()
                    with peak_rss(server) as up_peak:
                        file_id, up_s = upload(server, src)
                    cpu1 = server.cpu()
                    with peak_rss(server) as down_peak:
                        down_s = download(f"{server.url}/v1/files/{file_id}/content", plan.big, CURL_HEADERS)
                    cpu2 = server.cpu()
                    redirected_s = download(
                        f"{redirecting.url}/v1/files/{file_id}/content", plan.big, ["-L", *CURL_HEADERS]
                    )
                    ctx.sample("s3", "upload server CPU s/GiB", (cpu1 - cpu0) / (plan.big / GiB))
                    ctx.sample("s3", "download server CPU s/GiB", (cpu2 - cpu1) / (plan.big / GiB))
                    ctx.sample("s3", "worker peak RSS upload MB", rss_mb_of(up_peak))
                    ctx.sample("s3", "worker peak RSS download MB", rss_mb_of(down_peak))
                    delete_file(server.url, file_id)
                up.add(plan.big / up_s / MiB, plan.big / put_s / MiB)
                down.add(plan.big / down_s / MiB, plan.big / get_s / MiB)
                redirected.add(plan.big / redirected_s / MiB, plan.big / get_s / MiB)
                ctx.log(
                    f"round {rnd + 1}: upload {up.figure[-1]:,.0f} MiB/s (PUT {up.anchor[-1]:,.0f}), "
                    f"download {down.figure[-1]:,.0f} MiB/s, redirected {redirected.figure[-1]:,.0f} "
                    f"(GET {down.anchor[-1]:,.0f})"
                )
    finally:
        try:
            if s3 is not None:
                s3.stop()
        finally:
            shutil.rmtree(s3_root, ignore_errors=True)
            if pg is not None:
                try:
                    pg.stop("immediate")
                finally:
                    shutil.rmtree(pg.datadir, ignore_errors=True)


BENCHMARK = Benchmark("s3", __doc__ or "", rows, run)
