"""The filesapi pytest plugin (installed with the package, entry point ``pytest11``).

Fixtures:

- ``filesapi_server``: a real filesapi server (in memory, on a free 127.0.0.1 port) with its
  ``base_url`` and an ``api_key``. One process serves the whole session; by default every test
  starts with an empty store (``filesapi_isolation = function``); set
  ``filesapi_isolation = session`` in your pytest ini to keep files across tests.
- ``anthropic_client`` / ``async_anthropic_client``: official SDK clients already pointed at it
  (needs ``pip install anthropic``; the async one also pytest-asyncio or anyio).

The server runs with ``--test-controls``: ``filesapi_server.faults.add(operation="upload",
status=529, times=2)`` arms a fault rule, ``filesapi_server.clock.advance(hours=2)`` moves the
server's clock, ``filesapi_server.requests(operation="upload")`` reads the request journal as
``RequestEntry`` records (newest first). Rules, the clock and the journal are reset before every
test, whatever ``filesapi_isolation`` says.

Extra server flags: ``filesapi_args = --profile hosted`` in the ini file.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = ["Clock", "Faults", "FilesapiServer", "RequestEntry"]

_ADMIN_KEY = "filesapi-test-admin"
_HEADERS = {"anthropic-version": "2023-06-01"}


def _call(base_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(
        method, base_url + path, headers={**_HEADERS, "x-api-key": _ADMIN_KEY}, timeout=30, **kwargs
    )
    if response.is_error:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    return response


@dataclass(frozen=True)
class RequestEntry:
    """One request of the journal (``GET /v1/admin/requests``)."""

    request_id: str
    started_at: str
    duration_ms: float
    method: str
    path: str
    operation: str | None
    dialect: str
    status: int | None  # None: the connection closed without an answer (a disconnect fault)
    error_type: str | None
    workspace: str | None
    sdk: dict[str, Any] | None  # {"language", "package_version", "runtime", "retry_count"}
    fault: str | None
    bytes_in: int
    bytes_out: int
    upload: dict[str, Any] | None  # {"filename", "size", "sha256", "crc32c"}
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RequestEntry:
        values: dict[str, Any] = {name: body.get(name) for name in cls.__dataclass_fields__ if name != "raw"}
        return cls(**values, raw=body)


@dataclass
class Faults:
    """The server's fault rules (``/v1/admin/faults``)."""

    base_url: str

    def add(self, **rule: Any) -> dict[str, Any]:
        """Arm a rule, e.g. ``add(operation="upload", status=529, times=2)``; returns it with its id."""
        result: dict[str, Any] = _call(self.base_url, "POST", "/v1/admin/faults", json=rule).json()
        return result

    def list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = _call(self.base_url, "GET", "/v1/admin/faults").json()["data"]
        return result

    def remove(self, rule_id: str) -> None:
        _call(self.base_url, "DELETE", f"/v1/admin/faults/{rule_id}")

    def clear(self) -> None:
        _call(self.base_url, "DELETE", "/v1/admin/faults")


@dataclass
class Clock:
    """The server's clock (``/v1/admin/clock``): it moves forward only, until ``reset``."""

    base_url: str

    def now(self) -> dict[str, Any]:
        result: dict[str, Any] = _call(self.base_url, "GET", "/v1/admin/clock").json()
        return result

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> dict[str, Any]:
        total = seconds + minutes * 60 + hours * 3600 + days * 86400
        result: dict[str, Any] = _call(
            self.base_url, "POST", "/v1/admin/clock", json={"advance_seconds": total}
        ).json()
        return result

    def reset(self) -> None:
        _call(self.base_url, "DELETE", "/v1/admin/clock")


