#!/usr/bin/env python3
"""filesapi benchmark suite: every benchmark against the real server process, each figure next to
an anchor measured in the same run, and the ratio between them.

    .venv/bin/python bench/run.py                 # full run (~10 min), writes docs/benchmarks.{md,png}
    .venv/bin/python bench/run.py --quick         # small sizes, 1 round (~1-2 min), writes bench/results/
    .venv/bin/python bench/run.py --only list,metadata --rounds 3

Client and server run on this machine and talk over 127.0.0.1 only. Each benchmark starts its own
``python -m filesapi serve`` (a fresh data folder under one temporary folder; the local-disk store
unless said otherwise), measures over --rounds rounds, and stops it. Within a round the anchor and
filesapi are measured back to back, in an order that alternates between rounds, so drift on a shared
machine hits both. The table shows medians over the rounds; the ratio column is the median of the
per-round ratios (figure / anchor of the same round).

Benchmarks (--only takes these names):

  upload    1 GiB multipart upload (checksum + fsync + commit included) with curl -F, against
            ``dd if=FILE of=OUT bs=1M conv=fsync`` on the filesystem of the server's data folder.
            Also the server worker's peak RSS during it and during a 256 MiB upload (flatness).
  download  GET /v1/files/ID/content of that 1 GiB file with curl -o /dev/null, against nginx
            (sendfile on) serving the same bytes. Worker RSS as for upload.
  metadata  GET /v1/files/ID with ``wrk -t2 -c64 --latency``, against GET /healthz (a bare JSON
            endpoint on the same server): req/s and p99.
  list      GA ``GET /v1/files?limit=100`` (first page) and the deepest page (beta ``after_id`` near
            the oldest file) on a store of 1,000,000 files (SQLite), sequential keep-alive requests:
            p50 and p99. The anchor of the first page is /healthz with the same client. The store
            is built once with the server's own schema and cached in bench/.cache/ per schema revision.
  small     4 KiB multipart uploads from 32 concurrent connections (wrk + a Lua script; every
            request creates a file): files/s, against /healthz req/s at the same concurrency. The
            default stores such files inline in SQLite; a sample also shows --inline-max-size 0
            (every file a blob: its own fsyncs) and the disk alone doing what that path does.
  parallel  32 concurrent 64 MiB uploads (32 curl processes): peak worker RSS, against its idle RSS.
  s3        PostgreSQL + S3 mode (a real PostgreSQL from Debian's binaries and a real SeaweedFS,
            started by tests/servers_pg.py and tests/servers_s3.py): 1 GiB upload and download,
            against SeaweedFS's own PUT / GET of the same object with ``curl --aws-sigv4``.

--quick uses 64 MiB files (16 MiB for the flatness probe and the parallel uploads), a store of
100,000 files, 3-second wrk runs and one round.

Nothing here asserts timings; the "met?" column only reports. The process exits 0 unless a
benchmark failed to run (a missed target is not a failure). It kills every process it starts (the
servers, nginx, PostgreSQL, SeaweedFS), also on errors and Ctrl+C, and removes its temporary files.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from asgi_servers import (  # noqa: E402  (helpers of the earlier ASGI-server measurement)
    RssSampler,
    free_port,
    make_source,
    proc_status_kib,
    proc_tree,
    tree_cpu_seconds,
)

MiB = 1 << 20
GiB = 1 << 30
MB = 1_000_000
API_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BETA_HEADER = {"anthropic-beta": "files-api-2025-04-14"}
CURL_HEADERS = [arg for k, v in API_HEADERS.items() for arg in ("-H", f"{k}: {v}")]
BENCHMARKS = ("upload", "download", "metadata", "list", "small", "parallel", "s3")
CACHE = ROOT / "bench" / ".cache"


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Plan:
    big: int  # bytes of the large file (upload, download, S3)
    probe: int  # the smaller upload/download whose peak RSS shows flatness
    wrk_seconds: int
    list_files: int
    list_requests: int
    parallel: int
    parallel_size: int
    small_size: int
    small_connections: int
    meta_connections: int
    rounds: int


FULL = Plan(
    big=GiB,
    probe=256 * MiB,
    wrk_seconds=10,
    list_files=1_000_000,
    list_requests=200,
    parallel=32,
    parallel_size=64 * MiB,
    small_size=4096,
    small_connections=32,
    meta_connections=64,
    rounds=5,
)
QUICK = Plan(
    big=64 * MiB,
    probe=16 * MiB,
    wrk_seconds=3,
    list_files=100_000,
    list_requests=100,
    parallel=32,
    parallel_size=16 * MiB,
    small_size=4096,
    small_connections=32,
    meta_connections=64,
    rounds=1,
)


def human(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"


def count(n: int) -> str:
    return f"{n:,}"


# --------------------------------------------------------------------------- result rows


@dataclass
class Row:
    """One line of the table: a filesapi figure, its anchor, their ratio and the target."""

    bench: str
    label: str
    unit: str
    anchor_label: str
    target: str
    met_fn: Callable[[Row], bool | None]
    # chart: ("ratio", target ratio, higher_is_better) or ("limit", limit, higher_is_better)
    chart: tuple[str, float, bool] | None = None
    digits: int = 0
    anchor_unit: str | None = None  # when it differs from the figure's
    short: str = ""  # label in the chart
    figure: list[float] = field(default_factory=list)
    anchor: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    status: str | None = None  # "not available: ..." / "failed: ..."

    def add(self, figure: float, anchor: float | None) -> None:
        self.figure.append(figure)
        if anchor is not None:
            self.anchor.append(anchor)
            if anchor:
                self.ratio.append(figure / anchor)

    @staticmethod
    def _med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    @property
    def f(self) -> float | None:
        return self._med(self.figure)

    @property
    def a(self) -> float | None:
        return self._med(self.anchor)

    @property
    def r(self) -> float | None:
        return self._med(self.ratio)

    @property
    def met(self) -> bool | None:
        if self.status or self.f is None:
            return None
        return self.met_fn(self)

    def fmt(self, v: float | None, unit: str | None = None) -> str:
        if v is None:
            return "-"
        return f"{v:,.{self.digits}f} {unit or self.unit}"

    def cells(self) -> list[str]:
        if self.status:
            return [self.label, self.status, self.anchor_label, "-", self.target, "n/a"]
        met = self.met
        return [
            self.label,
            self.fmt(self.f),
            f"{self.fmt(self.a, self.anchor_unit)} ({self.anchor_label})"
            if self.a is not None
            else self.anchor_label,
            f"{self.r:.2f}x" if self.r is not None else "-",
            self.target,
            "-" if met is None else ("yes" if met else "NO"),
        ]


def make_rows(plan: Plan) -> dict[str, Row]:
    big, probe, par = human(plan.big), human(plan.probe), human(plan.parallel_size)
    rows = [
        Row(
            "upload",
            f"upload {big}, local disk (multipart, CRC32C + fsync)",
            "MiB/s",
            "dd conv=fsync",
            ">= 0.6 x dd",
            lambda r: r.r is not None and r.r >= 0.6,
            ("ratio", 0.6, True),
        ),
        Row(
            "download",
            f"download {big}, local disk",
            "MiB/s",
            "nginx",
            ">= 0.55 x nginx",
            lambda r: r.r is not None and r.r >= 0.55,
            ("ratio", 0.55, True),
        ),
        Row(
            "metadata",
            f"metadata GET, {plan.meta_connections} connections",
            "req/s",
            "/healthz",
            ">= 0.5 x /healthz",
            lambda r: r.r is not None and r.r >= 0.5,
            ("ratio", 0.5, True),
        ),
        Row(
            "metadata",
            f"metadata GET p99, {plan.meta_connections} connections",
            "ms",
            "/healthz p99",
            "< 50 ms",
            lambda r: r.f is not None and r.f < 50,
            ("limit", 50, False),
            digits=1,
        ),
        Row(
            "list",
            f"list first page (100 of {count(plan.list_files)}), p50",
            "ms",
            "/healthz p50",
            "< 10 ms",
            lambda r: r.f is not None and r.f < 10,
            ("limit", 10, False),
            digits=2,
        ),
        Row(
            "list",
            "list deepest page, p50",
            "ms",
            "first page p50",
            "<= 1.5 x first page",
            lambda r: r.r is not None and r.r <= 1.5,
            ("ratio", 1.5, False),
            digits=2,
        ),
        Row(
            "small",
            f"small uploads ({human(plan.small_size)}), {plan.small_connections} connections",
            "files/s",
            f"/healthz, {plan.small_connections} conns",
            ">= 1,000 files/s",
            lambda r: r.f is not None and r.f >= 1000,
            ("limit", 1000, True),
            anchor_unit="req/s",
        ),
        Row(
            "upload",
            f"server RSS during {big} upload",
            "MB",
            f"during {probe} upload",
            "< 200 MB, flat (<= 1.1x)",
            lambda r: r.f is not None and r.f < 200 and r.r is not None and r.r <= 1.1,
            ("limit", 200, False),
        ),
        Row(
            "download",
            f"server RSS during {big} download",
            "MB",
            f"during {probe} download",
            "< 200 MB, flat (<= 1.1x)",
            lambda r: r.f is not None and r.f < 200 and r.r is not None and r.r <= 1.1,
            ("limit", 200, False),
        ),
        Row(
            "parallel",
            f"server RSS during {plan.parallel} concurrent {par} uploads",
            "MB",
            "idle",
            "< 300 MB",
            lambda r: r.f is not None and r.f < 300,
            ("limit", 300, False),
        ),
        Row(
            "s3",
            f"PostgreSQL + S3: upload {big}",
            "MiB/s",
            "SeaweedFS PUT",
            ">= 0.8 x PUT",
            lambda r: r.r is not None and r.r >= 0.8,
            ("ratio", 0.8, True),
        ),
        Row(
            "s3",
            f"PostgreSQL + S3: download {big}",
            "MiB/s",
            "SeaweedFS GET",
            ">= 0.8 x GET",
            lambda r: r.r is not None and r.r >= 0.8,
            ("ratio", 0.8, True),
        ),
        Row(
            "s3",
            f"PostgreSQL + S3: download {big}, download_redirect (307 to the bucket)",
            "MiB/s",
            "SeaweedFS GET",
            ">= 0.8 x GET",
            lambda r: r.r is not None and r.r >= 0.8,
            ("ratio", 0.8, True),
        ),
    ]
    keys = [
        "upload",
        "download",
        "meta_rps",
        "meta_p99",
        "list_first",
        "list_deep",
        "small",
        "rss_upload",
        "rss_download",
        "rss_parallel",
        "s3_upload",
        "s3_download",
        "s3_download_redirect",
    ]
    short = [
        f"upload {big}\n(local disk)",
        f"download {big}\n(local disk)",
        "metadata GET\nreq/s",
        "metadata GET\np99",
        "list first\npage p50",
        "list deepest\npage p50",
        f"small uploads\n({human(plan.small_size)}) files/s",
        f"RSS {big}\nupload",
        f"RSS {big}\ndownload",
        f"RSS {plan.parallel} x {par}\nuploads",
        f"S3 upload\n{big}",
        f"S3 download\n{big}",
        f"S3 download\n{big} redirected",
    ]
    for row, text in zip(rows, short, strict=True):
        row.short = text
    return dict(zip(keys, rows, strict=True))


# --------------------------------------------------------------------------- processes


class Procs:
    """Every process this script starts, each in its own session (process group), so that stopping
    one stops its children (granian's workers) and nothing else."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kw,
            )
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        else:
            # the leader is gone; make sure no child of its group lingers
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.live):
            self.stop(proc, timeout=10)


