"""What the commands that talk to a running server over HTTP share (the client commands of
``files.py`` and the test-control commands of ``admin.py``): the ``--base-url``/``--api-key``
options, the client they make, and the exit codes of their failures (1: the API refused,
3: no connection)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from filesapi.cli._options import is_loopback
from filesapi.client import ApiError, ConnectionFailed, FilesClient

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_CONNECTION",
    "client_call",
    "client_options",
    "make_client",
    "report_api_error",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

EXIT_API_ERROR = 1
EXIT_CONNECTION = 3


def client_options(fn: _F) -> _F:
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


def make_client(base_url: str, api_key: str | None) -> FilesClient:
    from urllib.parse import urlsplit

    if not api_key:
        if not is_loopback(urlsplit(base_url).hostname or ""):
            raise click.UsageError("an API key is needed: pass --api-key or set ANTHROPIC_API_KEY")
        api_key = "filesapi-local"
    return FilesClient(base_url, api_key)


def report_api_error(exc: ApiError) -> None:
    request = f" (request {exc.request_id})" if exc.request_id else ""
    click.echo(f"error: {exc.status} {exc.error_type}: {exc.message}{request}", err=True)


def client_call(fn: Callable[[], _T]) -> _T:
    """Run a client call; turn its failures into a message and an exit code a script can rely on."""
    try:
        return fn()
    except ApiError as exc:
        report_api_error(exc)
        sys.exit(EXIT_API_ERROR)
    except ConnectionFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONNECTION)
