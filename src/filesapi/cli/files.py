"""The client commands, which talk to a running filesapi (or the hosted service) over HTTP:
``upload``, ``ls``, ``stat``, ``download`` and ``rm``, with the ``--base-url``/``--api-key`` options
they share and their exit codes (1: the API refused, 3: no connection)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from filesapi.cli._options import progress_option
from filesapi.cli._output import human_size, progress_bars
from filesapi.cli._remote import (
    EXIT_API_ERROR,
    EXIT_CONNECTION,
    client_call,
    client_options,
    make_client,
    report_api_error,
)
from filesapi.client import ApiError, ConnectionFailed

__all__ = [
    "COMMANDS",
    "EXIT_API_ERROR",
    "EXIT_CONNECTION",
    "download",
    "list_command",
    "remove",
    "stat",
    "upload",
]


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--expires-in", "expires_in", type=int, help="Seconds until the files expire (3600..7776000).")
@click.option("--json", "as_json", is_flag=True, help="Print each file's metadata as a JSON line.")
@progress_option
@client_options
def upload(
    files: tuple[Path, ...],
    expires_in: int | None,
    as_json: bool,
    progress: bool | None,
    base_url: str,
    api_key: str | None,
) -> None:
    """Upload FILES; prints each new file id (or its metadata with --json)."""
    with make_client(base_url, api_key) as client, progress_bars(progress) as bars:
        for path in files:
            task = bars.add_task(path.name, total=path.stat().st_size)

            def send(path: Path = path, task: Any = task) -> Any:
                return client.upload(
                    path, expires_in_seconds=expires_in, progress=lambda n: bars.advance(task, n)
                )

            meta = client_call(send)
            click.echo(json.dumps(meta) if as_json else meta["id"])


@click.command("ls")
@click.option("--all", "everything", is_flag=True, help="Page through every file, not just the newest page.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Files per page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (for scripts).")
@client_options
def list_command(everything: bool, limit: int, as_json: bool, base_url: str, api_key: str | None) -> None:
    """List files, newest first."""
    from rich.console import Console
    from rich.table import Table

    with make_client(base_url, api_key) as client:
        rows = client_call(lambda: list(client.list(limit=limit, everything=everything)))
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
            human_size(row["size_bytes"]),
            row["created_at"][:19].replace("T", " "),
            (row.get("expires_at") or "")[:19].replace("T", " "),
        )
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=250)
    console.print(table)
    if not rows:
        click.echo("no files", err=True)


@click.command()
@click.argument("file_id")
@client_options
def stat(file_id: str, base_url: str, api_key: str | None) -> None:
    """Print a file's metadata as JSON."""
    with make_client(base_url, api_key) as client:
        click.echo(json.dumps(client_call(lambda: client.stat(file_id)), indent=2))


@click.command()
@click.argument("file_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=True, path_type=Path),
    help="Where to write (a file or a folder; '-' for stdout). Default: the file's own name here.",
)
@progress_option
@client_options
def download(
    file_id: str, output: Path | None, progress: bool | None, base_url: str, api_key: str | None
) -> None:
    """Download a file's content. Writes to a temporary name and renames when complete, so a
    failed download never leaves a truncated file behind."""
    with make_client(base_url, api_key) as client:
        if output is not None and str(output) == "-":
            client_call(lambda: client.download(file_id, sys.stdout.buffer))
            return
        name = Path(client_call(lambda: client.stat(file_id))["filename"]).name or file_id
        target = (output / name if output.is_dir() else output) if output is not None else Path(name)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with partial.open("wb") as handle, progress_bars(progress) as bars:
                task = bars.add_task(name, total=None)
                client_call(
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


@click.command("rm")
@click.argument("file_ids", nargs=-1, required=True)
@client_options
def remove(file_ids: tuple[str, ...], base_url: str, api_key: str | None) -> None:
    """Delete files. Goes on past failures; exits 1 if any delete failed."""
    failed = False
    with make_client(base_url, api_key) as client:
        for file_id in file_ids:
            try:
                click.echo(f"deleted {client.delete(file_id)['id']}")
            except ApiError as exc:
                failed = True
                report_api_error(exc)
            except ConnectionFailed as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_CONNECTION)
    if failed:
        sys.exit(EXIT_API_ERROR)


COMMANDS: tuple[click.Command, ...] = (upload, list_command, stat, download, remove)
