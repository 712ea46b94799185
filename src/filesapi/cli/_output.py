"""What commands print besides their results: the error line (and exit 1) of ``fail``, the rich
progress bars of ``progress_bars`` (on stderr), and sizes for people (``human_size``)."""

from __future__ import annotations

import sys
from typing import Any

import click


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def progress_bars(enabled: bool | None) -> Any:
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


def human_size(value: int) -> str:
    if value < 1000:
        return f"{value} B"
    for unit, factor in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if value < factor * 1000 or unit == "GB":
            return f"{value / factor:.1f} {unit}"
    return f"{value} B"
