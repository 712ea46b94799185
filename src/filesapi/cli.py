"""The ``filesapi`` command: serve, manage keys, migrate the database."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from filesapi import __version__
from filesapi.client import ApiError, ConnectionFailed, FilesClient
from filesapi.config import Settings, format_size, parse_size
from filesapi.metadata import MetadataStore, SchemaOutOfDate, open_metadata_store
from filesapi.service import FileService

__all__ = ["main"]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


class _Size(click.ParamType[int]):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE = _Size()


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def _storage_options(fn: _F) -> _F:
    """Options that say where the data lives, shared by every command that opens storage."""
    options = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path(".filesapi"),
            show_default=True,
            envvar="FILESAPI_DATA_DIR",
            show_envvar=True,
            help="Folder for the embedded store: metadata.db (SQLite) and blobs/.",
        ),
        click.option(
            "--database-url",
            envvar="FILESAPI_DATABASE_URL",
            show_envvar=True,
            help="Metadata database instead of DATA_DIR/metadata.db, e.g. sqlite:///path/meta.db.",
        ),
        click.option(
            "--blob-url",
            envvar="FILESAPI_BLOB_URL",
            show_envvar=True,
            help="Blob store instead of DATA_DIR/blobs, e.g. file:///srv/blobs or s3://bucket/prefix?endpoint=URL.",
        ),
    ]

    @functools.wraps(fn)
    def with_storage(
        *args: Any, data_dir: Path, database_url: str | None, blob_url: str | None, **kwargs: Any
    ) -> Any:
        return fn(
            *args, storage=Settings(data_dir=data_dir, database_url=database_url, blob_url=blob_url), **kwargs
        )

    wrapped: Any = with_storage
    for option in reversed(options):
        wrapped = option(wrapped)
    return cast(_F, wrapped)


async def _with_service(settings: Settings, action: Callable[[FileService], Coroutine[Any, Any, _T]]) -> _T:
    from filesapi.app import open_state

    async with open_state(settings) as state:
        return await action(state.service)


async def _with_metadata(
    settings: Settings, action: Callable[[MetadataStore], Coroutine[Any, Any, _T]]
) -> _T:
    store = await open_metadata_store(settings.metadata_url)
    try:
        return await action(store)
    finally:
        await store.close()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="filesapi")
def main() -> None:
    """filesapi: a server for the Anthropic Files API that the official SDKs talk to unchanged.

    Start it with `filesapi serve`, then point an SDK at it, e.g.
    ANTHROPIC_BASE_URL=http://127.0.0.1:8000 ANTHROPIC_API_KEY=anything.
    """


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="FILESAPI_HOST",
    show_envvar=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=int,
    envvar="FILESAPI_PORT",
    show_envvar=True,
    help="TCP port to listen on.",
)
@_storage_options
@click.option(
    "--memory",
    is_flag=True,
    envvar="FILESAPI_MEMORY",
    show_envvar=True,
    help="Keep everything in memory (for tests): fast, and gone when the server stops.",
)
@click.option(
    "--auth",
    type=click.Choice(["open", "keys"]),
    default="open",
    show_default=True,
    envvar="FILESAPI_AUTH",
    show_envvar=True,
    help="open: any non-empty key works and all keys share one workspace (local use). "
    "keys: only keys made by `filesapi keys create` work, each in its own workspace.",
)
@click.option(
    "--max-file-size",
    type=SIZE,
    default="500MB",
    show_default=True,
    envvar="FILESAPI_MAX_FILE_SIZE",
    show_envvar=True,
    help="Largest file accepted (413 request_too_large beyond). Units: KB MB GB KiB MiB GiB.",
)
@click.option(
    "--workspace-quota",
    type=SIZE,
    default=None,
    envvar="FILESAPI_WORKSPACE_QUOTA",
    show_envvar=True,
    help="Bytes each workspace may store (400 storage_quota_exceeded beyond). "
    "Default: unlimited, or 100GB under --profile hosted; 0 means unlimited.",
)
@click.option(
    "--inline-max-size",
    type=SIZE,
    default=None,
    envvar="FILESAPI_INLINE_MAX_SIZE",
    show_envvar=True,
    help="Files up to this size are stored in the metadata database, committed with their row: "
    "one shared fsync per group of uploads instead of three each, for many small uploads per second. "
    "Default: 64KiB on SQLite, 0 (every file in the blob store) on PostgreSQL.",
)
@click.option(
    "--profile",
    type=click.Choice(["default", "hosted"]),
    default="default",
    show_default=True,
    envvar="FILESAPI_PROFILE",
    show_envvar=True,
    help="default: uploads are downloadable. hosted: mirror the hosted service, where uploads are "
    "not downloadable (400 file_not_downloadable) and only tool-made files are.",
)
@click.option(
    "--admin-key",
    envvar="FILESAPI_ADMIN_KEY",
    show_envvar=True,
    help="Key for the admin endpoint POST /v1/admin/files (create files as a tool would). "
    "Under --auth open any key may use it.",
)
@click.option(
    "--upgrade-db",
    is_flag=True,
    envvar="FILESAPI_UPGRADE_DB",
    show_envvar=True,
    help="Migrate an out-of-date metadata schema before serving instead of refusing to start.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    envvar="FILESAPI_WORKERS",
    show_envvar=True,
    help="Server processes (not with --memory).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    envvar="FILESAPI_LOG_LEVEL",
    show_envvar=True,
    help="Log verbosity.",
)
@click.option(
    "--sweep-interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    envvar="FILESAPI_SWEEP_INTERVAL",
    show_envvar=True,
    help="Seconds between background sweeps (interrupted deletes, expired content, leftovers).",
)
@click.option(
    "--verify-downloads/--no-verify-downloads",
    default=True,
    show_default=True,
    envvar="FILESAPI_VERIFY_DOWNLOADS",
    show_envvar=True,
    help="Check every whole-file download against its checksum as it streams (a corrupt file is "
    "quarantined and its download fails). --no-verify-downloads lets the ASGI server send local files "
    "by itself, faster, leaving corruption to `filesapi scrub`.",
)
@click.option(
    "--max-concurrent-requests",
    type=click.IntRange(min=0),
    default=512,
    show_default=True,
    envvar="FILESAPI_MAX_CONCURRENT_REQUESTS",
    show_envvar=True,
    help="API requests in flight per worker before more are shed with 529 overloaded_error (0: no limit).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    envvar="FILESAPI_RATE_LIMIT",
    show_envvar=True,
    help="Requests per minute per API key (per worker) before 429 rate_limit_error (0: no limit).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    envvar="FILESAPI_HEADER_TIMEOUT",
    show_envvar=True,
    help="Seconds a client may take to send its request headers before the connection is closed.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    envvar="FILESAPI_BODY_TIMEOUT",
    show_envvar=True,
    help="Seconds an upload may go without a byte arriving before it is refused with 408.",
)
@click.option(
    "--console/--no-console",
    default=True,
    show_default=True,
    envvar="FILESAPI_CONSOLE",
    show_envvar=True,
    help="Serve the web console at /console (sign in with an API key).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    envvar="FILESAPI_LOG_FORMAT",
    show_envvar=True,
    help="auto: JSON lines (one object per request) unless stderr is a terminal.",
)
@click.option(
    "--test-controls",
    is_flag=True,
    envvar="FILESAPI_TEST_CONTROLS",
    show_envvar=True,
    help="Fault injection (/v1/admin/faults, the x-filesapi-fault header) and a movable clock "
    "(/v1/admin/clock), for tests: never on a production server.",
)
@click.option(
    "--allow-open-network",
    is_flag=True,
    envvar="FILESAPI_ALLOW_OPEN_NETWORK",
    show_envvar=True,
    help="Allow --auth open on a non-loopback address (anyone who can reach it can read every file).",
)
def serve(allow_open_network: bool, storage: Settings, **options: Any) -> None:
    """Serve the Files API (SQLite + a local folder by default)."""
    try:
        settings = Settings(
            data_dir=storage.data_dir, database_url=storage.database_url, blob_url=storage.blob_url, **options
        )
    except ValueError as exc:
        _fail(str(exc))
        return
    if settings.auth == "open" and not _is_loopback(settings.host):
        if not allow_open_network:
            _fail(
                f"--auth open on {settings.host} would let anyone on the network read and delete every file. "
                "Use --auth keys, or pass --allow-open-network if you really mean it."
            )
        click.echo(f"WARNING: serving with --auth open on {settings.host}: no real authentication.", err=True)
    if not settings.memory:
        # Create or check the schema once, before workers start (and race to do it).
        try:
            _run(_prepare_schema(settings, upgrade=settings.upgrade_db))
        except SchemaOutOfDate as exc:
            _fail(str(exc))
    os.environ.update(settings.to_env())
    where = "memory" if settings.memory else f"{settings.metadata_url} + {settings.blobs_url}"
    click.echo(
        f"filesapi {__version__} on http://{settings.host}:{settings.port} ({where}; auth {settings.auth}; "
        f"profile {settings.profile}; max file {format_size(settings.max_file_size)})",
        err=True,
    )
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from filesapi.controls.shared import RUNTIME_DIR_ENV

    # The journal, fault rules and clock every worker shares; gone when the server stops.
    runtime_dir = tempfile.mkdtemp(prefix="filesapi-run-")
    os.environ[RUNTIME_DIR_ENV] = runtime_dir
    server = Granian(
        "filesapi.app:app_from_env",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        loop=Loops.asyncio,  # measured: uvloop did not help; pin it so every install behaves alike
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.header_timeout * 1000)),
        factory=True,
        workers=settings.workers,
        log_access=False,
        log_level=LogLevels(settings.log_level),
    )
    try:
        server.serve()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)


async def _prepare_schema(settings: Settings, *, upgrade: bool) -> None:
    """Open the metadata store once: creates a new schema, refuses (or with ``upgrade`` migrates)
    an out-of-date one."""
    store = await open_metadata_store(settings.metadata_url, upgrade=upgrade)
    await store.close()


# -- keys


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (for `serve --auth keys`)."""


