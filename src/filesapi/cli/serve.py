"""``filesapi serve``: the server, its options (each with its ``FILESAPI_*`` variable) and the
``SIZE`` parameter type they use for sizes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from filesapi import __version__
from filesapi.cli._options import is_loopback, storage_options
from filesapi.cli._output import fail
from filesapi.cli._storage import prepare_schema, run_blocking
from filesapi.config import METRICS_DIR_ENV, Settings, format_size, parse_size
from filesapi.metadata import SchemaOutOfDate

__all__ = ["COMMANDS", "SIZE", "serve"]


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


class _Workers(click.ParamType[str]):
    """``auto`` or a number of processes from 1 to 64 (resolved by ``serve``, which knows the store)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if text == "auto" or (text.isdigit() and 1 <= int(text) <= 64):
            return text
        self.fail(f"{value!r} is neither auto nor a number of processes from 1 to 64", param, ctx)


def resolve_workers(workers: str, memory: bool) -> int:
    """``auto``: one process per core, except in memory, where everything lives in one process."""
    if workers != "auto":
        return int(workers)
    return Settings.from_env({"FILESAPI_WORKERS": "auto", "FILESAPI_MEMORY": str(memory)}).workers


@click.command()
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
@storage_options
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
    type=_Workers(),
    default="auto",
    show_default=True,
    envvar="FILESAPI_WORKERS",
    show_envvar=True,
    help="Server processes, or auto: one per core (1 with --memory, which keeps everything in one process). "
    "Measured on 2 cores, SQLite: 2 workers serve 1.3-1.6x the metadata reads and 4 KiB uploads of one.",
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
    "--max-concurrent-per-key",
    type=click.IntRange(min=0),
    default=None,
    envvar="FILESAPI_MAX_CONCURRENT_PER_KEY",
    show_envvar=True,
    help="Requests one API key (under --auth open: one client address) may have in flight per worker; "
    "beyond, 429 rate_limit_error. Default: a quarter of --max-concurrent-requests (0: no limit).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    envvar="FILESAPI_RATE_LIMIT",
    show_envvar=True,
    help="Requests per minute per API key (under --auth open: per client address) before 429 "
    "rate_limit_error, one budget shared by every worker and replica on the metadata database (0: no limit).",
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
    "--min-upload-rate",
    type=SIZE,
    default=1000,
    show_default=True,
    envvar="FILESAPI_MIN_UPLOAD_RATE",
    show_envvar=True,
    help="Bytes a second an upload must average after its first 10 seconds, or it is refused with 408 "
    "(0: no floor). 1000 is a modem's pace; a byte now and then no longer holds a slot.",
)
@click.option(
    "--upload-deadline",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    envvar="FILESAPI_UPLOAD_DEADLINE",
    show_envvar=True,
    help="Seconds an upload may take in all before it is refused with 408 (0: no deadline).",
)
@click.option(
    "--send-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    envvar="FILESAPI_SEND_TIMEOUT",
    show_envvar=True,
    help="Seconds a client may take to accept one chunk of a response (1 MiB at most) before the "
    "response is cut off (0: wait forever).",
)
@click.option(
    "--allowed-hosts",
    default="",
    envvar="FILESAPI_ALLOWED_HOSTS",
    show_envvar=True,
    help="Under --auth open, Host names answered besides 127.0.0.1, localhost and [::1] (comma "
    "separated; '*': any). Other Hosts get 421, so a web page cannot reach the server by DNS rebinding.",
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
    "--upstream",
    envvar="FILESAPI_UPSTREAM",
    show_envvar=True,
    help="Turn on the Messages gateway (POST /v1/messages, /v1/messages/count_tokens): file_id sources are "
    "inlined from this server and the request goes to URL (e.g. https://api.anthropic.com), or to the "
    "built-in deterministic reply with `mock`. See docs/gateway.md.",
)
@click.option(
    "--upstream-key",
    envvar="FILESAPI_UPSTREAM_KEY",
    show_envvar=True,
    help="The key the upstream receives (x-api-key) instead of the client's. Without it the client's "
    "credential header is passed on.",
)
@click.option(
    "--upstream-max-request",
    type=SIZE,
    default="32MB",
    show_default=True,
    envvar="FILESAPI_UPSTREAM_MAX_REQUEST",
    show_envvar=True,
    help="Largest request the upstream takes, files inlined: beyond it 413 request_too_large, nothing sent.",
)
@click.option(
    "--upstream-timeout",
    type=click.FloatRange(min=0.1),
    default=600.0,
    show_default=True,
    envvar="FILESAPI_UPSTREAM_TIMEOUT",
    show_envvar=True,
    help="Seconds the upstream may go silent (connecting: 10 at most) before the call fails with 504.",
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
    options["workers"] = resolve_workers(options["workers"], options["memory"])
    try:
        settings = Settings(
            data_dir=storage.data_dir, database_url=storage.database_url, blob_url=storage.blob_url, **options
        )
    except ValueError as exc:
        fail(str(exc))
        return
    if settings.auth == "open" and not is_loopback(settings.host):
        if not allow_open_network:
            fail(
                f"--auth open on {settings.host} would let anyone on the network read and delete every file. "
                "Use --auth keys, or pass --allow-open-network if you really mean it."
            )
        click.echo(f"WARNING: serving with --auth open on {settings.host}: no real authentication.", err=True)
    if not settings.memory:
        # Create or check the schema once, before workers start (and race to do it).
        try:
            run_blocking(prepare_schema(settings, upgrade=settings.upgrade_db))
        except SchemaOutOfDate as exc:
            fail(str(exc))
    os.environ.update(settings.to_env())
    where = "memory" if settings.memory else f"{settings.metadata_url} + {settings.blobs_url}"
    click.echo(
        f"filesapi {__version__} on http://{settings.host}:{settings.port} ({where}; auth {settings.auth}; "
        f"profile {settings.profile}; max file {format_size(settings.max_file_size)}; "
        f"{settings.workers} worker{'s' if settings.workers > 1 else ''})",
        err=True,
    )
    if settings.upstream:
        key = "its own key" if settings.upstream_key else "the client's key"
        click.echo(f"Messages gateway to {settings.upstream} ({key})", err=True)
    with _metrics_dir(settings.workers):
        _granian(settings)


@contextlib.contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """Several workers keep their metrics in files of one directory (prometheus-client's
    multiprocess mode), so a scrape of any of them reports the whole server: a fresh temporary
    directory, removed when the server stops, or the one ``PROMETHEUS_MULTIPROC_DIR`` names,
    emptied first (values of an earlier run would be summed in). Set before any worker imports
    prometheus-client, which reads it then; the parent process never imports it."""
    given = os.environ.get(METRICS_DIR_ENV)
    if not given and workers == 1:
        yield
        return
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="filesapi-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_DIR_ENV] = str(path)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)


def _granian(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from filesapi.controls.shared import RUNTIME_DIR_ENV, SharedState

    # The journal, fault rules and clock every worker shares; gone when the server stops.
    runtime_dir = tempfile.mkdtemp(prefix="filesapi-run-")
    os.environ[RUNTIME_DIR_ENV] = runtime_dir
    SharedState(runtime_dir).close()  # its file made once, before the workers open it together
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


COMMANDS: tuple[click.Command, ...] = (serve,)
