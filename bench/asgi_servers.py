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
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1 << 20
API_HEADERS = ["x-api-key: k", "anthropic-version: 2023-06-01"]
HEADER_ARGS = [arg for h in API_HEADERS for arg in ("-H", h)]  # for curl


# --------------------------------------------------------------------------- probe ASGI app
# Imported by the server processes as ``asgi_servers:probe_app`` (PYTHONPATH=bench/).


async def probe_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body with bare receive() calls and answers with the chunk sizes it got."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    sizes: list[int] = []
    started = time.perf_counter()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            sizes.append(len(body))
        if not message.get("more_body", False):
            break
    elapsed = time.perf_counter() - started
    sizes_sorted = sorted(sizes)
    result = {
        "server": scope.get("server"),
        "extensions": sorted((scope.get("extensions") or {}).keys()),
        "http_version": scope.get("http_version"),
        "bytes": sum(sizes),
        "chunks": len(sizes),
        "min": sizes_sorted[0] if sizes else 0,
        "median": int(statistics.median(sizes_sorted)) if sizes else 0,
        "max": sizes_sorted[-1] if sizes else 0,
        "seconds_in_app": elapsed,
    }
    body = json.dumps(result).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def have_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def module_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


def parse_mib(text: str) -> int:
    """'256', '256M', '256MiB', '1G', '1GiB' -> MiB."""
    m = re.fullmatch(r"\s*(\d+)\s*([mMgG]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: use e.g. 256, 256MiB, 1GiB")
    n = int(m.group(1))
    return n * 1024 if m.group(2).lower() == "g" else n


def proc_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def proc_status_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of every process (all threads) in the server's tree."""
    ticks = 0
    for pid in proc_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def worker_pid(root: int) -> int:
    """The process in the server's tree with the largest RSS: granian's worker child, or uvicorn."""
    return max(proc_tree(root), key=lambda p: proc_status_kib(p, "VmRSS"))


class RssSampler:
    """Samples VmRSS of one process every few ms while active; ``peak_mib`` afterwards."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def curl(args: list[str]) -> dict[str, str]:
    fmt = "%{http_code} %{time_total} %{size_upload} %{size_download}"
    out = run(["curl", "-sS", "--noproxy", "*", "-w", fmt, *args])
    if out.returncode != 0:
        raise RuntimeError(f"curl failed ({out.returncode}): {out.stderr.strip()}")
    code, total, up, down = out.stdout.split()[-4:]
    return {"code": code, "time": total, "up": up, "down": down, "stdout": out.stdout}


def http_get_json(url: str, timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, headers=dict(h.split(": ", 1) for h in API_HEADERS))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def http_delete(url: str) -> None:
    req = urllib.request.Request(url, method="DELETE", headers=dict(h.split(": ", 1) for h in API_HEADERS))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with contextlib.suppress(Exception), opener.open(req, timeout=30) as resp:
        resp.read()


# --------------------------------------------------------------------------- anchors


def dd_mib_s(args: list[str]) -> float:
    out = run(["dd", *args])
    # "268435456 bytes (268 MB, 256 MiB) copied, 0.52 s, 516 MB/s"
    m = re.search(r"(\d+) bytes .* copied, ([\d.,]+) s", out.stderr)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"dd failed: {out.stderr.strip()}")
    return int(m.group(1)) / float(m.group(2).replace(",", ".")) / MiB


class LoopbackSink:
    """The ceiling for curl on loopback: a raw socket server (no HTTP framework, no parsing beyond
    the header block) that discards a POST body with recv_into and serves GET with sendfile."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle_and_close, args=(conn,), daemon=True).start()

    def _handle_and_close(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method = lines[0].split()[0]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if method == "POST":
            remaining = length - len(rest)
            buf = bytearray(MiB)
            view = memoryview(buf)
            while remaining > 0:
                n = conn.recv_into(view, min(remaining, MiB))
                if n == 0:
                    return
                remaining -= n
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        else:
            size = self.file.stat().st_size
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode())
            with open(self.file, "rb") as f:
                conn.sendfile(f)

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- servers