@keys.command("create")
@click.option("--workspace", required=True, help="Workspace the key acts on (created when new).")
@click.option("--label", default=None, help="A note to recognise the key by in `keys list`.")
@_storage_options
def keys_create(workspace: str, label: str | None, storage: Settings) -> None:
    """Create a key. The key itself is printed once, as the last line: store it now."""
    from filesapi.auth import create_key

    created = _run(_with_metadata(storage, lambda store: create_key(store, workspace, label)))
    ws = created.record.workspace
    click.echo(f"key id {created.record.key_id} for workspace {ws.name} ({ws.id})", err=True)
    click.echo(created.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@_storage_options
def keys_list(as_json: bool, storage: Settings) -> None:
    """List keys (ids, workspaces, state; never the keys themselves)."""
    records = _run(_with_metadata(storage, lambda s: s.list_keys()))

    def when(us: int | None) -> str | None:
        return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="seconds")

    for key in records:
        row = {
            "key_id": key.key_id,
            "workspace": key.workspace.name,
            "workspace_id": key.workspace.id,
            "label": key.label,
            "created_at": when(key.created_at_us),
            "revoked_at": when(key.revoked_at_us),
        }
        if as_json:
            click.echo(json.dumps(row))
        else:
            state = f"revoked {row['revoked_at']}" if key.revoked_at_us else "active"
            click.echo(f"{key.key_id}  {key.workspace.name:<20} {state:<32} {key.label or ''}".rstrip())
    if not records and not as_json:
        click.echo("no keys", err=True)


