"""The anchors: what the machine does with the same bytes and no filesapi (dd, nginx, a raw-socket
loopback server, the disk writing small durable files)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from harness.clients import run, shell_join
from harness.context import Ctx
from harness.plan import MiB
from harness.procs import free_port, wait_http


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


def dd_mib_s(args: list[str]) -> float:
    """dd's own figure (MiB/s) for ``dd ARGS``."""
    out = run(["dd", *args])
    # "268435456 bytes (268 MB, 256 MiB) copied, 0.52 s, 516 MB/s"
    m = re.search(r"(\d+) bytes .* copied, ([\d.,]+) s", out.stderr)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"dd failed: {out.stderr.strip()}")
    return int(m.group(1)) / float(m.group(2).replace(",", ".")) / MiB


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
        wait_http(
            self.proc,
            self.port,
            "/",
            timeout=10,
            what="nginx",
            log_tail=lambda: (self.dir / "error.log").read_text(errors="replace"),
            method="HEAD",
            any_status=True,
            poll=0.05,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.ctx.procs.stop(self.proc, sig=signal.SIGTERM)


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


def disk_small_files_rate(folder: Path, threads: int, size: int, seconds: float) -> float:
    """What the disk allows for durable small files: ``threads`` threads each looping over
    write(size bytes) + fsync + rename + fsync of the folder, for ``seconds``; files/s."""
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


class BareRoute:
    """The same JSON as ``GET /v1/files/ID`` from a plain Starlette route on granian, served as
    filesapi is (one worker, the asyncio loop): the cost of HTTP and ASGI alone, without any of
    filesapi's per-request work (``harness/bare_app.py``)."""

    def __init__(self, ctx: Ctx, body: bytes) -> None:
        self.ctx = ctx
        self.json = ctx.work / "bare-route.json"
        self.json.write_bytes(body)
        self.port = free_port()
        self.log = ctx.work / "bare-route.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BareRoute:
        argv = [self.ctx.python, "-m", "granian", "--interface", "asgi", "--loop", "asyncio",
                "--workers", "1", "--host", "127.0.0.1", "--port", str(self.port), "--no-ws",
                "--log-level", "warning", "harness.bare_app:app"]  # fmt: skip
        env = {**os.environ, "FILESAPI_BENCH_BARE_JSON": str(self.json),
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}  # fmt: skip
        self.proc = self.ctx.procs.spawn(argv, self.log, env=env)
        wait_http(self.proc, self.port, "/v1/files/probe", timeout=30, what="bare route",
                  log_tail=lambda: self.log.read_text(errors="replace"), poll=0.05)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.ctx.procs.stop(self.proc)