@dataclass
class ServerSpec:
    name: str
    argv: list[str]  # with {port} and {target} placeholders
    note: str = ""


def server_specs(py: str) -> list[ServerSpec]:
    specs = []
    granian = [
        py,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    specs.append(
        ServerSpec(
            "granian-asyncio",
            [*granian, "--loop", "asyncio", "{target}"],
            f"granian {module_version('granian')}, --loop asyncio",
        )
    )
    if have_module("uvloop"):
        specs.append(
            ServerSpec(
                "granian-uvloop",
                [*granian, "--loop", "uvloop", "{target}"],
                f"granian {module_version('granian')}, --loop uvloop {module_version('uvloop')}",
            )
        )
    if have_module("uvicorn"):
        loop = "uvloop" if have_module("uvloop") else "asyncio"
        http = "httptools" if have_module("httptools") else "h11"
        specs.append(
            ServerSpec(
                f"uvicorn-{loop}-{http}",
                [
                    py,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                    "--loop",
                    loop,
                    "--http",
                    http,
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--lifespan",
                    "on",
                    "{target}",
                ],
                f"uvicorn {module_version('uvicorn')}, --loop {loop} --http {http}"
                + (f" {module_version('httptools')}" if http == "httptools" else ""),
            )
        )
    return specs


@dataclass
class Server:
    spec: ServerSpec
    target: str
    env: dict[str, str]
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)).replace("{target}", self.target) for a in self.spec.argv]
        self._log = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.spec.name} did not become ready on port {self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # Only the process group this script created (start_new_session): server + its workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------- small-request load


def wrk_rps(url: str, connections: int, seconds: int, threads: int) -> tuple[float, int, str]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in API_HEADERS:
        argv += ["-H", h]
    out = run([*argv, url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    errors = re.search(r"Socket errors:.*", out.stdout)
    p99 = re.search(r"^\s+99%\s+(\S+)", out.stdout, re.MULTILINE)  # the latency distribution line
    return (
        float(m.group(1)),
        int(bad.group(1)) if bad else 0,
        (p99.group(1) if p99 else "?") + (f" ({errors.group(0)})" if errors else ""),
    )


def python_rps(url: str, connections: int, seconds: float) -> tuple[float, int, str]:
    """Fallback when wrk is missing: keep-alive HTTP/1.1 over asyncio streams (itself CPU-bound, so
    it under-reports fast servers; install wrk for real numbers)."""
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(h + "\r\n" for h in API_HEADERS)
        + "\r\n"
    ).encode()

    async def one(deadline: float, counts: list[int]) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                counts[0 if status < 400 else 1] += 1
        finally:
            writer.close()

    async def main() -> tuple[int, int]:
        counts = [0, 0]
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(one(deadline, counts) for _ in range(connections)))
        return counts[0], counts[1]

    started = time.monotonic()
    ok, bad = asyncio.run(main())
    return (ok + bad) / (time.monotonic() - started), bad, "n/a (python client)"


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Results:
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, who: str, what: str, value: float) -> None:
        self.samples.setdefault(who, {}).setdefault(what, []).append(value)

    def med(self, who: str, what: str) -> float | None:
        values = self.samples.get(who, {}).get(what)
        return statistics.median(values) if values else None

    def spread(self, who: str, what: str) -> str:
        values = self.samples.get(who, {}).get(what)
        if not values:
            return "-"
        return f"{min(values):.0f}-{max(values):.0f}"


def make_source(path: Path, size_mib: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size_mib):
            # cheap variation so no two MiB are identical
            f.write(i.to_bytes(8, "little") + block[8:])