@dataclass
class Ctx:
    plan: Plan
    work: Path  # the temporary folder: sources, data folders, logs
    procs: Procs
    python: str
    env: dict[str, str]  # for filesapi processes (PYTHONPATH when --src)
    rows: dict[str, Row]
    verbose: bool
    commands: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)

    def log(self, msg: str) -> None:
        print(f"  {msg}", flush=True)

    def command(self, bench: str, cmd: str) -> None:
        cmd = cmd.replace(str(self.work), "$WORK").replace(str(ROOT) + "/", "")
        self.commands.setdefault(bench, [])
        if cmd not in self.commands[bench]:
            self.commands[bench].append(cmd)

    def note(self, bench: str, text: str) -> None:
        self.notes.setdefault(bench, []).append(text)

    def sample(self, bench: str, what: str, value: float) -> None:
        self.extra.setdefault(bench, {}).setdefault(what, []).append(value)

    def source(self, size: int) -> Path:
        """A file of ``size`` bytes (random-ish: a random MiB varied per MiB, never zeros), made once."""
        path = self.work / "src" / f"src-{human(size).replace(' ', '')}.bin"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            if size % MiB:
                path.write_bytes(os.urandom(size))
            else:
                make_source(path, size // MiB)
        return path


def run(argv: list[str], timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, **kw)


def shell_join(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


# --------------------------------------------------------------------------- the server under test


class FilesapiServer:
    def __init__(
        self, ctx: Ctx, name: str, extra_args: list[str] | None = None, env: dict[str, str] | None = None
    ):
        self.ctx = ctx
        self.name = name
        self.data_dir = ctx.work / f"data-{name}"
        self.log_path = ctx.work / f"server-{name}.log"
        self.extra_args = extra_args or []
        self.env = env or ctx.env
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker = 0

    def argv(self, port: int | str) -> list[str]:
        return [
            self.ctx.python,
            "-m",
            "filesapi",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(self.data_dir),
            "--max-file-size",
            "2GiB",
            *self.extra_args,
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FilesapiServer:
        self.port = free_port()
        self.proc = self.ctx.procs.spawn(self.argv(self.port), self.log_path, env=self.env, cwd=self.ctx.work)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"filesapi serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                finally:
                    conn.close()
            time.sleep(0.1)
        else:
            raise RuntimeError(f"filesapi serve did not answer /healthz within 90 s:\n{self.log_tail()}")
        self.worker = self.find_worker()
        return self

    def find_worker(self) -> int:
        """Granian runs the app in a child process: the largest-RSS descendant of the main pid."""
        assert self.proc is not None
        for _ in range(50):
            children = [p for p in proc_tree(self.proc.pid) if p != self.proc.pid]
            if children:
                return max(children, key=lambda p: proc_status_kib(p, "VmRSS"))
            time.sleep(0.1)
        return self.proc.pid

    def rss_mb(self) -> float:
        return proc_status_kib(self.worker, "VmRSS") * 1024 / MB

    def cpu(self) -> float:
        assert self.proc is not None
        return tree_cpu_seconds(self.proc.pid)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            self.ctx.procs.stop(self.proc)
            self.proc = None

    def __enter__(self) -> FilesapiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def peak_rss(server: FilesapiServer) -> Iterator[RssSampler]:
    with RssSampler(server.worker, interval=0.005) as sampler:
        yield sampler


def rss_mb_of(sampler: RssSampler) -> float:
    return sampler.peak_kib * 1024 / MB


# --------------------------------------------------------------------------- clients


def curl(args: list[str]) -> tuple[int, float, float]:
    """Runs curl; returns (HTTP status, time_total seconds, bytes downloaded)."""
    out = run(["curl", "-sS", "--noproxy", "*", "-w", "\n%{http_code} %{time_total} %{size_download}", *args])
    if out.returncode != 0:
        raise RuntimeError(f"curl failed ({out.returncode}): {out.stderr.strip()}")
    code, total, down = out.stdout.split()[-3:]
    return int(code), float(total), float(down)


def upload_argv(url: str, src: Path, out: Path | str) -> list[str]:
    return ["-o", str(out), "-F", f"file=@{src}", *CURL_HEADERS, f"{url}/v1/files"]


def upload(server: FilesapiServer, src: Path) -> tuple[str, float]:
    out = server.ctx.work / f"upload-{server.name}.json"
    code, seconds, _ = curl(upload_argv(server.url, src, out))
    if code != 200:
        raise RuntimeError(f"upload of {src.name}: HTTP {code}: {out.read_text(errors='replace')[:500]}")
    return json.loads(out.read_text())["id"], seconds


def download(url: str, size: int, headers: list[str]) -> float:
    code, seconds, down = curl(["-o", "/dev/null", *headers, url])
    if code != 200 or int(down) != size:
        raise RuntimeError(f"GET {url}: HTTP {code}, {int(down)} of {size} bytes")
    return seconds


def api(server_url: str, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    conn = http.client.HTTPConnection(server_url.removeprefix("http://"), timeout=120)
    try:
        conn.request(method, path, headers={**API_HEADERS, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {body[:300]!r}")
        return json.loads(body) if body else None
    finally:
        conn.close()


def delete_file(server: FilesapiServer, file_id: str) -> None:
    with contextlib.suppress(Exception):
        api(server.url, "DELETE", f"/v1/files/{file_id}")


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: str


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[m.group(2)]


def wrk(
    ctx: Ctx,
    bench: str,
    url: str,
    connections: int,
    *,
    script: Path | None = None,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{ctx.plan.wrk_seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    shown = re.sub(r"file_01\w+", "ID", shell_join(argv).replace(url.split("/", 3)[2], "127.0.0.1:PORT"))
    ctx.command(bench, shown.replace(str(ctx.work), "$WORK"))
    out = run(argv, timeout=ctx.plan.wrk_seconds + 60)
    text = out.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE)
    if out.returncode != 0 or not (m and total and p50 and p99):
        raise RuntimeError(f"wrk failed ({out.returncode}): {text}\n{out.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    result = WrkResult(
        rps=float(m.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non2xx=int(bad.group(1)) if bad else 0,
        socket_errors=errors.group(0) if errors else "",
    )
    if result.non2xx:
        raise RuntimeError(f"wrk {url}: {result.non2xx} of {result.requests} responses were not 2xx:\n{text}")
    if ctx.verbose:
        print(text)
    return result


def sequential_latencies(url: str, path: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    """n sequential GETs on one keep-alive connection; milliseconds each (request sent to body read)."""
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    hdrs = {**API_HEADERS, **(headers or {})}
    times: list[float] = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            conn.request("GET", path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            times.append((time.perf_counter() - started) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
    finally:
        conn.close()
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --------------------------------------------------------------------------- anchors


def dd_fsync(ctx: Ctx, src: Path, out: Path) -> float:
    """Seconds for dd to copy src to out with a final fsync (wall clock around the dd process)."""
    argv = ["dd", f"if={src}", f"of={out}", "bs=1M", "conv=fsync"]
    ctx.command("upload", shell_join(argv).replace(str(ctx.work), "$WORK"))
    started = time.perf_counter()
    result = run(argv)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"dd failed: {result.stderr}")
    out.unlink()
    return seconds


class Nginx:
    """nginx from apt serving ``root`` with sendfile on, one worker, on a free 127.0.0.1 port."""

    def __init__(self, ctx: Ctx, root: Path) -> None:
        self.ctx = ctx
        self.dir = ctx.work / "nginx"
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        user = "user root;\n" if os.geteuid() == 0 else ""
        tmp = self.dir / "tmp"
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(
            f"daemon off;\nworker_processes 1;\n{user}error_log {self.dir / 'error.log'};\n"
            f"pid {self.dir / 'nginx.pid'};\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log off;\n  sendfile on;\n"
            f"  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n"
            f"  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {root}; }}\n}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = self.ctx.procs.spawn(
            [nginx, "-p", str(self.dir), "-c", str(self.conf)], self.dir / "out.log"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.dir / 'error.log').read_text(errors='replace')}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("HEAD", "/")
                conn.getresponse()
                conn.close()
                return self
            time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.ctx.procs.stop(self.proc, sig=signal.SIGTERM)


# --------------------------------------------------------------------------- benchmarks


def order(round_no: int) -> bool:
    """True when the anchor goes first in this round (alternates)."""
    return round_no % 2 == 0


def bench_upload(ctx: Ctx) -> None:
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
            for which in ("anchor", "filesapi") if order(rnd) else ("filesapi", "anchor"):
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
                delete_file(server, small_id)
                delete_file(server, big_id)
            row.add(plan.big / filesapi_seconds / MiB, plan.big / dd_seconds / MiB)
            ctx.log(
                f"round {rnd + 1}: filesapi {row.figure[-1]:,.0f} MiB/s, dd {row.anchor[-1]:,.0f} MiB/s; "
                f"RSS {rss.figure[-1]:.0f} MB ({human(plan.big)}) / "
                f"{rss.anchor[-1]:.0f} MB ({human(plan.probe)})"
            )
        ctx.sample("upload", "worker RSS idle MB", idle)


def bench_download(ctx: Ctx) -> None:
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
            for which in ("anchor", "filesapi") if order(rnd) else ("filesapi", "anchor"):
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


def bench_metadata(ctx: Ctx) -> None:
    plan = ctx.plan
    rps, p99 = ctx.rows["meta_rps"], ctx.rows["meta_p99"]
    with FilesapiServer(ctx, "metadata") as server:
        file_id, _ = upload(server, ctx.source(plan.small_size))
        for rnd in range(plan.rounds):
            got: dict[str, WrkResult] = {}
            for which in ("anchor", "filesapi") if order(rnd) else ("filesapi", "anchor"):
                path = "/healthz" if which == "anchor" else f"/v1/files/{file_id}"
                got[which] = wrk(
                    ctx, "metadata", server.url + path, plan.meta_connections, headers=API_HEADERS
                )
            rps.add(got["filesapi"].rps, got["anchor"].rps)
            p99.add(got["filesapi"].p99_ms, got["anchor"].p99_ms)
            ctx.sample("metadata", "metadata p50 ms", got["filesapi"].p50_ms)
            ctx.sample("metadata", "/healthz p50 ms", got["anchor"].p50_ms)
            for which, res in got.items():
                if res.socket_errors:
                    ctx.note("metadata", f"round {rnd + 1}, {which}: wrk {res.socket_errors}")
            ctx.log(
                f"round {rnd + 1}: metadata {got['filesapi'].rps:,.0f} req/s "
                f"p99 {got['filesapi'].p99_ms:.1f} ms; "
                f"/healthz {got['anchor'].rps:,.0f} req/s p99 {got['anchor'].p99_ms:.1f} ms"
            )


# ---- list: a large SQLite store, built once per schema revision and cached


def schema_key(ctx: Ctx) -> str:
    """The schema revision this filesapi needs plus a digest of its migration scripts."""
    probe = ctx.work / "schema-probe"
    out = run(
        [
            ctx.python,
            "-c",
            "import filesapi, pathlib, hashlib, sys\n"
            "from filesapi.metadata.migrate import head_revision\n"
            "d = pathlib.Path(filesapi.__file__).parent / 'metadata' / 'migrations' / 'versions'\n"
            "h = hashlib.sha256(b''.join(p.read_bytes() for p in sorted(d.glob('*.py'))))\n"
            "print(head_revision(), h.hexdigest()[:10])",
        ],
        env=ctx.env,
        cwd=ctx.work,
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not read the schema revision: {out.stderr}")
    shutil.rmtree(probe, ignore_errors=True)
    head, digest = out.stdout.split()
    return f"{head}-{digest}"


def build_list_store(ctx: Ctx, n: int, dest: Path) -> None:
    """A metadata.db with n files in the open-mode workspace ``default``: the schema from
    ``filesapi db upgrade``, the workspace and one template row from the real server (one upload),
    then n - 1 more rows inserted directly with executemany in one transaction (no blobs)."""
    build = ctx.work / "list-build"
    shutil.rmtree(build, ignore_errors=True)
    argv = [ctx.python, "-m", "filesapi", "db", "upgrade", "--data-dir", str(build)]
    ctx.command("list", shell_join(argv).replace(str(ctx.work), "$WORK"))
    out = run(argv, env=ctx.env, cwd=ctx.work)
    if out.returncode != 0:
        raise RuntimeError(f"filesapi db upgrade failed: {out.stdout}{out.stderr}")
    server = FilesapiServer(ctx, "list-build")
    server.data_dir = build
    with server:
        upload(server, ctx.source(ctx.plan.small_size))
    db = sqlite3.connect(build / "metadata.db", isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        template = db.execute("SELECT * FROM files").fetchone()
        columns = list(template.keys())
        sys.path.insert(0, ctx.env.get("PYTHONPATH", "").split(os.pathsep)[0] or str(ROOT / "src"))
        from filesapi.ids import IdClock

        clock = IdClock()
        base = dict(template)

        def rows() -> Iterator[tuple[Any, ...]]:
            for i in range(n - 1):
                file_id, created = clock.new_file_id()
                base["id"], base["created_at_us"], base["filename"] = file_id, created, f"file-{i:07d}.bin"
                yield tuple(base[c] for c in columns)

        started = time.monotonic()
        db.execute("BEGIN")
        db.executemany(
            f"INSERT INTO files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows()
        )
        db.execute(
            "UPDATE workspaces SET used_bytes = ? WHERE name = 'default'", (n * template["size_bytes"],)
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ctx.log(f"inserted {n - 1:,} rows in {time.monotonic() - started:.1f} s")
    finally:
        db.close()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    shutil.copyfile(build / "metadata.db", tmp)
    tmp.rename(dest)
    shutil.rmtree(build, ignore_errors=True)


def bench_list(ctx: Ctx) -> None:
    plan = ctx.plan
    first, deep = ctx.rows["list_first"], ctx.rows["list_deep"]
    key = schema_key(ctx)
    cached = CACHE / f"list-store-{key}-{plan.list_files}" / "metadata.db"
    ctx.command(
        "list",
        f"# the store, built once and cached in bench/.cache/: python -m filesapi db upgrade --data-dir D; "
        f"one upload through the server (workspace 'default' + a template row); {plan.list_files - 1:,} more "
        "rows with sqlite3 executemany in one transaction, ids from filesapi.ids.IdClock().new_file_id()",
    )
    if cached.exists():
        ctx.log(f"using the cached store {cached.relative_to(ROOT)}")
    else:
        ctx.log(
            f"building a store of {plan.list_files:,} files "
            f"(cached afterwards in {cached.parent.relative_to(ROOT)})"
        )
        build_list_store(ctx, plan.list_files, cached)
    server = FilesapiServer(ctx, "list")
    server.data_dir.mkdir(parents=True)
    shutil.copyfile(cached, server.data_dir / "metadata.db")
    n = plan.list_requests
    with server:
        db = sqlite3.connect(server.data_dir / "metadata.db")
        try:
            # the 102nd-oldest id: after_id=<it> gives the oldest 101 files, a full last page + has_more
            (pivot,) = db.execute("SELECT id FROM files ORDER BY id ASC LIMIT 1 OFFSET 101").fetchone()
            (total,) = db.execute("SELECT count(*) FROM files").fetchone()
        finally:
            db.close()
        first_path, deep_path = "/v1/files?limit=100", f"/v1/files?limit=100&after_id={pivot}"
        page = api(server.url, "GET", first_path)
        deepest = api(server.url, "GET", deep_path, BETA_HEADER)
        if len(page["data"]) != 100 or len(deepest["data"]) != 100:
            raise RuntimeError(f"pages of {len(page['data'])} and {len(deepest['data'])} files, expected 100")
        ctx.command(
            "list",
            f"{n} x GET {first_path} and {n} x GET {deep_path.replace(pivot, '<102nd-oldest id>')} "
            "(+ anthropic-beta: files-api-2025-04-14), sequential on one keep-alive connection "
            f"(Python http.client), after 5 warm-up requests each; store of {total:,} files",
        )
        for path, hdrs in ((first_path, None), (deep_path, BETA_HEADER), ("/healthz", None)):
            sequential_latencies(server.url, path, 5, hdrs)  # warm-up
        for rnd in range(plan.rounds):
            lat: dict[str, list[float]] = {}
            steps = [
                ("healthz", "/healthz", None),
                ("first", first_path, None),
                ("deep", deep_path, BETA_HEADER),
            ]
            for name, path, hdrs in steps if order(rnd) else steps[::-1]:
                lat[name] = sequential_latencies(server.url, path, n, hdrs)
            p50 = {k: percentile(v, 0.5) for k, v in lat.items()}
            first.add(p50["first"], p50["healthz"])
            deep.add(p50["deep"], p50["first"])
            ctx.sample("list", "first page p99 ms", percentile(lat["first"], 0.99))
            ctx.sample("list", "deepest page p99 ms", percentile(lat["deep"], 0.99))
            ctx.sample("list", "/healthz p99 ms", percentile(lat["healthz"], 0.99))
            ctx.log(
                f"round {rnd + 1}: first page p50 {p50['first']:.2f} ms, deepest {p50['deep']:.2f} ms, "
                f"/healthz {p50['healthz']:.2f} ms"
            )


def small_upload_script(ctx: Ctx) -> Path:
    """A wrk Lua script: POST /v1/files with a multipart body holding one small file."""
    import random
    import string

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


def disk_small_files_rate(folder: Path, threads: int, size: int, seconds: float) -> float:
    """What the disk allows for durable small files: ``threads`` threads each looping over
    write(size bytes) + fsync + rename + fsync of the folder, for ``seconds``; files/s."""
    import threading

    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    done = [0] * threads
    deadline = time.monotonic() + seconds

    def loop(k: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            tmp, final = folder / f"{k}-{i}.tmp", folder / f"{k}-{i}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            i += 1
        done[k] = i

    started = time.monotonic()
    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rate = sum(done) / (time.monotonic() - started)
    shutil.rmtree(folder, ignore_errors=True)
    return rate


def bench_small(ctx: Ctx) -> None:
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
            for which in ("anchor", "filesapi") if order(rnd) else ("filesapi", "anchor"):
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


def bench_parallel(ctx: Ctx) -> None:
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
            argv = [
                ["curl", "-sS", "--noproxy", "*", "-w", "%{http_code}", *upload_argv(server.url, src, out)]
                for out in outs
            ]
            with peak_rss(server) as peak:
                started = time.perf_counter()
                procs = [
                    subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for a in argv
                ]
                results = [p.communicate(timeout=900) for p in procs]
                seconds = time.perf_counter() - started
            failed = [r for p, r in zip(procs, results, strict=True) if p.returncode != 0 or r[0] != "200"]
            if failed:
                raise RuntimeError(f"{len(failed)} of {plan.parallel} parallel uploads failed: {failed[0]}")
            row.add(rss_mb_of(peak), idle)
            ctx.sample("parallel", "total MiB/s", plan.parallel * plan.parallel_size / seconds / MiB)
            ctx.log(
                f"round {rnd + 1}: peak RSS {row.figure[-1]:.0f} MB (idle {idle:.0f} MB), {seconds:.1f} s"
            )
            for out in outs:
                delete_file(server, json.loads(out.read_text())["id"])


def bench_s3(ctx: Ctx) -> None:
    plan = ctx.plan
    up, down, redirected = ctx.rows["s3_upload"], ctx.rows["s3_download"], ctx.rows["s3_download_redirect"]
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from servers_pg import start_postgres
        from servers_s3 import SeaweedS3
    except Exception as exc:  # servers_s3.py may not exist yet
        raise Unavailable(f"tests/servers_pg.py or tests/servers_s3.py not importable ({exc})") from exc
    probe = run([ctx.python, "-c", "import filesapi.blobs.s3"], env=ctx.env, cwd=ctx.work)
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
                for which in ("anchor", "filesapi") if order(rnd) else ("filesapi", "anchor"):
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
                    delete_file(server, file_id)
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


class Unavailable(Exception):
    """A benchmark that cannot run here (missing component), reported as such, not as a failure."""


RUNNERS: dict[str, Callable[[Ctx], None]] = {
    "upload": bench_upload,
    "download": bench_download,
    "metadata": bench_metadata,
    "list": bench_list,
    "small": bench_small,
    "parallel": bench_parallel,
    "s3": bench_s3,
}


# --------------------------------------------------------------------------- machine and report


def first_line(argv: list[str]) -> str:
    with contextlib.suppress(Exception):
        out = run(argv, timeout=20)
        text = (out.stdout or out.stderr).strip()
        if text:
            return text.splitlines()[0]
    return "?"


def machine(ctx: Ctx) -> dict[str, str]:
    lscpu = run(["lscpu"]).stdout
    model = re.search(r"Model name:\s*(.+)", lscpu)
    hyper = re.search(r"Hypervisor vendor:\s*(.+)", lscpu)
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    mnt = run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,SIZE", "-T", str(ctx.work)]).stdout.split()
    disk = " ".join(mnt) if mnt else "?"
    if mnt:
        dev = Path(mnt[0]).name
        rota = Path(f"/sys/block/{dev}/queue/rotational")
        if rota.exists():
            disk += ", rotational" if rota.read_text().strip() == "1" else ", non-rotational"
    pg = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    versions = {
        "python": platform.python_version(),
        "granian": first_line([ctx.python, "-c", "import granian; print(granian.__version__)"]),
        "curl": first_line(["curl", "--version"]),
        "wrk": first_line(["wrk", "-v"]),
        "nginx": first_line(["nginx", "-v"]),
        "SeaweedFS": first_line([str(Path(ctx.python).parent / "weed"), "version"]),
        "PostgreSQL": first_line([str(pg[-1]), "--version"]) if pg else "not installed",
    }
    git = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip()
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"]).stdout.strip()
    src = ctx.env.get("PYTHONPATH") or str(ROOT / "src")
    return {
        "CPU": (model.group(1).strip() if model else platform.processor() or "?")
        + (f" ({hyper.group(1).strip()} guest)" if hyper else ""),
        "cores": str(os.cpu_count()),
        "RAM": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "disk (data folders)": disk,
        "kernel": f"{platform.system()} {platform.release()}",
        "server code": f"{src} (git {git}{', with uncommitted changes in src/' if dirty else ''})",
        "tools": "; ".join(f"{k} {v}" for k, v in versions.items()),
    }


def table(rows: list[Row]) -> list[list[str]]:
    return [["benchmark", "filesapi", "anchor", "ratio", "target", "met?"], *(r.cells() for r in rows)]


def print_table(rows: list[Row]) -> None:
    cells = table(rows)
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for n, line in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def md_table(cells: list[list[str]], right_from: int = 1) -> str:
    out = ["| " + " | ".join(cells[0]) + " |"]
    out.append("|" + "|".join("---" if i < right_from else "---:" for i in range(len(cells[0]))) + "|")
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in cells[1:]]
    return "\n".join(out)


def chart(rows: list[Row], path: Path, title: str) -> str | None:
    """Grouped bars: each row's measured ratio (or figure / limit) next to its target."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart written"
    # (label, measured, target, higher_is_better)
    ratios: list[tuple[str, float, float, bool]] = []
    limits: list[tuple[str, float, float, bool]] = []
    for r in rows:
        if r.status or r.chart is None or r.f is None:
            continue
        kind, target, higher = r.chart
        if kind == "ratio" and r.r is not None:
            ratios.append((r.short, r.r, target, higher))
        elif kind == "limit":
            limits.append((r.short, r.f / target, 1.0, higher))
        if "flat" in r.target and r.r is not None:
            ratios.append((r.short.replace("RSS ", "RSS flatness\n"), r.r, 1.1, False))
    panels = [
        ("filesapi / its anchor (ratio), next to the target ratio", ratios),
        ("filesapi figure / the absolute target, next to the target (= 1)", limits),
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        return "nothing to chart"
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4.6 * len(panels)), squeeze=False)
    good, bad, grey = "#2e8b57", "#c0392b", "#9aa5b1"
    for ax, (panel_title, items) in zip(axes[:, 0], panels, strict=True):
        width = 0.38
        top = min(max(max(m for _l, m, _t, _h in items), max(t for _l, _m, t, _h in items)) * 1.18, 3.0)
        for x, (_label, measured, target, higher) in enumerate(items):
            ok = measured >= target if higher else measured <= target
            shown = min(measured, top / 1.08)
            ax.bar(x - width / 2, shown, width, color=good if ok else bad)
            ax.bar(x + width / 2, target, width, color=grey)
            clipped = " (off scale)" if shown < measured else ""
            ax.annotate(
                f"{measured:.2f}{clipped}", (x - width / 2, shown), ha="center", va="bottom", fontsize=8
            )
            ax.annotate(
                "min" if higher else "max", (x + width / 2, target), ha="center", va="bottom", fontsize=7
            )
        ax.set_ylim(0, top)
        ax.set_xlim(-0.7, max(len(items), 4) - 0.3)
        ax.set_xticks(range(len(items)))
        ax.set_xticklabels([label for label, _m, _t, _h in items], fontsize=8)
        ax.set_title(panel_title, fontsize=10)
        ax.axhline(1.0, color="#888", linewidth=0.6, linestyle=":")
        ax.legend(
            handles=[
                Patch(color=good, label="filesapi, target met"),
                Patch(color=bad, label="filesapi, missed"),
                Patch(color=grey, label="target (min or max)"),
            ],
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def markdown(
    ctx: Ctx,
    rows: list[Row],
    info: dict[str, str],
    meta: dict[str, Any],
    png: Path | None,
    chart_note: str | None,
) -> str:
    plan = ctx.plan
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['minutes']:.1f} minutes, "
        f"{plan.rounds} round{'s' if plan.rounds != 1 else ''} per benchmark, medians). Regenerate with "
        "`.venv/bin/python bench/run.py` (see `bench/README.md`; `--help` explains every option).",
        "",
        "Every figure is measured against the real `filesapi serve` process (granian, 1 worker, the "
        "local-disk store unless the row says otherwise), with the client on the same machine over "
        "127.0.0.1, next to an anchor measured in the same run. The ratio is the median of the per-round "
        "ratios (each round's figure over the anchor measured back to back with it), so it can differ a "
        'little from the ratio of the two medians. Nothing here is a test assertion; the "met?" column '
        "only reports.",
        "",
        md_table(table(rows)),
        "",
    ]
    if png is not None and chart_note is None:
        out += [f"![benchmark ratios against targets]({png.name})", ""]
    out += ["## Machine", ""]
    out += [f"- **{k}**: {v}" for k, v in info.items()]
    out += [
        f"- **load average**: {meta['load_start']} at the start, {meta['load_end']} at the end "
        "(the machine is shared with other sessions; the figures move with it, the ratios much less)",
        "",
        "## Commands",
        "",
        "`$WORK` is the run's temporary folder (on the filesystem named above); `PORT` a free port on "
        "127.0.0.1. The server's stdout/stderr (its JSON access log at the default `--log-level info`) go to "
        "a file.",
        "",
    ]
    for bench in BENCHMARKS:
        if ctx.commands.get(bench):
            out += [f"**{bench}**", "", "```sh", *ctx.commands[bench], "```", ""]
    out += ["## Every round", "", "Samples per round, in order (the table shows their medians).", ""]
    sample_rows = [["benchmark", "figure per round", "anchor per round", "ratio per round"]]
    for r in rows:
        if r.figure:
            sample_rows.append(
                [
                    r.label,
                    ", ".join(f"{v:,.{r.digits}f}" for v in r.figure),
                    ", ".join(f"{v:,.{r.digits}f}" for v in r.anchor),
                    ", ".join(f"{v:.2f}" for v in r.ratio),
                ]
            )
    out += [md_table(sample_rows, right_from=99), ""]
    extra_rows = [["benchmark", "measure", "per round", "median"]]
    for bench, values in ctx.extra.items():
        for what, vs in values.items():
            extra_rows.append(
                [bench, what, ", ".join(f"{v:,.2f}" for v in vs), f"{statistics.median(vs):,.2f}"]
            )
    if len(extra_rows) > 1:
        out += ["Other measures taken along the way:", "", md_table(extra_rows, right_from=3), ""]
    out += ["## Notes", ""]
    out += [f"- {n}" for n in meta["notes"]]
    for bench, notes in ctx.notes.items():
        out += [f"- {bench}: {n}" for n in notes]
    return "\n".join(out) + "\n"


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


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        epilog=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and one round (~1-2 minutes)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per benchmark (default 5, --quick 1)"
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated benchmarks to run (default all): {','.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for benchmarks.md and benchmarks.png (default docs/ for a full run of every benchmark, "
        "bench/results/ for --quick or --only)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="run the server from this source folder (first on PYTHONPATH), not the installed filesapi",
    )
    parser.add_argument("--verbose", action="store_true", help="print wrk's full output")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.names = names or list(BENCHMARKS)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = dataclasses.replace(base, rounds=args.rounds or base.rounds)
    missing = [tool for tool in ("curl", "wrk", "dd") if shutil.which(tool) is None]
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists() and "download" in args.names:
        missing.append("nginx")
    if missing:
        print(f"missing tools: {', '.join(missing)} (apt-get install -y curl wrk nginx)", file=sys.stderr)
        return 2
    full = not args.quick and args.names == list(BENCHMARKS)
    out_dir = args.out or (ROOT / "docs" if full else ROOT / "bench" / "results")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILESAPI_", "AWS_"))}
    env["NO_PROXY"] = "*"
    if args.src:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"] = str(args.src.resolve())  # tests/servers_pg.py too
    python = (
        str(ROOT / ".venv" / "bin" / "python")
        if (ROOT / ".venv" / "bin" / "python").exists()
        else sys.executable
    )

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="filesapi-bench-"))
    procs = Procs()
    ctx = Ctx(
        plan=plan, work=work, procs=procs, python=python, env=env, rows=make_rows(plan), verbose=args.verbose
    )
    started = time.monotonic()
    load_start = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    failures = 0
    info: dict[str, str] = {}
    try:
        info = machine(ctx)
        print(
            f"filesapi benchmarks ({'quick' if args.quick else 'full'}, {plan.rounds} round(s)); "
            f"work folder {work}"
        )
        print(f"  {info['CPU']}, {info['cores']} cores, {info['RAM']}; load {load_start}")
        for name in args.names:
            print(f"[{name}]", flush=True)
            t0 = time.monotonic()
            try:
                RUNNERS[name](ctx)
            except Unavailable as exc:
                for row in ctx.rows.values():
                    if row.bench == name:
                        row.status = f"not available: {exc}"
                ctx.note(name, f"not available: {exc}")
                print(f"  not available: {exc}", flush=True)
            except (Exception, subprocess.TimeoutExpired) as exc:
                failures += 1
                detail = traceback.format_exc()
                for row in ctx.rows.values():
                    if row.bench == name and not row.figure:
                        row.status = (
                            f"failed: {str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}"
                        )
                ctx.note(name, f"failed: {exc!s}".splitlines()[0][:300])
                print(f"  FAILED: {detail}", flush=True)
            print(f"  ({time.monotonic() - t0:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process this run started; no report written", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    rows = [r for r in ctx.rows.values() if r.bench in args.names]
    minutes = (time.monotonic() - started) / 60
    print()
    print_table(rows)
    print()
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "benchmarks.png"
    meta = {
        "command": " ".join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]).strip(),
        "date": date,
        "minutes": minutes,
        "load_start": load_start,
        "load_end": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
        "notes": general_notes(ctx),
    }
    title = (
        f"filesapi benchmarks, {date}: {info.get('cores', '?')} cores, client and server on one machine, "
        f"medians of {plan.rounds} round{'s' if plan.rounds != 1 else ''}"
    )
    chart_note = chart(rows, png, title)
    if chart_note:
        print(chart_note)
    (out_dir / "benchmarks.md").write_text(markdown(ctx, rows, info, meta, png, chart_note))
    raw = {
        "meta": {k: v for k, v in meta.items() if k != "notes"},
        "plan": plan.__dict__,
        "machine": info,
        "rows": [
            {
                "label": r.label,
                "unit": r.unit,
                "anchor": r.anchor_label,
                "target": r.target,
                "figures": r.figure,
                "anchors": r.anchor,
                "ratios": r.ratio,
                "met": r.met,
                "status": r.status,
            }
            for r in rows
        ],
        "extra": ctx.extra,
    }
    raw_path = ROOT / "bench" / "results" / "benchmarks.json"
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_text(json.dumps(raw, indent=2) + "\n")
    written = [out_dir / "benchmarks.md", *([png] if not chart_note else []), raw_path]
    print("wrote " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written))
    print(f"{minutes:.1f} minutes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