@keys.command("revoke")
@click.argument("key_id")
@_storage_options
def keys_revoke(key_id: str, storage: Settings) -> None:
    """Revoke a key by its id (the part after sk-fapi-, as `keys list` shows it)."""
    import time

    key_id = key_id.removeprefix("sk-fapi-").split("-", 1)[0]
    done = _run(
        _with_metadata(
            storage,
            lambda s: s.revoke_key(key_id, time.time_ns() // 1000),
        )
    )
    if not done:
        _fail(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")


# -- db


@main.group()
def db() -> None:
    """Inspect and migrate the metadata database schema."""


@db.command("upgrade")
@_storage_options
def db_upgrade(storage: Settings) -> None:
    """Migrate the schema to this version of filesapi."""
    settings = storage
    _run(_prepare_schema(settings, upgrade=True))
    click.echo(f"schema of {settings.metadata_url} is up to date")


@db.command("current")
@_storage_options
def db_current(storage: Settings) -> None:
    """Print the schema revision of the database and the one this filesapi needs."""
    from filesapi.metadata.migrate import head_revision
    from filesapi.metadata.sql import SqlMetadataStore

    settings = storage

    async def read() -> str | None:
        store = SqlMetadataStore.connect(settings.metadata_url)
        try:
            return await store.current_revision()
        finally:
            await store.close()

    current = _run(read())
    head = head_revision()
    click.echo(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        sys.exit(2)


# -- client commands (talk to a running filesapi, or the hosted service, over HTTP)

EXIT_API_ERROR = 1
EXIT_CONNECTION = 3


def _client_options(fn: _F) -> _F:
    options = [
        click.option(
            "--base-url",
            envvar="ANTHROPIC_BASE_URL",
            show_envvar=True,
            default="http://127.0.0.1:8000",
            show_default=True,
            help="Server to talk to (filesapi, or https://api.anthropic.com).",
        ),
        click.option(
            "--api-key",
            envvar="ANTHROPIC_API_KEY",
            show_envvar=True,
            help="API key. Optional against a filesapi on this machine started with --auth open.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _client(base_url: str, api_key: str | None) -> FilesClient:
    from urllib.parse import urlsplit

    if not api_key:
        if not _is_loopback(urlsplit(base_url).hostname or ""):
            raise click.UsageError("an API key is needed: pass --api-key or set ANTHROPIC_API_KEY")
        api_key = "filesapi-local"
    return FilesClient(base_url, api_key)


def _report(exc: ApiError) -> None:
    request = f" (request {exc.request_id})" if exc.request_id else ""
    click.echo(f"error: {exc.status} {exc.error_type}: {exc.message}{request}", err=True)


def _client_call(fn: Callable[[], _T]) -> _T:
    """Run a client call; turn its failures into a message and an exit code a script can rely on."""
    try:
        return fn()
    except ApiError as exc:
        _report(exc)
        sys.exit(EXIT_API_ERROR)
    except ConnectionFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONNECTION)


def _progress(enabled: bool | None) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (console.is_terminal if enabled is None else enabled),
        transient=False,
    )


_progress_option = click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal)."
)


@main.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--expires-in", "expires_in", type=int, help="Seconds until the files expire (3600..7776000).")
@click.option("--json", "as_json", is_flag=True, help="Print each file's metadata as a JSON line.")
@_progress_option
@_client_options
def upload(
    files: tuple[Path, ...],
    expires_in: int | None,
    as_json: bool,
    progress: bool | None,
    base_url: str,
    api_key: str | None,
) -> None:
    """Upload FILES; prints each new file id (or its metadata with --json)."""
    with _client(base_url, api_key) as client, _progress(progress) as bars:
        for path in files:
            task = bars.add_task(path.name, total=path.stat().st_size)

            def send(path: Path = path, task: Any = task) -> Any:
                return client.upload(
                    path, expires_in_seconds=expires_in, progress=lambda n: bars.advance(task, n)
                )

            meta = _client_call(send)
            click.echo(json.dumps(meta) if as_json else meta["id"])


def _size(value: int) -> str:
    if value < 1000:
        return f"{value} B"
    for unit, factor in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if value < factor * 1000 or unit == "GB":
            return f"{value / factor:.1f} {unit}"
    return f"{value} B"


@main.command("ls")
@click.option("--all", "everything", is_flag=True, help="Page through every file, not just the newest page.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Files per page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (for scripts).")
@_client_options
def list_command(everything: bool, limit: int, as_json: bool, base_url: str, api_key: str | None) -> None:
    """List files, newest first."""
    from rich.console import Console
    from rich.table import Table

    with _client(base_url, api_key) as client:
        rows = _client_call(lambda: list(client.list(limit=limit, everything=everything)))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = Table(box=None, header_style="bold")
    for column in ("ID", "NAME", "TYPE", "SIZE", "CREATED", "EXPIRES"):
        # Ids are never cut: they are what a user copies into the next command.
        table.add_column(
            column, justify="right" if column == "SIZE" else "left", no_wrap=column in ("ID", "CREATED")
        )
    for row in rows:
        table.add_row(
            row["id"],
            row["filename"],
            row["mime_type"],
            _size(row["size_bytes"]),
            row["created_at"][:19].replace("T", " "),
            (row.get("expires_at") or "")[:19].replace("T", " "),
        )
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=250)
    console.print(table)
    if not rows:
        click.echo("no files", err=True)