def upload(srv: Server, src: Path, out: Path) -> tuple[str, float]:
    """POST the file as multipart, like the SDKs (without Expect: 100-continue, which they don't send
    either). Returns the file id and curl's time_total."""
    r = curl(
        [
            "-o",
            str(out),
            "-H",
            "Expect:",
            *HEADER_ARGS,
            "-F",
            f"file=@{src};type=application/octet-stream",
            f"{srv.url}/v1/files",
        ]
    )
    if r["code"] != "200":
        raise RuntimeError(f"{srv.spec.name} upload: HTTP {r['code']} {out.read_text()[:500]}")
    return json.loads(out.read_text())["id"], float(r["time"])


def parallel_downloads(url: str, n: int) -> float:
    """Aggregate seconds for n simultaneous curl downloads of url."""
    argv = [
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        *HEADER_ARGS,
        url,
    ]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)
    ]
    outs = [p.communicate() for p in procs]
    elapsed = time.perf_counter() - started
    if any(p.returncode != 0 or o[0] != "200" for p, o in zip(procs, outs, strict=True)):
        raise RuntimeError(f"parallel download failed: {outs}")
    return elapsed


def measure_round(
    srv: Server,
    probe: Server,
    tmpfs: Server | None,
    src: Path,
    size: int,
    res: Results,
    args: argparse.Namespace,
) -> None:
    name = srv.spec.name
    assert srv.proc is not None
    wpid = worker_pid(srv.proc.pid)
    res.add(name, "rss_idle", proc_status_kib(wpid, "VmRSS") / 1024)

    gib = size / (1 << 30)

    # (1) upload, multipart
    cpu0 = tree_cpu_seconds(srv.proc.pid)
    with RssSampler(wpid) as rss:
        file_id, seconds = upload(srv, src, src.parent / f"upload-{name}.json")
    res.add(name, "cpu_upload", (tree_cpu_seconds(srv.proc.pid) - cpu0) / gib)
    res.add(name, "upload", size / seconds / MiB)
    res.add(name, "rss_upload", rss.peak_mib)

    # (1b) the same upload to a server whose data folder is on tmpfs: same code path, no disk
    if tmpfs is not None:
        assert tmpfs.proc is not None
        cpu0 = tree_cpu_seconds(tmpfs.proc.pid)
        tmp_id, seconds = upload(tmpfs, src, src.parent / f"upload-tmpfs-{name}.json")
        res.add(name, "cpu_upload_tmpfs", (tree_cpu_seconds(tmpfs.proc.pid) - cpu0) / gib)
        res.add(name, "upload_tmpfs", size / seconds / MiB)
        http_delete(f"{tmpfs.url}/v1/files/{tmp_id}")

    # (2) download of that file
    content = f"{srv.url}/v1/files/{file_id}/content"
    cpu0 = tree_cpu_seconds(srv.proc.pid)
    with RssSampler(wpid) as rss:
        r = curl(["-o", "/dev/null", *HEADER_ARGS, content])
    res.add(name, "cpu_download", (tree_cpu_seconds(srv.proc.pid) - cpu0) / gib)
    if r["code"] != "200" or int(float(r["down"])) != size:
        raise RuntimeError(f"{name} download: HTTP {r['code']}, {r['down']} bytes")
    res.add(name, "download", size / float(r["time"]) / MiB)
    res.add(name, "rss_download", rss.peak_mib)

    # (2b) several downloads at once: with curl as the ceiling for one stream, the server's own
    # CPU cost per byte shows up here
    with RssSampler(wpid) as rss:
        seconds = parallel_downloads(content, args.parallel)
    res.add(name, "download_par", args.parallel * size / seconds / MiB)
    res.add(name, "rss_download_par", rss.peak_mib)
    res.info.setdefault(name, {})["worker_vmhwm_mib"] = proc_status_kib(wpid, "VmHWM") / 1024

    # (3) small requests, 64 connections
    load = wrk_rps if shutil.which("wrk") and not args.no_wrk else None
    for what, path in (("meta", f"/v1/files/{file_id}"), ("healthz", "/healthz")):
        if load:
            rps, bad, p99 = wrk_rps(srv.url + path, args.connections, args.duration, args.wrk_threads)
        else:
            rps, bad, p99 = python_rps(srv.url + path, args.connections, args.duration)
        if bad:
            raise RuntimeError(f"{name} {path}: {bad} non-2xx responses under load")
        res.add(name, what, rps)
        res.info[name].setdefault(f"{what}_p99", []).append(p99)

    # (4) the probe: raw ASGI body delivery (chunk sizes, throughput before any app work)
    assert probe.proc is not None
    cpu0 = tree_cpu_seconds(probe.proc.pid)
    r = curl(
        [
            "-o",
            str(src.parent / f"probe-{name}.json"),
            "-H",
            "Expect:",
            "-F",
            f"file=@{src};type=application/octet-stream",
            f"{probe.url}/",
        ]
    )
    got = json.loads((src.parent / f"probe-{name}.json").read_text())
    res.add(name, "cpu_raw_body", (tree_cpu_seconds(probe.proc.pid) - cpu0) / gib)
    res.add(name, "raw_body", size / float(r["time"]) / MiB)
    res.info[name]["probe"] = got

    http_delete(f"{srv.url}/v1/files/{file_id}")


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def report(res: Results, specs: list[ServerSpec], args: argparse.Namespace, elapsed: float) -> str:
    A = "anchors"
    dd_w, dd_r = res.med(A, "dd_write"), res.med(A, "dd_read")
    lo_up, lo_down = res.med(A, "loop_up"), res.med(A, "loop_down")
    lines = []
    lines.append(
        f"size {args.size} MiB, rounds {args.rounds} (medians), small requests: "
        f"{f'wrk -t{args.wrk_threads}' if shutil.which('wrk') and not args.no_wrk else 'python client'} "
        f"-c{args.connections} -d{args.duration}s; {os.cpu_count()} CPUs; {elapsed:.0f}s total; "
        f"load average at start {res.info.get('load_start', '?')}, at end {os.getloadavg()[0]:.2f}"
    )
    lines.append("")
    lo_par = res.med(A, "loop_down_par")
    lines.append("Large bodies, MiB/s (ratios against the anchors below):")
    lines.append("")
    lines.append(
        "| server | upload (disk) | vs dd write | upload (tmpfs) | raw ASGI body | vs loopback | download | "
        f"vs loopback | {args.parallel} downloads at once | vs loopback | pathsend |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for spec in specs:
        n = spec.name
        up, upt, raw = (res.med(n, k) for k in ("upload", "upload_tmpfs", "raw_body"))
        down, dpar = res.med(n, "download"), res.med(n, "download_par")
        probe = res.info.get(n, {}).get("probe", {})
        lines.append(
            f"| {n} | {fmt(up)} | {ratio(up, dd_w)} | {fmt(upt)} | {fmt(raw)} | {ratio(raw, lo_up)} | "
            f"{fmt(down)} | {ratio(down, lo_down)} | {fmt(dpar)} | {ratio(dpar, lo_par)} | "
            f"{'yes' if 'http.response.pathsend' in probe.get('extensions', []) else 'no'} |"
        )
    lines.append(f"| anchor: dd write conv=fsync | {fmt(dd_w)} | 1.00x | | | | | | | | |")
    lines.append(f"| anchor: dd read (page cache) | | | | | | {fmt(dd_r)} | | | | |")
    lines.append(
        f"| anchor: curl <-> raw socket (loopback) | | | | {fmt(lo_up)} | 1.00x | "
        f"{fmt(lo_down)} | 1.00x | {fmt(lo_par)} | 1.00x | |"
    )
    lines.append("")
    lines.append(
        "Server CPU seconds per GiB moved (utime+stime of the server's processes, all threads; "
        "less sensitive to a busy machine than MiB/s):"
    )
    lines.append("")
    lines.append("| server | upload (disk) | upload (tmpfs) | raw ASGI body | download |")
    lines.append("|---|---:|---:|---:|---:|")
    for spec in specs:
        n = spec.name
        lines.append(
            f"| {n} | {fmt(res.med(n, 'cpu_upload'), 2)} | {fmt(res.med(n, 'cpu_upload_tmpfs'), 2)} | "
            f"{fmt(res.med(n, 'cpu_raw_body'), 2)} | {fmt(res.med(n, 'cpu_download'), 2)} |"
        )
    lines.append("")
    lines.append(f"Small requests ({args.connections} connections) and memory:")
    lines.append("")
    lines.append(
        "| server | GET /v1/files/ID req/s | GET /healthz req/s | meta/healthz | body chunk (median) | "
        "worker RSS MiB idle / upload / download / parallel downloads |"
    )
    lines.append("|---|---:|---:|---:|---:|---|")
    for spec in specs:
        n = spec.name
        meta, hz = res.med(n, "meta"), res.med(n, "healthz")
        probe = res.info.get(n, {}).get("probe", {})
        rss = " / ".join(
            fmt(res.med(n, k)) for k in ("rss_idle", "rss_upload", "rss_download", "rss_download_par")
        )
        chunk = probe.get("median", 0) / 1024
        lines.append(f"| {n} | {fmt(meta)} | {fmt(hz)} | {ratio(meta, hz)} | {chunk:.0f} KiB | {rss} |")
    lines.append("")
    lines.append("spread over rounds (min-max):")
    for spec in specs:
        n = spec.name
        lines.append(
            f"  {n:<25} upload {res.spread(n, 'upload')}  tmpfs {res.spread(n, 'upload_tmpfs')}  "
            f"raw body {res.spread(n, 'raw_body')}  download {res.spread(n, 'download')}  "
            f"x{args.parallel} {res.spread(n, 'download_par')}  "
            f"meta {res.spread(n, 'meta')}  healthz {res.spread(n, 'healthz')}"
        )
    lines.append(
        f"  {'anchors':<25} dd write {res.spread(A, 'dd_write')}  dd read {res.spread(A, 'dd_read')}  "
        f"loopback up {res.spread(A, 'loop_up')}  down {res.spread(A, 'loop_down')}  "
        f"x{args.parallel} {res.spread(A, 'loop_down_par')}"
    )
    lines.append("")
    lines.append("servers:")
    for spec in specs:
        info = res.info.get(spec.name, {})
        probe = info.get("probe", {})
        lines.append(f"  {spec.name}: {spec.note}")
        lines.append(
            f"    probe: {probe.get('chunks')} body chunks, min {probe.get('min')} / median "
            f"{probe.get('median')} / max {probe.get('max')} bytes; extensions {probe.get('extensions')}"
        )
        lines.append(
            f"    worker VmHWM {info.get('worker_vmhwm_mib', 0):.0f} MiB; p99 latency meta "
            f"{info.get('meta_p99')} healthz {info.get('healthz_p99')}"
        )
    return "\n".join(lines)


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
                "asgi_servers:probe_app",
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
            # anchors, in the same run
            dd_file = work / "dd.bin"
            res.add(
                "anchors",
                "dd_write",
                dd_mib_s(["if=/dev/zero", f"of={dd_file}", "bs=1M", f"count={args.size}", "conv=fsync"]),
            )
            res.add("anchors", "dd_read", dd_mib_s([f"if={dd_file}", "of=/dev/null", "bs=1M"]))
            dd_file.unlink()
            r = curl(
                [
                    "-o",
                    "/dev/null",
                    "-H",
                    "Expect:",
                    "-F",
                    f"file=@{src};type=application/octet-stream",
                    f"http://127.0.0.1:{sink.port}/",
                ]
            )
            res.add("anchors", "loop_up", size / float(r["time"]) / MiB)
            r = curl(["-o", "/dev/null", f"http://127.0.0.1:{sink.port}/"])
            res.add("anchors", "loop_down", size / float(r["time"]) / MiB)
            res.add(
                "anchors",
                "loop_down_par",
                args.parallel
                * size
                / parallel_downloads(f"http://127.0.0.1:{sink.port}/", args.parallel)
                / MiB,
            )

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
