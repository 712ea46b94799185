"""Starting, waiting for and stopping the processes a benchmark runs (servers, nginx), each in its own
session (process group), so that stopping one stops its children (granian's workers) and nothing else."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def spawn(argv: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    """Starts argv in a new session, stdout and stderr appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    """Signals the process group ``proc`` leads, waits, and kills it if it does not exit in time."""
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


def wait_http(
    proc: subprocess.Popen[bytes],
    port: int,
    path: str,
    *,
    timeout: float,
    what: str,
    log_tail: Callable[[], str],
    method: str = "GET",
    any_status: bool = False,
    poll: float = 0.1,
) -> None:
    """Polls ``method path`` on 127.0.0.1:port until it answers 200 (or anything, with any_status);
    RuntimeError with the log's tail when the process exits first or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request(method, path)
                if any_status or conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(poll)
    raise RuntimeError(f"{what} did not answer {path} within {timeout:.0f} s:\n{log_tail()}")


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class Procs:
    """Every process a run starts, so that all of them can be stopped at the end (also on errors)."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        proc = spawn(argv, log, **kw)
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
        stop_group(proc, sig, timeout)
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.live):
            self.stop(proc, timeout=10)