@main.command()
@click.argument("file_id")
@_client_options
def stat(file_id: str, base_url: str, api_key: str | None) -> None:
    """Print a file's metadata as JSON."""
    with _client(base_url, api_key) as client:
        click.echo(json.dumps(_client_call(lambda: client.stat(file_id)), indent=2))


@main.command()
@click.argument("file_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=True, path_type=Path),
    help="Where to write (a file or a folder; '-' for stdout). Default: the file's own name here.",
)
@_progress_option
@_client_options
def download(
    file_id: str, output: Path | None, progress: bool | None, base_url: str, api_key: str | None
) -> None:
    """Download a file's content. Writes to a temporary name and renames when complete, so a
    failed download never leaves a truncated file behind."""
    with _client(base_url, api_key) as client:
        if output is not None and str(output) == "-":
            _client_call(lambda: client.download(file_id, sys.stdout.buffer))
            return
        name = Path(_client_call(lambda: client.stat(file_id))["filename"]).name or file_id
        target = (output / name if output.is_dir() else output) if output is not None else Path(name)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with partial.open("wb") as handle, _progress(progress) as bars:
                task = bars.add_task(name, total=None)
                _client_call(
                    lambda: client.download(
                        file_id,
                        handle,
                        on_start=lambda total: bars.update(task, total=total),
                        progress=lambda n: bars.advance(task, n),
                    )
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    click.echo(str(target), err=True)


@main.command("rm")
@click.argument("file_ids", nargs=-1, required=True)
@_client_options
def remove(file_ids: tuple[str, ...], base_url: str, api_key: str | None) -> None:
    """Delete files. Goes on past failures; exits 1 if any delete failed."""
    failed = False
    with _client(base_url, api_key) as client:
        for file_id in file_ids:
            try:
                click.echo(f"deleted {client.delete(file_id)['id']}")
            except ApiError as exc:
                failed = True
                _report(exc)
            except ConnectionFailed as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_CONNECTION)
    if failed:
        sys.exit(EXIT_API_ERROR)


