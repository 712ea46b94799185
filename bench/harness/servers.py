"""The server under test: one ``python -m filesapi serve`` process with its own data folder."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator

from harness.context import Ctx
from harness.plan import MB
from harness.procfs import RssSampler, proc_status_kib, proc_tree, tree_cpu_seconds
from harness.procs import free_port, tail, wait_http


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
            "--workers",  # one worker unless a benchmark asks for more: the targets are per worker
            "1",
            *self.extra_args,
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FilesapiServer:
        self.port = free_port()
        self.proc = self.ctx.procs.spawn(self.argv(self.port), self.log_path, env=self.env, cwd=self.ctx.work)
        wait_http(self.proc, self.port, "/healthz", timeout=90, what="filesapi serve", log_tail=self.log_tail)
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
        return tail(self.log_path, n)

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
