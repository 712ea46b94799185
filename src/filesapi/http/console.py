"""The web console: its page, static assets and the two read-only endpoints it needs.

The page (``GET /console``) is plain HTML with hand-written JS (native ES modules) and CSS shipped as
package data in ``filesapi/console/``; there is no front-end build, the files are served as they
are. It talks to the normal Files API with the user's key (kept in the tab's ``sessionStorage``) and
to two JSON endpoints of its own, authorized exactly
like the API (same keys, same workspace rules, same error envelopes):

- ``GET /v1/console/requests?after_seq=N``: the recent requests of the caller's workspace (every
  request, unauthenticated and unmatched ones too, for the admin key and under ``--auth open``),
  read from the server's request journal (one for all its workers). A workspace's requests are
  numbered by their own sequence, so ``seq`` and ``last_seq`` say nothing about other workspaces.
- ``GET /v1/console/storage``: files, bytes and quota of the caller's workspace (of every workspace
  for the admin key and under ``--auth open``).

The page sets its own strict CSP (no inline script or style, nothing from other origins); uploaded
content is only ever shown as an ``<img>`` from a ``blob:`` URL, as text via ``textContent``, or as a
PDF in a sandboxed frame, so uploaded HTML or SVG never runs from this origin.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import re
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from filesapi.controls.journal import Journal
from filesapi.errors import InvalidRequest
from filesapi.http.calls import app_state, authorize, is_admin_call, json_response, query_int, query_one
from filesapi.models import WorkspaceStats
from filesapi.numbers import decimal

__all__ = ["CONSOLE_CSP", "console_routes", "sdk_of"]

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "frame-src blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_JS = "text/javascript; charset=utf-8"
# The only files served: a name not listed here is a 404, whatever else the package holds.
_ASSETS = {
    "console.js": _JS,  # the entry module; it imports the others
    "api.js": _JS,
    "state.js": _JS,
    "widgets.js": _JS,
    "files.js": _JS,
    "requests.js": _JS,
    "storage.js": _JS,
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_MUTATING_PREFIX = "/v1/"
_DEFAULT_LIMIT = 200
_MAX_LIMIT = 500
# "Anthropic/Python 2.12.0", "Anthropic/JS 0.60.0", "Anthropic/Go 1.5.0", "Anthropic/Java 2.1.0", ...
_SDK_UA = re.compile(r"Anthropic/([A-Za-z#+.]+)\s+v?([0-9][\w.+-]*)")


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@functools.cache
def _asset(name: str) -> _Asset:
    body = importlib.resources.files("filesapi").joinpath("console", "static", name).read_bytes()
    return _Asset(body, _ASSETS[name], '"' + hashlib.sha256(body).hexdigest()[:16] + '"')


@functools.cache
def _version() -> str:
    """Changes whenever an asset does, so the page's asset URLs can be cached for long."""
    digest = hashlib.sha256()
    for name in sorted(_ASSETS):
        digest.update(_asset(name).body)
    return digest.hexdigest()[:12]


@functools.cache
def _page() -> bytes:
    template = importlib.resources.files("filesapi").joinpath("console", "index.html").read_text("utf-8")
    return template.replace("__VERSION__", _version()).encode("utf-8")


def sdk_of(user_agent: str) -> str:
    """A short name for the client that sent a request, from its user agent."""
    match = _SDK_UA.search(user_agent)
    if match:
        return f"{match.group(1)} SDK {match.group(2)}"
    if user_agent.startswith("Mozilla/"):
        return "browser"
    return user_agent.split(" ", 1)[0][:40]


# -- the page and its assets


async def console_page(request: Request) -> Response:
    return Response(
        _page(),
        media_type="text/html; charset=utf-8",
        headers={
            "content-security-policy": CONSOLE_CSP,
            "cache-control": "no-cache",
            "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin",
        },
    )


async def console_slash(request: Request) -> Response:
    return RedirectResponse("../console", status_code=308)  # relative: works behind a path prefix


async def console_asset(request: Request) -> Response:
    """``/console/static/VERSION/NAME`` (what the page uses: the JS modules import each other by
    relative URLs, which keep the versioned folder) or ``/console/static/NAME?v=VERSION``. Cached for
    good when VERSION is this server's; else (no version, or another release's) revalidated each time.
    The name is only looked up in ``_ASSETS``, never used as a path."""
    name = request.path_params["name"]
    if name not in _ASSETS:
        raise HTTPException(404)
    asset = _asset(name)
    version = request.path_params.get("version", request.query_params.get("v"))
    cache = "public, max-age=31536000, immutable" if version == _version() else "no-cache"
    headers = {"etag": asset.etag, "cache-control": cache}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


# -- the JSON endpoints