# -- admin commands (on the server's own storage; safe while the server runs)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    with path.open("rb") as handle:
        while chunk := await loop.run_in_executor(None, handle.read, 1 << 20):
            yield chunk


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workspace", default="default", show_default=True, help="Workspace to load into (name).")
@click.option("--scope-id", help="Give every file this session scope (as files a session produced).")
@click.option(
    "--generated",
    is_flag=True,
    help="Mark the files as made by a tool: downloadable even under the hosted profile.",
)
@click.option(
    "--profile",
    type=click.Choice(["default", "hosted"]),
    default="default",
    show_default=True,
    help="Without --generated, files are downloadable unless the profile is hosted.",
)
@click.option("--expires-in", type=int, help="Seconds until the files expire.")
@_progress_option
@_storage_options
def seed(
    directory: Path,
    workspace: str,
    scope_id: str | None,
    generated: bool,
    profile: str,
    expires_in: int | None,
    progress: bool | None,
    storage: Settings,
) -> None:
    """Bulk-load every file under DIRECTORY (recursively); prints one id and path per file."""
    from filesapi.models import Principal

    paths = sorted(p for p in directory.rglob("*") if p.is_file())
    settings = replace(storage, profile=profile)

    async def load(service: FileService) -> None:
        principal = Principal(await service.metadata.ensure_workspace(workspace), key_id=None, is_admin=True)
        expires = (
            None
            if expires_in is None
            else service.parse_expires_in_seconds(str(expires_in), any_positive=True)
        )
        with _progress(progress) as bars:
            task = bars.add_task(f"seeding {len(paths)} files", total=sum(p.stat().st_size for p in paths))
            for path in paths:
                staged = await service.stage(
                    principal,
                    filename=path.name,
                    content_type=None,
                    chunks=_file_chunks(path),
                    downloadable=True if generated else None,
                    scope_id=scope_id,
                )
                record = await service.commit(staged, expires_in_seconds=expires)
                bars.advance(task, record.size_bytes)
                click.echo(f"{record.id}\t{path.relative_to(directory)}")

    _run(_with_service(settings, load))


