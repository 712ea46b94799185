"""Options several commands share, and the address check they rely on.

- ``storage_options``: where the server's data lives (``--data-dir``, ``--database-url``,
  ``--blob-url``), handed to the command as one ``storage: Settings``;
- ``progress_option``: ``--progress/--no-progress``;
- ``is_loopback``: whether a ``--host`` (serve) or ``--base-url`` (client commands) is this machine.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from filesapi.config import Settings

_F = TypeVar("_F", bound=Callable[..., Any])


def storage_options(fn: _F) -> _F:
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


progress_option = click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal)."
)


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
