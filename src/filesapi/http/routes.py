"""The URL map: every route the server answers, assembled from the audiences' modules.

- ``files``: the Files API (``/v1/files...``), what the SDKs call;
- ``messages``: the Messages gateway (``/v1/messages``, ``/v1/messages/count_tokens``);
- ``admin``: ``/v1/admin/...``, for the admin key (anyone under ``--auth open``);
- ``operations``: ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``, ``/docs``;
- ``journal``: ``/v1/admin/requests``, the request journal (always);
- ``controls``: ``/v1/admin/faults`` and ``/v1/admin/clock`` (only with ``--test-controls``);
- ``console``: the web console and its two JSON endpoints (optional, added by the app).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from filesapi.http.admin import admin_routes
from filesapi.http.calls import AppState
from filesapi.http.console import console_routes
from filesapi.http.controls import controls_routes
from filesapi.http.envelope import exception_handlers
from filesapi.http.files import files_routes
from filesapi.http.journal import journal_routes
from filesapi.http.messages import messages_routes
from filesapi.http.operations import operations_routes

__all__ = ["AppState", "app_routes", "exception_handlers", "routes"]

routes: list[BaseRoute] = [
    *files_routes,
    *messages_routes,
    *admin_routes,
    *journal_routes,
    *operations_routes,
]


def app_routes(*, console: bool, test_controls: bool = False) -> list[BaseRoute]:
    return [*routes, *(controls_routes if test_controls else []), *(console_routes if console else [])]
