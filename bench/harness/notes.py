"""The notes under the table of docs/benchmarks.md: how each benchmark measures, and what it cannot."""

from __future__ import annotations

from harness.context import Ctx
from harness.plan import human


def general_notes(ctx: Ctx) -> list[str]:
    plan = ctx.plan
    return [
        "The page cache cannot be dropped here (a shared machine; it would need root on the host), so every "
        "run reads its source files from the page cache: dd, curl's uploads and S3 PUTs read a file that was "
        "just written, and the downloads (nginx and filesapi alike) serve files that are in the page cache. "
        "The writes are real: dd's `conv=fsync` and filesapi's fsync both wait for the disk.",
        "The upload anchor `dd ... conv=fsync` writes to the same filesystem as the server's data folder. "
        "filesapi does more than dd for the same bytes: it reads them from a socket, parses multipart, "
        "computes CRC32C, fsyncs, renames and commits a SQLite row (synchronous=FULL).",
        "Server RSS is the VmRSS of granian's worker process (the child of the `filesapi serve` process that "
        'runs the app), sampled every 5 ms; MB = 10^6 bytes, as in the targets. "Flat" means the peak '
        f"during the {human(plan.big)} transfer is at most 1.1x the peak during the {human(plan.probe)} one.",
        "Small uploads: every request creates a new file, durable before its 200; with the default "
        "settings a file this small is stored inline in SQLite with its row (one group-committed WAL "
        'fsync per batch of uploads). The sample "files/s with --inline-max-size 0" is a second server '
        "storing every file as a blob (its own fsyncs). The anchor is the bare `/healthz` endpoint at the "
        "same concurrency, which bounds what any request can do here.",
        "List: the store is built once with the server's own schema (`filesapi db upgrade`, then one real "
        "upload for the workspace and a template row, then rows inserted with sqlite3 executemany in one "
        "transaction with ids from `filesapi.ids.IdClock`), cached in `bench/.cache/` per schema revision, "
        "and copied into a fresh data folder for the run. The deepest page is the beta dialect's "
        "`after_id=<102nd-oldest id>`: the 100 oldest files but one (GA cursors are sealed and cannot be "
        "made up). The first page's anchor is `/healthz` with the same sequential client: the client's and "
        "HTTP stack's own share of each request.",
        '"disk alone: durable 4 KiB files/s" (small uploads, other measures) is this script writing '
        f"{plan.small_size}-byte files from {plan.small_connections} threads into the server's data folder, "
        "each with write + fsync + rename + fsync of the folder, for a few seconds: the same two fsyncs a "
        "small upload's blob costs, without HTTP, multipart or the SQLite commit (one more fsync).",
        "wrk runs with 2 threads on the same 2 cores as the server, so the client takes CPU from the "
        "server; the `/healthz` anchor pays the same cost.",
        "S3 rows: SeaweedFS (`weed mini`) and PostgreSQL run on the same 2 cores as filesapi and the client. "
        "curl sends `Expect: 100-continue` for large bodies to both filesapi and SeaweedFS (curl's default). "
        "The redirected download is a second replica (same database and bucket) started with "
        "`download_redirect=300`: curl -L asks it, gets a 307 to a presigned URL and fetches the object "
        "from SeaweedFS; its time includes both requests.",
    ]
