"""filesapi behind a real PgBouncer (Debian's, from apt) in transaction pooling mode.

Debian 12 ships PgBouncer 1.18, older than 1.21's ``max_prepared_statements``: it does not track
prepared statements, so asyncpg's named, per-connection cached statements break once two
transactions land on different server connections. ``?pgbouncer=transaction`` on the database
URL is the setting that makes it work; both sides are shown here on the same PgBouncer.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filesapi.metadata.sql import SqlMetadataStore
from servers_pg import PostgresServer

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def bouncer(postgres_server: PostgresServer) -> Iterator[tuple[int, str]]:
    """(PgBouncer's port, a migrated database's name), 4 server connections in transaction mode."""
    if not Path(PGBOUNCER).exists():
        pytest.fail("pgbouncer is not installed (scripts/test.sh installs it: apt-get install -y pgbouncer)")
    name = postgres_server.create_database().rsplit("/", 1)[1]
    folder = Path(tempfile.mkdtemp(prefix="filesapi-pgb-"))
    port = _free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{name} = host=127.0.0.1 port={postgres_server.port} dbname={name}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    run_as: list[str] = []
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        user = pwd.getpwnam("postgres")
        for path in (folder, *folder.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    proc = subprocess.Popen([*run_as, PGBOUNCER, str(folder / "pgbouncer.ini")])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log = (folder / "pgbouncer.log").read_text()
                    raise RuntimeError("pgbouncer did not start: " + log) from None
                time.sleep(0.1)
        yield port, name
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


async def _hammer(url: str) -> list[BaseException]:
    """64 concurrent tasks, each running the store's hot reads 10 times; the errors they met."""
    store = await SqlMetadataStore.open(url)
    workspace = await store.ensure_workspace("bouncer")

    async def one() -> None:
        for _ in range(10):
            await store.list_files(workspace.id, limit=10)
            await store.get_file(workspace.id, "file_011111111111111111111111")
            await store.used_bytes(workspace.id)

    try:
        results = await asyncio.gather(*(one() for _ in range(64)), return_exceptions=True)
    finally:
        await store.close()
    return [r for r in results if isinstance(r, BaseException)]


def test_transaction_pooling_works_with_the_pgbouncer_setting(bouncer: tuple[int, str]) -> None:
    port, name = bouncer
    errors = asyncio.run(_hammer(f"postgresql://postgres@127.0.0.1:{port}/{name}?pgbouncer=transaction"))
    assert errors == []


def test_without_the_setting_prepared_statements_break(bouncer: tuple[int, str]) -> None:
    port, name = bouncer
    errors = asyncio.run(_hammer(f"postgresql://postgres@127.0.0.1:{port}/{name}"))
    assert errors, "asyncpg's cached prepared statements survived transaction pooling"
    causes = [f"{e} {e.__cause__}" for e in errors]  # BackendUnavailable (a 503) from the driver's error
    assert any("prepared statement" in c for c in causes), causes[:3]


def test_unknown_pgbouncer_value_is_refused() -> None:
    with pytest.raises(ValueError, match="pgbouncer=transaction"):
        SqlMetadataStore.connect("postgresql://u@127.0.0.1:1/db?pgbouncer=session")
