#!/usr/bin/env python3
"""Which ASGI server should filesapi run on?  Measure it.

For each candidate server (granian on the asyncio loop, granian on uvloop when uvloop is
installed, uvicorn with uvloop+httptools when installed) this script starts the real app
(``--factory filesapi.app:app_from_env``) on the local-disk store (SQLite + blobs folder under a
temporary directory) on a free 127.0.0.1 port, and measures with external tools:

  upload     curl -F file=@FILE  POST /v1/files              MiB/s (end to end: includes the
             server's CRC, write, fsync and commit)
  download   curl -o /dev/null   GET /v1/files/ID/content    MiB/s (file is in page cache)
  metadata   wrk -c64            GET /v1/files/ID             req/s
  healthz    wrk -c64            GET /healthz                 req/s (bare-endpoint anchor)

plus, in the same run, anchors that bound what is possible on this machine:

  dd write   dd if=/dev/zero of=FILE bs=1M count=N conv=fsync  (the disk, for uploads)
  dd read    dd if=FILE of=/dev/null bs=1M                     (page cache read)
  loopback   curl against a raw-socket sink/sendfile server in this process (what curl and
             the loopback interface can do with no HTTP framework at all)

and, per server, a probe app (this module's ``probe_app``) that reads the request body with
bare ASGI ``receive()`` calls and reports the chunk sizes the server delivers, the raw body
throughput before filesapi does any work, and whether ``http.response.pathsend`` is offered.

The server's worker RSS is sampled from /proc (granian runs the app in a child process; the
process with the largest RSS in the server's process tree is taken as the worker) while the
large upload and download run.

All servers are started at once (on different ports and data folders) and every round visits
them in a rotated order, so slow drift on a shared machine spreads evenly over them. Each number
in the table is the median over --rounds. Nothing leaves 127.0.0.1.

Run it from the repository root:  .venv/bin/python bench/asgi_servers.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from asgi_compare.measure import Results, measure_anchors, measure_round
from asgi_compare.report import report
from asgi_compare.servers import Server, ServerSpec, server_specs
from harness.anchors import LoopbackSink
from harness.plan import MiB, make_source


def parse_mib(text: str) -> int:
    """'256', '256M', '256MiB', '1G', '1GiB' -> MiB."""
    m = re.fullmatch(r"\s*(\d+)\s*([mMgG]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: use e.g. 256, 256MiB, 1GiB")
    n = int(m.group(1))
    return n * 1024 if m.group(2).lower() == "g" else n


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size",
        type=parse_mib,
        default=256,
        metavar="MiB",
        help="size of the large file for upload/download (e.g. 256, 1GiB; default 256 MiB)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per measurement; medians are reported (default 3)"
    )
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (default 3)")
    parser.add_argument(
        "--parallel",
        type=int,
        default=4,
        help="simultaneous downloads in the parallel download test (default 4)",
    )
    parser.add_argument(
        "--no-tmpfs",
        action="store_true",
        help="skip the upload to a data folder on "
        "/dev/shm (which separates the server's cost from the disk's)",
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="connections for small requests (default 64)"
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (default 1, leaving the other core(s) to the server)",
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the built-in Python load client even if wrk is installed"
    )
    parser.add_argument(
        "--servers", default="", help="comma-separated subset of server names to run (default: all available)"
    )
    parser.add_argument(
        "--tmp-dir",
        default=None,
        help="where the data folders and the test file go (default: system temp; it is the disk dd measures)",
    )
    parser.add_argument("--json", dest="json_out", default=None, help="also write raw samples as JSON here")
    args = parser.parse_args()

    for tool in ("curl", "dd"):
        if not shutil.which(tool):
            parser.error(f"{tool} is required")
    py = sys.executable
    specs = server_specs(py)
    if args.servers:
        wanted = set(args.servers.split(","))
        specs = [s for s in specs if s.name in wanted]
        if not specs:
            parser.error(f"no such server; available: {[s.name for s in server_specs(py)]}")
    if not shutil.which("wrk") and not args.no_wrk:
        print(
            "note: wrk not installed (apt-get install -y wrk); using the Python load client", file=sys.stderr
        )

    started = time.monotonic()
    res_load = f"{os.getloadavg()[0]:.2f}"
    work = Path(tempfile.mkdtemp(prefix="filesapi-asgi-bench-", dir=args.tmp_dir))
    servers: list[tuple[Server, Server, Server | None]] = []
    shm: Path | None = None
    sink: LoopbackSink | None = None
    res = Results()
    res.info["load_start"] = res_load  # type: ignore[assignment]
    try:
        size = args.size * MiB
        src = work / "large.bin"
        make_source(src, args.size)
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("FILESAPI_", "GRANIAN_", "UVICORN_"))
        }
        bench_dir = str(Path(__file__).resolve().parent)
        if not args.no_tmpfs and os.path.isdir("/dev/shm"):
            free = shutil.disk_usage("/dev/shm").free
            if free > (len(specs) + 1) * size * 2:
                shm = Path(tempfile.mkdtemp(prefix="filesapi-asgi-bench-", dir="/dev/shm"))
        for spec in specs:
            data = work / f"data-{spec.name}"
            env = {
                **base_env,
                "FILESAPI_DATA_DIR": str(data),
                "FILESAPI_MAX_FILE_SIZE": f"{args.size * 2 + 1}MiB",
                "FILESAPI_AUTH": "open",
                "FILESAPI_LOG_LEVEL": "warning",
            }
            app = Server(spec, "filesapi.app:app_from_env", env, work / f"{spec.name}.log")
            probe = Server(
                spec,
                "asgi_compare.probe:probe_app",
                {**base_env, "PYTHONPATH": bench_dir},
                work / f"{spec.name}-probe.log",
            )
            probe.spec = ServerSpec(spec.name, [a for a in spec.argv if a != "--factory"], spec.note)
            tmpfs = None
            if shm is not None:
                tmpfs = Server(
                    spec,
                    "filesapi.app:app_from_env",
                    {**env, "FILESAPI_DATA_DIR": str(shm / spec.name)},
                    work / f"{spec.name}-tmpfs.log",
                )
            servers.append((app, probe, tmpfs))
        everyone = [s for group in servers for s in group if s is not None]
        for s in everyone:
            s.start()
        for app, probe, tmpfs in servers:
            app.wait_ready("/healthz")
            probe.wait_ready("/")
            if tmpfs is not None:
                tmpfs.wait_ready("/healthz")
        print(f"started {len(everyone)} servers in {work}" + (f" and {shm}" if shm else ""), file=sys.stderr)
        sink = LoopbackSink(src)

        for rnd in range(args.rounds):
            measure_anchors(res, work, src, sink, args)

            order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
            for app, probe, tmpfs in order:
                measure_round(app, probe, tmpfs, src, size, res, args)
                last = {k: v[-1] for k, v in res.samples[app.spec.name].items()}
                print(
                    f"round {rnd + 1}/{args.rounds} {app.spec.name}: upload {last['upload']:.0f} "
                    f"download {last['download']:.0f} MiB/s, meta {last['meta']:.0f} "
                    f"healthz {last['healthz']:.0f} req/s",
                    file=sys.stderr,
                )
        text = report(res, specs, args, time.monotonic() - started)
        print(text)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({"samples": res.samples, "info": res.info}, indent=1))
        return 0
    finally:
        if sink is not None:
            sink.close()
        for group in servers:
            for server in group:
                if server is not None:
                    server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