@main.command()
@click.option("--workspace", help="Only this workspace (name or id).")
@click.option("--all", "everything", is_flag=True, help="Every workspace.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_storage_options
def reset(workspace: str | None, everything: bool, yes: bool, storage: Settings) -> None:
    """Delete every file of a workspace (or of all): for tests and demos. Keys stay."""
    if bool(workspace) == everything:
        raise click.UsageError("say which: --workspace NAME or --all")
    if not yes:
        click.confirm(f"Delete every file of {'every workspace' if everything else workspace}?", abort=True)

    async def wipe(service: FileService) -> int:
        if everything:
            return await service.reset(None)
        found = await service.metadata.find_workspace(workspace or "")
        if found is None:
            _fail(f"no workspace {workspace!r}")
            return 0
        return await service.reset(found.id)

    click.echo(f"deleted {_run(_with_service(storage, wipe))} files")


@main.command()
@click.option(
    "--grace",
    type=float,
    default=24 * 3600,
    show_default=True,
    help="Seconds a blob without a row (or an unfinished upload) must be old before it is removed.",
)
@_storage_options
def gc(grace: float, storage: Settings) -> None:
    """Remove what crashes and outages left behind: interrupted deletes, content of expired files,
    blobs no row refers to, unfinished uploads. Safe while servers run (rows are leased)."""
    report = _run(_with_service(storage, lambda service: service.sweep(orphan_grace_seconds=grace)))
    click.echo(f"finished deletes: {report.deletes_finished}")
    click.echo(f"expired content purged: {report.expired_purged}")
    click.echo(f"orphan blobs removed: {report.orphans_removed}")
    click.echo(f"unfinished uploads removed: {report.incomplete_removed}")


@main.command()
@click.option("--quarantine", is_flag=True, help="Mark bad files so they are never served (500, no retry).")
@_progress_option
@_storage_options
def scrub(quarantine: bool, progress: bool | None, storage: Settings) -> None:
    """Re-read every stored file and verify its size and checksum. Exits 1 if any is bad."""

    async def run(service: FileService) -> Any:
        with _progress(progress) as bars:
            task = bars.add_task("scrubbing", total=None)

            def seen(record: Any, problem: str | None) -> None:
                bars.advance(task, record.size_bytes)
                if problem:
                    click.echo(f"BAD {record.id} ({record.filename}): {problem}")

            return await service.scrub(quarantine=quarantine, on_file=seen)

    report = _run(_with_service(storage, run))
    click.echo(
        f"checked {report.checked} files, {format_size(report.bytes)}; bad: {len(report.bad)}"
        + (f"; quarantined: {report.quarantined}" if quarantine else ""),
        err=True,
    )
    if report.bad:
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per workspace.")
@_storage_options
def stats(as_json: bool, storage: Settings) -> None:
    """Files and bytes per workspace."""
    rows = _run(_with_metadata(storage, lambda store: store.workspace_stats()))
    for row in rows:
        entry = {
            "workspace": row.workspace.name,
            "workspace_id": row.workspace.id,
            "files": row.files,
            "bytes": row.bytes,
        }
        if as_json:
            click.echo(json.dumps(entry))
        else:
            click.echo(f"{row.workspace.name:<24} {row.files:>10} files {_size(row.bytes):>12}")
