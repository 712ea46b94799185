"""The candidate ASGI servers (granian on asyncio and uvloop, uvicorn) and one running instance."""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.procs import free_port, spawn, stop_group, tail, wait_http


def have_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def module_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


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
        self.proc = spawn(argv, self.log, env=self.env)

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        assert self.proc is not None
        wait_http(
            self.proc, self.port, path, timeout=timeout, what=self.spec.name, log_tail=lambda: tail(self.log)
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        # Only the process group this script created (start_new_session): server + its workers.
        if self.proc is not None:
            stop_group(self.proc, timeout=15)
