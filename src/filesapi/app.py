"""Building the ASGI application: open the stores a Settings names, wire the service, serve."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.types import ASGIApp

from filesapi.auth import OPEN_WORKSPACE, Authenticator
from filesapi.blobs import open_blob_store
from filesapi.config import Settings
from filesapi.controls.faults import FaultStore
from filesapi.controls.journal import Journal
from filesapi.controls.shared import RUNTIME_DIR_ENV, SharedState
from filesapi.cursors import CursorCodec
from filesapi.errors import BackendUnavailable
from filesapi.gateway import Gateway, GatewayConfig
from filesapi.http.context import RequestContext
from filesapi.http.controls import FaultLayer
from filesapi.http.direct import DirectRoutes
from filesapi.http.guard import Guard, HttpOptions
from filesapi.http.observe import Observer
from filesapi.http.routes import AppState, app_routes, exception_handlers
from filesapi.ids import IdClock
from filesapi.logs import setup_logging
from filesapi.metadata import MetadataStore, open_metadata_store
from filesapi.service import FileService, Policy

__all__ = ["app_from_env", "build_app", "create_app", "open_state"]

log = logging.getLogger("filesapi")


@contextlib.asynccontextmanager
async def open_state(settings: Settings, clock: IdClock | None = None) -> AsyncIterator[AppState]:
    """Open the backends ``settings`` names and close them on exit. ``clock``: the server's."""
    metadata = await open_metadata_store(settings.metadata_url, upgrade=settings.upgrade_db)
    blobs = open_blob_store(settings.blobs_url)
    try:
        open_workspace = await metadata.ensure_workspace(OPEN_WORKSPACE) if settings.auth == "open" else None
        cursor_secret = await metadata.secret("cursor", lambda: secrets.token_urlsafe(32))
        service = FileService(
            metadata,
            blobs,
            CursorCodec(cursor_secret),
            policy=Policy(
                max_file_size=settings.max_file_size,
                workspace_quota=settings.effective_quota,
                uploads_downloadable=settings.profile != "hosted",
                inline_max_size=settings.effective_inline_max_size,
            ),
            clock=clock,
        )
        authenticator = Authenticator(metadata, settings.auth, open_workspace, settings.admin_key)
        yield AppState(service=service, authenticator=authenticator)
    finally:
        await blobs.close()
        await metadata.close()


ORPHAN_SWEEP_SECONDS = 3600.0


async def _sweep_forever(service: FileService, interval: float) -> None:
    """Sweep every ``interval`` seconds; look for orphan blobs (which lists the whole store) hourly."""
    last_orphan_sweep = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        orphans = time.monotonic() - last_orphan_sweep >= ORPHAN_SWEEP_SECONDS
        try:
            report = await service.sweep(orphans=orphans)
            if orphans:
                last_orphan_sweep = time.monotonic()
            if report:
                log.info("sweeper: %s", report)
        except BackendUnavailable as exc:
            log.warning("sweeper skipped a round: %s", exc.message)


def build_app(
    state: AppState | None = None,
    *,
    settings: Settings | None = None,
    console: bool = True,
    options: HttpOptions | None = None,
    gateway: GatewayConfig | None = None,
    test_controls: bool = False,
    runtime_dir: str | None = None,
    workers: int = 1,
) -> ASGIApp:
    """The ASGI app. With ``state`` the caller owns the backends (tests); with ``settings`` the app
    opens them in its lifespan. ``console``: serve the web console at /console. ``gateway``: the
    Messages gateway's upstream (off by default). ``test_controls``: fault rules and the movable
    clock. ``runtime_dir``: the state shared with the server's other worker processes (the journal,
    rules, clock); without one the app makes its own."""
    options = options or HttpOptions()
    shared = SharedState(runtime_dir)
    journal = Journal(shared, workers=workers)
    clock = IdClock(shared.now_us, lambda: shared.clock_epoch)
    if state is not None:
        state.service.clock = clock

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state is not None:
            app.state.filesapi = state
            try:
                yield
            finally:
                await app.state.gateway.close()
                journal.flush()
                app.state.observer.flush()
                shared.close()
            return
        assert settings is not None
        async with open_state(settings, clock) as opened:
            app.state.filesapi = opened
            sweeper = asyncio.create_task(_sweep_forever(opened.service, settings.sweep_interval))
            # What start-up made lives as long as the process: out of the collector's sight, so a
            # full collection (every few thousand requests) no longer walks ~100k objects at once.
            gc.freeze()
            try:
                yield
            finally:
                sweeper.cancel()
                await app.state.gateway.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                journal.flush()
                app.state.observer.flush()
                shared.close()
                # Worker processes end with os._exit (no atexit): write out buffered log lines now.
                for handler in logging.getLogger().handlers:
                    handler.flush()

    app = Starlette(
        routes=app_routes(console=console, test_controls=test_controls),
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.observer = Observer()
    app.state.options = options
    app.state.shared = shared
    app.state.journal = journal
    app.state.test_controls = test_controls
    app.state.gateway = Gateway(gateway or GatewayConfig(), app.state.observer.registry)
    if state is not None:
        app.state.filesapi = state

    def store() -> MetadataStore:
        opened: AppState = app.state.filesapi
        return opened.service.metadata

    inner: ASGIApp = Guard(DirectRoutes(app), options, store)
    if test_controls:
        app.state.faults = FaultStore(shared)
        inner = FaultLayer(inner, app.state.faults, app)
    return RequestContext(inner, app.state.observer, journal, shared, options.send_timeout)


def create_app(settings: Settings) -> ASGIApp:
    options = HttpOptions(
        verify_downloads=settings.verify_downloads,
        body_timeout=settings.body_timeout,
        min_upload_rate=settings.min_upload_rate,
        upload_deadline=settings.upload_deadline or None,
        send_timeout=settings.send_timeout or None,
        max_concurrent_requests=settings.max_concurrent_requests,
        max_concurrent_per_key=settings.max_concurrent_per_key,
        rate_limit_per_minute=settings.rate_limit or None,
        limit_by_address=settings.auth == "open",
        allowed_hosts=settings.effective_allowed_hosts,
    )
    gateway = GatewayConfig(
        upstream=settings.upstream,
        upstream_key=settings.upstream_key,
        max_request=settings.upstream_max_request,
        timeout=settings.upstream_timeout,
    )
    return build_app(
        settings=settings,
        console=settings.console,
        options=options,
        gateway=gateway,
        test_controls=settings.test_controls,
        runtime_dir=os.environ.get(RUNTIME_DIR_ENV),
        workers=settings.workers,
    )


def app_from_env() -> ASGIApp:
    """Factory for the ASGI server's worker processes: settings come from ``FILESAPI_*``."""
    settings = Settings.from_env()
    setup_logging(settings.log_level, {"json": True, "text": False}.get(settings.log_format))
    return create_app(settings)
