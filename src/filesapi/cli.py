"""The ``filesapi`` command: serve, manage keys, migrate the database."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from filesapi import __version__
from filesapi.config import Settings, format_size, parse_size
from filesapi.metadata import MetadataStore, SchemaOutOfDate, open_metadata_store

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
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _settings_for_storage(data_dir: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url)


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
    "--blob-url",
    envvar="FILESAPI_BLOB_URL",
    show_envvar=True,
    help="Blob store instead of DATA_DIR/blobs, e.g. file:///srv/blobs.",
)
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
    "--allow-open-network",
    is_flag=True,
    envvar="FILESAPI_ALLOW_OPEN_NETWORK",
    show_envvar=True,
    help="Allow --auth open on a non-loopback address (anyone who can reach it can read every file).",
)
def serve(allow_open_network: bool, **options: Any) -> None:
    """Serve the Files API (SQLite + a local folder by default)."""
    try:
        settings = Settings(**options)
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
            _run(_with_metadata(replace(settings), _noop) if not settings.upgrade_db else _upgrade(settings))
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
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        "filesapi.app:app_from_env",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=settings.workers,
        log_access=False,
        log_level=LogLevels(settings.log_level),
    ).serve()


async def _noop(_: MetadataStore) -> None:
    return None


async def _upgrade(settings: Settings) -> None:
    store = await open_metadata_store(settings.metadata_url, upgrade=True)
    await store.close()


# -- keys


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (for `serve --auth keys`)."""


@keys.command("create")
@click.option("--workspace", required=True, help="Workspace the key acts on (created when new).")
@click.option("--label", default=None, help="A note to recognise the key by in `keys list`.")
@_storage_options
def keys_create(workspace: str, label: str | None, data_dir: Path, database_url: str | None) -> None:
    """Create a key. The key itself is printed once, as the last line: store it now."""
    from filesapi.auth import create_key

    created = _run(
        _with_metadata(
            _settings_for_storage(data_dir, database_url), lambda store: create_key(store, workspace, label)
        )
    )
    ws = created.record.workspace
    click.echo(f"key id {created.record.key_id} for workspace {ws.name} ({ws.id})", err=True)
    click.echo(created.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@_storage_options
def keys_list(as_json: bool, data_dir: Path, database_url: str | None) -> None:
    """List keys (ids, workspaces, state; never the keys themselves)."""
    records = _run(_with_metadata(_settings_for_storage(data_dir, database_url), lambda s: s.list_keys()))

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
def keys_revoke(key_id: str, data_dir: Path, database_url: str | None) -> None:
    """Revoke a key by its id (the part after sk-fapi-, as `keys list` shows it)."""
    import time

    key_id = key_id.removeprefix("sk-fapi-").split("-", 1)[0]
    done = _run(
        _with_metadata(
            _settings_for_storage(data_dir, database_url),
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
def db_upgrade(data_dir: Path, database_url: str | None) -> None:
    """Migrate the schema to this version of filesapi."""
    settings = _settings_for_storage(data_dir, database_url)
    _run(_upgrade(settings))
    click.echo(f"schema of {settings.metadata_url} is up to date")


@db.command("current")
@_storage_options
def db_current(data_dir: Path, database_url: str | None) -> None:
    """Print the schema revision of the database and the one this filesapi needs."""
    from filesapi.metadata.migrate import current_revision, head_revision
    from filesapi.metadata.sql import create_engine_for_url

    settings = _settings_for_storage(data_dir, database_url)

    async def read() -> str | None:
        engine = create_engine_for_url(settings.metadata_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current = _run(read())
    head = head_revision()
    click.echo(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        sys.exit(2)
