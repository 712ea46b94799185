"""A real PostgreSQL server for the tests: Debian's binaries, a temp cluster, a free port on 127.0.0.1.

Run as root (CI), the cluster belongs to the ``postgres`` user, as initdb refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_TEMPLATE = "filesapi_template"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install Debian's postgresql package "
        "(scripts/test.sh does: apt-get install -y postgresql)"
    )


@dataclass
class PostgresServer:
    bindir: Path
    datadir: Path
    port: int
    run_as: list[str]
    _template_ready: bool = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} -c max_connections=300"
        self._ctl("-o", options, "-l", str(self.datadir / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def _psql(self, sql: str) -> None:
        subprocess.run(
            [str(self.bindir / "psql"), self.admin_url, "-q", "-c", sql],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, *, migrated: bool = True) -> str:
        """A fresh database; returns its filesapi URL. ``migrated``: copied from a template that
        ``filesapi db upgrade`` built once (much faster than migrating each one)."""
        name = "t_" + secrets.token_hex(6)
        if not migrated:
            self._psql(f'CREATE DATABASE "{name}"')
            return self.url(name)
        if not self._template_ready:
            self._psql(f'CREATE DATABASE "{_TEMPLATE}"')
            subprocess.run(
                [sys.executable, "-m", "filesapi", "db", "upgrade", "--database-url", self.url(_TEMPLATE)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            self._template_ready = True
        self._psql(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
        return self.url(name)


def start_postgres(datadir: Path | None = None) -> PostgresServer:
    """Start a cluster in a new temp folder, or in ``datadir`` (created by initdb unless it holds a
    cluster already: the capacity benchmark keeps its 10-million-file cluster between runs)."""
    bindir = _bindir()
    if datadir is None:
        datadir = Path(tempfile.mkdtemp(prefix="filesapi-pg-"))
    datadir.mkdir(parents=True, exist_ok=True)
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(datadir, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    if not (datadir / "PG_VERSION").exists():
        initdb = [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run([*run_as, *initdb], check=True, capture_output=True, timeout=120)
    server = PostgresServer(bindir, datadir, _free_port(), run_as)
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            shutil.rmtree(server.datadir, ignore_errors=True)
