"""The operations endpoints: liveness and readiness for load balancers, Prometheus metrics, and the
API's own description (OpenAPI document and docs page)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from filesapi.errors import AuthenticationFailed, BackendUnavailable
from filesapi.http.calls import api_key, app_state, json_response
from filesapi.http.observe import Observer
from filesapi.http.openapi import docs_page, openapi_document

__all__ = ["operations_routes"]


async def healthz(request: Request) -> Response:
    """Alive: the process answers. Says nothing about the backends (that is /readyz)."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: the metadata database and the blob store both answer. 503 (with which failed) if not,
    so a load balancer stops sending traffic here until the backends are back."""
    service = app_state(request).service
    checks: dict[str, str] = {}
    for name, check in (("metadata", service.metadata.check), ("blobs", service.blobs.check)):
        try:
            await check()
            checks[name] = "ok"
        except BackendUnavailable as exc:
            checks[name] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return json_response({"status": "ready" if ready else "unavailable", **checks}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus metrics of the whole server (every worker process), with per-workspace storage
    read from the database.
    Under ``--auth keys`` they name every workspace, so only the admin key may read them."""
    authenticator = app_state(request).authenticator
    if authenticator.mode == "keys" and not authenticator.is_admin_key(api_key(request)):
        raise AuthenticationFailed(
            "With --auth keys, /metrics needs the admin key (Authorization: Bearer <admin key>)."
        )
    observer: Observer = request.app.state.observer
    await observer.settle()  # the requests answered before this one, in every worker
    try:
        stats = await app_state(request).service.metadata.workspace_stats()
    except BackendUnavailable:
        stats = []  # request metrics are still worth scraping during an outage
    return Response(observer.scrape(stats), media_type=CONTENT_TYPE_LATEST)


_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


async def openapi_json(request: Request) -> Response:
    return json_response(openapi_document())


async def docs(request: Request) -> Response:
    return HTMLResponse(docs_page(openapi_document()), headers={"content-security-policy": _DOCS_CSP})


operations_routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