def _record_json(seq: int, entry: dict[str, Any]) -> dict[str, Any]:
    status = entry["status"] or 0
    return {
        "seq": seq,
        "time": entry["started_us"] / 1e6,
        "request_id": entry["request_id"],
        "method": entry["method"],
        "path": entry["path"],
        "route": entry["route"],
        "dialect": entry["dialect"],
        "status": status,
        "duration_ms": round(entry["duration_ms"], 2),
        "bytes_in": entry["bytes_in"],
        "bytes_out": entry["bytes_out"],
        "workspace": entry["workspace"],
        "user_agent": entry["user_agent"],
        "sdk": sdk_of(entry["user_agent"]),
        "files": entry.get("files"),  # Messages gateway calls: the files resolved (never their bytes)
        "upstream_request_id": entry.get("upstream_request_id"),
        "mutating": entry["method"] in ("POST", "PUT", "PATCH", "DELETE")
        and entry["path"].startswith(_MUTATING_PREFIX)
        and 200 <= status < 300,
    }


def _journal(request: Request) -> Journal:
    journal: Journal = request.app.state.journal
    return journal


def _after_seq(request: Request) -> int:
    """``after=SERVER:SEQ,...`` (the last seq seen of this server's journal; older console pages
    sent one pair per worker process), else ``after_seq=SEQ``."""
    pairs = query_one(request, "after")
    if pairs is not None:
        me = _journal(request).server_id
        for pair in pairs.split(","):
            process, _, seq = pair.strip().rpartition(":")
            if process == me:
                value = decimal(seq)
                if value is None:
                    raise InvalidRequest(f"after: {pair[:60]!r} is not PROCESS:SEQ.")
                return value
        return 0
    return max(query_int(request, "after_seq") or 0, 0)


async def console_requests(request: Request) -> Response:
    """Recent requests newer than ``after_seq``, oldest first, at most ``limit`` (the newest).

    ``last_seq`` is the newest sequence number the caller may see (whether shown or not): poll with
    ``after_seq=last_seq``. For a workspace's key the numbers are the workspace's own; for the admin
    key (and under ``--auth open``), which sees every workspace, the server's. The console's own
    traffic is left out unless ``include_console=true``. Keys are never recorded.
    """
    call = await authorize(request)
    after_seq = _after_seq(request)
    limit = query_int(request, "limit")
    limit = _DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {_MAX_LIMIT}, got {limit}.")
    include_console = (query_one(request, "include_console") or "").lower() in ("true", "1", "yes")
    everything = is_admin_call(request, call)
    journal = _journal(request)
    await journal.settle()
    shown, last_seq = journal.recent(
        None if everything else call.principal.workspace.name,
        after_seq,
        limit,
        include_console=include_console,
    )
    return json_response(
        {
            "data": [_record_json(seq, entry) for seq, entry in shown],
            "last_seq": last_seq,
            "process": journal.server_id,
            "all_workspaces": everything,
        }
    )


async def console_storage(request: Request) -> Response:
    call = await authorize(request)
    service = app_state(request).service
    quota = service.policy.workspace_quota
    everything = is_admin_call(request, call)
    own = call.principal.workspace
    stats = await service.metadata.workspace_stats()
    rows = [s for s in stats if everything or s.workspace.id == own.id]
    if not any(s.workspace.id == own.id for s in rows):
        rows.append(WorkspaceStats(own, files=0, bytes=await service.metadata.used_bytes(own.id)))
    workspaces = [
        {
            "id": s.workspace.id,
            "name": s.workspace.name,
            "files": s.files,
            "bytes": s.bytes,
            "quota_bytes": quota,
            "used_fraction": None if not quota else s.bytes / quota,
        }
        for s in rows
    ]
    return json_response(
        {
            "workspace": {"id": own.id, "name": own.name},
            "admin": call.principal.is_admin,
            "auth": app_state(request).authenticator.mode,
            "all_workspaces": everything,
            "quota_bytes": quota,
            "max_file_size": service.policy.max_file_size,
            "uploads_downloadable": service.policy.uploads_downloadable,
            "workspaces": workspaces,
            "total": {
                "files": sum(w["files"] for w in workspaces),
                "bytes": sum(w["bytes"] for w in workspaces),
            },
        }
    )


console_routes: list[BaseRoute] = [
    Route("/console", console_page, methods=["GET"]),
    Route("/console/", console_slash, methods=["GET"]),
    Route("/console/static/{name}", console_asset, methods=["GET"]),
    Route("/console/static/{version}/{name}", console_asset, methods=["GET"]),
    Route("/v1/console/requests", console_requests, methods=["GET"]),
    Route("/v1/console/storage", console_storage, methods=["GET"]),
]