@dataclass
class FilesapiServer:
    """A running server. ``reset()`` deletes every file; ``create_file()`` makes one as a tool
    would (with a session scope, downloadable under ``--profile hosted``, any expiry)."""

    base_url: str
    api_key: str
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)
    faults: Faults = field(init=False, repr=False)
    clock: Clock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.faults = Faults(self.base_url)
        self.clock = Clock(self.base_url)

    def requests(self, *, limit: int = 1000, **filters: Any) -> list[RequestEntry]:
        """The journal, newest first; filters: ``operation``, ``status``, ``method``, ``workspace``,
        ``request_id``, ``since``, ``before``."""
        params = {k: str(v) for k, v in filters.items() if v is not None}
        body = _call(
            self.base_url, "GET", "/v1/admin/requests", params={**params, "limit": str(limit)}
        ).json()
        return [RequestEntry.from_json(entry) for entry in body["data"]]

    def clear_requests(self) -> None:
        _call(self.base_url, "DELETE", "/v1/admin/requests")

    def _admin(self, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.post(
            self.base_url + path, headers={**_HEADERS, "x-api-key": _ADMIN_KEY}, timeout=30, **kwargs
        )
        response.raise_for_status()
        return response

    def reset(self) -> None:
        self._admin("/v1/admin/reset", params={"all": "true"})

    def create_file(
        self,
        content: bytes,
        filename: str = "output.txt",
        *,
        scope_id: str | None = None,
        downloadable: bool | None = None,
        expires_in_seconds: int | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if scope_id is not None:
            params["scope_id"] = scope_id
        if downloadable is not None:
            params["downloadable"] = "true" if downloadable else "false"
        if expires_in_seconds is not None:
            params["expires_in_seconds"] = str(expires_in_seconds)
        response = self._admin("/v1/admin/files", params=params, files={"file": (filename, content)})
        result: dict[str, Any] = response.json()
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "filesapi_isolation", "function (empty store per test, default) or session", default="function"
    )
    parser.addini("filesapi_args", "extra `filesapi serve` flags for the test server", default="")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_test_server(extra_args: list[str]) -> FilesapiServer:
    port = _free_port()
    fd, name = tempfile.mkstemp(prefix="filesapi-test-server-", suffix=".log")
    os.close(fd)
    log_path = Path(name)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI with the caller's flags
            [
                sys.executable,
                "-m",
                "filesapi",
                "serve",
                "--memory",
                "--port",
                str(port),
                "--admin-key",
                _ADMIN_KEY,
                "--log-level",
                "warning",
                "--test-controls",
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FILESAPI_LOG_FORMAT": "text"},
        )
    server = FilesapiServer(f"http://127.0.0.1:{port}", "filesapi-test-key", process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the filesapi test server exited:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the filesapi test server did not start:\n{server.log()}")


@pytest.fixture(scope="session")
def _filesapi_session_server(pytestconfig: pytest.Config) -> Iterator[FilesapiServer]:
    server = start_test_server(shlex.split(str(pytestconfig.getini("filesapi_args"))))
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
        server.log_path.unlink(missing_ok=True)


@pytest.fixture
def filesapi_server(_filesapi_session_server: FilesapiServer, pytestconfig: pytest.Config) -> FilesapiServer:
    server = _filesapi_session_server
    server.faults.clear()
    if pytestconfig.getini("filesapi_isolation") != "session":
        server.reset()
    server.clock.reset()  # after the reset: with no files left, new ids follow real time again
    server.clear_requests()
    return server


def _anthropic() -> Any:
    try:
        import anthropic
    except ImportError:  # pragma: no cover - depends on the user's environment
        pytest.fail("the anthropic_client fixtures need the official SDK: pip install anthropic")
    return anthropic


@pytest.fixture
def anthropic_client(filesapi_server: FilesapiServer) -> Iterator[Any]:
    client = _anthropic().Anthropic(base_url=filesapi_server.base_url, api_key=filesapi_server.api_key)
    with client:
        yield client


try:  # an async fixture needs pytest-asyncio; in its strict mode only its own decorator works
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - then anyio's plugin (or auto mode) must run it
    _async_fixture = pytest.fixture  # type: ignore[assignment]


@_async_fixture
async def async_anthropic_client(filesapi_server: FilesapiServer) -> AsyncIterator[Any]:
    client = _anthropic().AsyncAnthropic(base_url=filesapi_server.base_url, api_key=filesapi_server.api_key)
    async with client:
        yield client
