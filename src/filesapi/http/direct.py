"""The hottest calls, ``GET /v1/files/{file_id}``, ``GET /v1/files`` and the upload (``POST
/v1/files``), called straight from the request, without Starlette's middleware stack and router in
between (about a fifth of a read's cost; the same endpoint functions, the same errors).

Everything else, and any request this lane is unsure of (another method, a ``root_path``), goes
to the Starlette app as before. The scope gets what the router would have put there (``app``,
``router``, ``route``, ``endpoint``, ``path_params``), so the endpoints, the metrics' route label
and the journal cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from filesapi.errors import FilesApiError
from filesapi.http.envelope import exception_handlers
from filesapi.http.files import list_files, retrieve, upload

__all__ = ["DirectRoutes"]

_PREFIX = "/v1/files/"
_Endpoint = Callable[[Request], Awaitable[Response]]


def _route(app: Starlette, path: str) -> Route:
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == path:
            return route
    raise LookupError(f"no route {path} in the app")


class DirectRoutes:
    def __init__(self, app: Starlette) -> None:
        self.app: ASGIApp = app  # where everything else goes
        self.starlette = app
        self._list = _route(app, "/v1/files")
        self._file = _route(app, "/v1/files/{file_id}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        endpoint: _Endpoint
        params: dict[str, str]
        if method == "POST" and path == "/v1/files":
            route, endpoint, params = self._list, upload, {}
        elif method != "GET":
            await self.app(scope, receive, send)
            return
        elif path == "/v1/files":
            route, endpoint, params = self._list, list_files, {}
        elif path.startswith(_PREFIX) and len(path) > len(_PREFIX) and "/" not in path[len(_PREFIX) :]:
            route, endpoint, params = self._file, retrieve, {"file_id": path[len(_PREFIX) :]}
        else:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.starlette
        scope["router"] = self.starlette.router
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except (FilesApiError, HTTPException) as exc:  # what the app's handlers answer
            handler = exception_handlers[FilesApiError if isinstance(exc, FilesApiError) else HTTPException]
            response = await handler(request, exc)
        await response(scope, receive, send)
