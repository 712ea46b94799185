"""Shared fixtures: in-process apps on every embedded backend, and real server processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from filesapi.app import build_app, open_state
from filesapi.config import Settings
from filesapi.http.guard import HttpOptions
from filesapi.http.routes import AppState
from filesapi.ids import IdClock
from filesapi.models import FileRecord
from servers_pg import postgres_server  # noqa: F401 - session fixtures for every test module
from servers_s3 import s3_server  # noqa: F401

GA_HEADERS = {"authorization": "Bearer test-key", "anthropic-version": "2026-10-21"}
BETA_HEADERS = {
    "x-api-key": "test-key",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "files-api-2025-04-14",
}


BACKENDS = ["memory", "disk", "postgres", "postgres+s3"]


def backend_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest | None = None, **overrides: object
) -> Settings:
    """Settings for a named backend mix: ``memory``, ``disk`` (SQLite + local folder), ``postgres``
    (PostgreSQL + local folder), ``postgres+s3`` (PostgreSQL + SeaweedFS, the scale-out mix; sets
    the S3 credentials in the environment for the test)."""
    if backend == "memory":
        return Settings(memory=True, **overrides)  # type: ignore[arg-type]
    if backend == "disk":
        return Settings(data_dir=tmp_path / "data", **overrides)  # type: ignore[arg-type]
    assert request is not None
    database_url = request.getfixturevalue("postgres_server").create_database()
    if backend == "postgres":
        return Settings(data_dir=tmp_path / "data", database_url=database_url, **overrides)  # type: ignore[arg-type]
    if backend == "postgres+s3":
        s3 = request.getfixturevalue("s3_server")
        monkeypatch = request.getfixturevalue("monkeypatch")
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
        return Settings(database_url=database_url, blob_url=s3.url(), **overrides)  # type: ignore[arg-type]
    raise ValueError(backend)


@dataclass
class Api:
    """An in-process app plus an httpx client that speaks to it."""

    state: AppState
    http: httpx.AsyncClient

    async def upload(
        self,
        data: bytes = b"hello",
        filename: str | None = "hello.txt",
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> httpx.Response:
        file = (filename, data, content_type) if filename is not None else ("", data, content_type)
        return await self.http.post("/v1/files", files={"file": file}, data=fields or None, headers=headers)


def set_http_options(api: Api, options: HttpOptions) -> None:
    """Swap the HTTP options of an in-process app (the guard and the routes read them)."""
    guard = api.http._transport.app.app  # type: ignore[attr-defined]  # RequestContext -> Guard
    guard.options = options
    guard.app.starlette.state.options = options  # Guard -> DirectRoutes -> the Starlette app


@pytest.fixture
async def make_api(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """``await make_api(backend="memory", **settings)`` -> Api. Closed after the test."""
    async with AsyncExitStack() as stack:

        async def make(
            backend: str = "memory", headers: dict[str, str] | None = None, **overrides: object
        ) -> Api:
            where = tmp_path / f"b{len(stack._exit_callbacks)}"
            settings = backend_settings(backend, where, request, **overrides)
            state = await stack.enter_async_context(open_state(settings))
            app = build_app(state)
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://filesapi.test",
                    headers=GA_HEADERS if headers is None else headers,
                )
            )
            return Api(state, http)

        yield make


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, make_api: object) -> Api:
    """The default in-process app, once per backend mix."""
    return await make_api(backend=request.param)  # type: ignore[operator,no-any-return]


# -- real server processes


def inline_file(clock: IdClock, workspace_id: str) -> FileRecord:
    """A new 3-byte file stored inline (its bytes: ``b"abc"``), for tests that insert records
    straight into a metadata store."""
    file_id, created = clock.new_file_id()
    return FileRecord(
        file_id, workspace_id, "a.txt", "text/plain", 3, created, True, "crc32c:0", stored_inline=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path | None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    data_dir = None
    if "--memory" not in args and "--data-dir" not in args:
        data_dir = tmp_path / f"data-{port}"
        args = (*args, "--data-dir", str(data_dir))
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "filesapi", "serve", "--port", str(port), *args],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return LiveServer(base_url, process, log_path, data_dir)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server process (granian, in-memory store) shared by the session."""
    server = start_server(tmp_path_factory.mktemp("live"), "--memory", "--max-file-size", "2GiB")
    yield server
    stop_server(server)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    """``server_factory(*cli_args)`` -> LiveServer, stopped after the test."""
    servers: list[LiveServer] = []

    def start(*args: str, env: dict[str, str] | None = None) -> LiveServer:
        server = start_server(tmp_path, *args, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        stop_server(server)
        # Shown by pytest only when the test failed ("Captured stdout teardown"): what the server
        # logged is often the one clue to a failure that does not come back.
        lines = server.log().splitlines()
        print(f"--- the last {min(len(lines), 80)} lines of {server.log_path.name}:", *lines[-80:], sep="\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn the figures the reliability tests recorded into docs/reliability.md."""
    from figures import write_report

    write_report()
