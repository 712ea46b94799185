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
        "Small uploads vs the SeaweedFS filer: `weed mini` (master, volume server, filer, S3 and admin in "
        "one process on the same cores; started by tests/servers_s3.py on 127.0.0.1) takes the same "
        "multipart body, POSTed by wrk at the same concurrency to a path no other request uses "
        "(`/bench-small/<round>-t<wrk thread>-<counter>.txt`). Per file the filer gets a file id from the "
        "master, sends the 4 KiB over loopback HTTP to the volume server, which appends it to a volume's "
        ".dat and .idx, then puts the path's entry in its leveldb2 store and answers 201. By default "
        "nothing is fsynced: the volume server syncs only when asked (`?fsync=true` or an "
        "`fs.configure -fsync` rule) and the leveldb2 store writes its journal "
        "without sync (goleveldb `Put` with no WriteOptions); so a file survives a crash of weed but not "
        "of the machine, where filesapi's 200 comes after an fsync. The sample \"SeaweedFS filer "
        'files/s with ?fsync=true" asks the volume server to fsync the .dat before answering (one fsync '
        "per batch of queued writes); the .idx and the leveldb2 entry are still not synced, so a power "
        "loss can still lose the path. (Read from SeaweedFS's source, weed/storage/volume_write.go and "
        "weed/filer/leveldb2, not tested by pulling power.)",
        "List vs metadata GET: the default GA page (`GET /v1/files`, no limit: 20 files and a sealed "
        "`next_page` cursor) of the list store's one workspace `default` (every file of the store), "
        "against `GET /v1/files/ID` of its newest file, both with wrk at the metadata benchmark's "
        "connections on the same server, back to back in an order that alternates per round.",
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
