"""The operator's commands, run on the server's own storage (safe while the server runs):
``keys`` (create, list, revoke), ``db`` (upgrade, current), ``stats``, ``seed``, ``gc``, ``scrub``
and ``reset``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from filesapi.cli._options import progress_option, storage_options
from filesapi.cli._output import fail, human_size, progress_bars
from filesapi.cli._remote import client_call, client_options, make_client
from filesapi.cli._storage import prepare_schema, run_blocking, with_metadata, with_service
from filesapi.config import Settings, format_size
from filesapi.service import FileService

__all__ = ["COMMANDS", "db", "faults", "gc", "keys", "requests_command", "reset", "scrub", "seed", "stats"]

# -- keys


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (for `serve --auth keys`)."""


@keys.command("create")
@click.option("--workspace", required=True, help="Workspace the key acts on (created when new).")
@click.option("--label", default=None, help="A note to recognise the key by in `keys list`.")
@storage_options
def keys_create(workspace: str, label: str | None, storage: Settings) -> None:
    """Create a key. The key itself is printed once, as the last line: store it now."""
    from filesapi.auth import create_key

    created = run_blocking(with_metadata(storage, lambda store: create_key(store, workspace, label)))
    ws = created.record.workspace
    click.echo(f"key id {created.record.key_id} for workspace {ws.name} ({ws.id})", err=True)
    click.echo(created.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@storage_options
def keys_list(as_json: bool, storage: Settings) -> None:
    """List keys (ids, workspaces, state; never the keys themselves)."""
    records = run_blocking(with_metadata(storage, lambda s: s.list_keys()))

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
@storage_options
def keys_revoke(key_id: str, storage: Settings) -> None:
    """Revoke a key by its id (the part after sk-fapi-, as `keys list` shows it)."""
    import time

    key_id = key_id.removeprefix("sk-fapi-").split("-", 1)[0]
    done = run_blocking(
        with_metadata(
            storage,
            lambda s: s.revoke_key(key_id, time.time_ns() // 1000),
        )
    )
    if not done:
        fail(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")


# -- db


@click.group()
def db() -> None:
    """Inspect and migrate the metadata database schema."""


@db.command("upgrade")
@storage_options
def db_upgrade(storage: Settings) -> None:
    """Migrate the schema to this version of filesapi."""
    settings = storage
    run_blocking(prepare_schema(settings, upgrade=True))
    click.echo(f"schema of {settings.metadata_url} is up to date")


@db.command("current")
@storage_options
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

    current = run_blocking(read())
    head = head_revision()
    click.echo(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        sys.exit(2)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    with path.open("rb") as handle:
        while chunk := await loop.run_in_executor(None, handle.read, 1 << 20):
            yield chunk


@click.command()
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
@progress_option
@storage_options
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
        with progress_bars(progress) as bars:
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

    run_blocking(with_service(settings, load))


@click.command()
@click.option("--workspace", help="Only this workspace (name or id).")
@click.option("--all", "everything", is_flag=True, help="Every workspace.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@storage_options
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
            fail(f"no workspace {workspace!r}")
            return 0
        return await service.reset(found.id)

    click.echo(f"deleted {run_blocking(with_service(storage, wipe))} files")


@click.command()
@click.option(
    "--grace",
    type=float,
    default=24 * 3600,
    show_default=True,
    help="Seconds a blob without a row (or an unfinished upload) must be old before it is removed.",
)
@storage_options
def gc(grace: float, storage: Settings) -> None:
    """Remove what crashes and outages left behind: interrupted deletes, content of expired files,
    blobs no row refers to, unfinished uploads. Safe while servers run (rows are leased)."""
    report = run_blocking(with_service(storage, lambda service: service.sweep(orphan_grace_seconds=grace)))
    click.echo(f"finished deletes: {report.deletes_finished}")
    click.echo(f"expired content purged: {report.expired_purged}")
    click.echo(f"orphan blobs removed: {report.orphans_removed}")
    click.echo(f"unfinished uploads removed: {report.incomplete_removed}")


@click.command()
@click.option("--quarantine", is_flag=True, help="Mark bad files so they are never served (500, no retry).")
@progress_option
@storage_options
def scrub(quarantine: bool, progress: bool | None, storage: Settings) -> None:
    """Re-read every stored file and verify its size and checksum. Exits 1 if any is bad."""

    async def run(service: FileService) -> Any:
        with progress_bars(progress) as bars:
            task = bars.add_task("scrubbing", total=None)

            def seen(record: Any, problem: str | None) -> None:
                bars.advance(task, record.size_bytes)
                if problem:
                    click.echo(f"BAD {record.id} ({record.filename}): {problem}")

            return await service.scrub(quarantine=quarantine, on_file=seen)

    report = run_blocking(with_service(storage, run))
    click.echo(
        f"checked {report.checked} files, {format_size(report.bytes)}; bad: {len(report.bad)}"
        + (f"; quarantined: {report.quarantined}" if quarantine else ""),
        err=True,
    )
    if report.bad:
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per workspace.")
@storage_options
def stats(as_json: bool, storage: Settings) -> None:
    """Files and bytes per workspace."""
    rows = run_blocking(with_metadata(storage, lambda store: store.workspace_stats()))
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
            click.echo(f"{row.workspace.name:<24} {row.files:>10} files {human_size(row.bytes):>12}")


# -- test controls and the journal, over HTTP against a running server


def _admin_call(base_url: str, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    with make_client(base_url, api_key) as client:
        return client_call(lambda: client.admin(method, path, **kwargs))


def _rule_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``status=529 times=2`` -> {"status": 529, "times": 2} (the x-filesapi-fault header's syntax)."""
    rule: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="RULE")
        try:
            rule[name.strip()] = json.loads(raw)
        except ValueError:
            rule[name.strip()] = raw
    return rule


@click.group()
def faults() -> None:
    """Fault rules of a server started with --test-controls (e.g. `faults add operation=upload
    status=529 times=2`)."""


@faults.command("add")
@click.argument("rule", nargs=-1, required=True)
@client_options
def faults_add(rule: tuple[str, ...], base_url: str, api_key: str | None) -> None:
    """Arm a rule given as key=value pairs: operation, workspace, times, probability, seed, and one
    of status (with retry_after_seconds), delay_ms, disconnect=true, truncate_after_bytes."""
    click.echo(json.dumps(_admin_call(base_url, api_key, "POST", "faults", json=_rule_pairs(rule))))


@faults.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule.")
@client_options
def faults_ls(as_json: bool, base_url: str, api_key: str | None) -> None:
    """The armed rules with their hits and what remains."""
    for rule in _admin_call(base_url, api_key, "GET", "faults")["data"]:
        if as_json:
            click.echo(json.dumps(rule))
            continue
        action = next(
            f"{k}={rule[k]}"
            for k in ("status", "delay_ms", "disconnect", "truncate_after_bytes")
            if k in rule
        )
        remaining = "unlimited" if rule["remaining"] is None else f"{rule['remaining']} left"
        click.echo(
            f"{rule['id']:<20} {rule['operation']:<9} {action:<26} {rule['hits']:>5} hits  {remaining}"
        )


@faults.command("clear")
@click.argument("rule_id", required=False)
@client_options
def faults_clear(rule_id: str | None, base_url: str, api_key: str | None) -> None:
    """Remove one rule (by id) or all of them."""
    _admin_call(base_url, api_key, "DELETE", "faults" + (f"/{rule_id}" if rule_id else ""))


@click.command("requests")
@click.option("--operation", help="upload, list, retrieve, download, delete, messages, admin, console.")
@click.option("--status", type=int, help="Only answers with this status.")
@click.option("--method", help="Only this HTTP method.")
@click.option("--workspace", help="Only this workspace (name or id).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per request (the journal's entries).")
@client_options
def requests_command(
    operation: str | None,
    status: int | None,
    method: str | None,
    workspace: str | None,
    limit: int,
    as_json: bool,
    base_url: str,
    api_key: str | None,
) -> None:
    """The server's request journal, newest first."""
    params = {
        "operation": operation,
        "status": status,
        "method": method,
        "workspace": workspace,
        "limit": limit,
    }
    body = _admin_call(
        base_url, api_key, "GET", "requests", params={k: v for k, v in params.items() if v is not None}
    )
    for entry in body["data"]:
        if as_json:
            click.echo(json.dumps(entry))
            continue
        sdk = entry["sdk"] or {}
        client = f"{sdk.get('language')} {sdk.get('package_version')}" if sdk else entry["user_agent"][:20]
        click.echo(
            f"{entry['started_at'][11:23]} {entry['status'] or '-':>4} {entry['method']:<6} "
            f"{entry['path'][:48]:<48} {entry['duration_ms']:>8.1f}ms {client:<20} {entry['fault'] or ''}"
        )


COMMANDS: tuple[click.Command, ...] = (keys, db, stats, seed, gc, scrub, reset, faults, requests_command)
