"""What every endpoint does first: find the process's state, authorize the caller, read the
dialect, and read query parameters. Shared by the files API, the admin endpoints, the console and
the operations endpoints, so each of them authorizes and parses in exactly one way."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from filesapi.auth import Authenticator, presented_key
from filesapi.errors import InvalidRequest, PermissionDenied
from filesapi.http.dialect import Dialect, dump, is_beta
from filesapi.http.guard import HttpOptions
from filesapi.models import Principal
from filesapi.numbers import parse_int
from filesapi.service import FileService

__all__ = [
    "AppState",
    "Call",
    "api_key",
    "app_state",
    "authorize",
    "authorize_admin",
    "by_method",
    "http_options",
    "is_admin_call",
    "json_response",
    "query_bool",
    "query_int",
    "query_one",
]

_VERSION_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class AppState:
    """What the endpoints need; built once per process by the app's lifespan (or by tests)."""

    service: FileService
    authenticator: Authenticator


@dataclass(frozen=True)
class Call:
    principal: Principal
    dialect: Dialect


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.filesapi
    return state


def http_options(request: Request) -> HttpOptions:
    options: HttpOptions = request.app.state.options
    return options


def api_key(request: Request) -> str | None:
    return presented_key(request.headers.get("x-api-key"), request.headers.get("authorization"))


_AUTH_HEADERS = (b"x-api-key", b"authorization", b"anthropic-workspace-id", b"anthropic-version")


def _auth_headers(request: Request) -> tuple[list[str | None], list[str]]:
    """The first value of each of ``_AUTH_HEADERS`` and every ``anthropic-beta`` value, in one
    pass over the raw headers (as Starlette's ``Headers`` would give them: latin-1)."""
    found: list[str | None] = [None, None, None, None]
    betas: list[str] = []
    for name, value in request.scope["headers"]:
        if name == b"anthropic-beta":
            betas.append(value.decode("latin-1"))
        elif name in _AUTH_HEADERS:
            index = _AUTH_HEADERS.index(name)
            if found[index] is None:
                found[index] = value.decode("latin-1")
    return found, betas


async def authorize(request: Request) -> Call:
    """The caller's workspace (by key) and dialect (by ``anthropic-beta``); 401/403/400 otherwise."""
    (x_api_key, authorization, workspace, version), betas = _auth_headers(request)
    principal = await app_state(request).authenticator.authenticate(
        presented_key(x_api_key, authorization), workspace
    )
    if not version:
        raise InvalidRequest("anthropic-version: header is required")
    if not _VERSION_SHAPE.fullmatch(version.strip()):
        raise InvalidRequest(f"anthropic-version: {version[:40]!r} is not a valid version (e.g. 2023-06-01).")
    dialect = Dialect.BETA if betas and is_beta(betas) else Dialect.GA
    state = request.scope["state"]
    state["workspace"] = principal.workspace.name  # for the access log, metrics and the journal
    state["workspace_id"] = principal.workspace.id
    return Call(principal, dialect)


def is_admin_call(request: Request, call: Call) -> bool:
    """The admin key, or anyone under ``--auth open`` (a local server has no one to keep out)."""
    return call.principal.is_admin or app_state(request).authenticator.mode == "open"


async def authorize_admin(request: Request) -> Call:
    call = await authorize(request)
    if not is_admin_call(request, call):
        raise PermissionDenied(
            "The admin endpoints need the server's admin key (filesapi serve --admin-key)."
        )
    return call


def json_response(body: Any, status: int = 200) -> Response:
    return Response(dump(body), status_code=status, media_type="application/json")


def query_one(request: Request, name: str) -> str | None:
    """The parameter's last value; an empty value counts as not given."""
    if not request.scope["query_string"]:
        return None  # (most calls: no query at all, nothing to parse)
    values = request.query_params.getlist(name)
    return values[-1] if values and values[-1] != "" else None


def query_int(request: Request, name: str) -> int | None:
    raw = query_one(request, name)
    return None if raw is None else parse_int(name, raw)


def query_bool(request: Request, name: str) -> bool | None:
    raw = query_one(request, name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"{name} must be true or false.")


def by_method(
    **endpoints: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint per path, so a 405 lists every method the path has in its Allow header."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return endpoint
