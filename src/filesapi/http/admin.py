"""The admin endpoints: test helpers and tools' ways in, for the admin key (anyone under
``--auth open``). Later rooms of the same audience (fault injection, the clock, the request journal)
belong here or beside it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filesapi.errors import InvalidRequest
from filesapi.http.calls import app_state, authorize_admin, json_response, query_bool, query_one
from filesapi.http.dialect import file_json
from filesapi.http.files import receive_upload
from filesapi.models import Principal
from filesapi.service import check_text

__all__ = ["admin_routes"]


async def admin_reset(request: Request) -> Response:
    """Delete every file of the caller's workspace (``?all=true``: of every workspace), for tests."""
    call = await authorize_admin(request)
    everything = query_bool(request, "all")
    deleted = await app_state(request).service.reset(None if everything else call.principal.workspace.id)
    return json_response({"deleted": deleted})


async def admin_create_file(request: Request) -> Response:
    """Create a file as a tool would: with a session scope, downloadable under ``--profile hosted``,
    with any expiry. Query: ``workspace``, ``scope_id``, ``downloadable``, ``expires_in_seconds``."""
    call = await authorize_admin(request)
    state = app_state(request)
    principal = call.principal
    workspace_name = query_one(request, "workspace")
    if workspace_name:
        workspace = await state.service.metadata.find_workspace(check_text("workspace", workspace_name, 200))
        if workspace is None:
            raise InvalidRequest(f"No workspace named {workspace_name[:80]!r}.")
        principal = Principal(workspace=workspace, key_id=None, is_admin=True)
    expires = query_one(request, "expires_in_seconds")
    record = await receive_upload(
        request,
        principal,
        admin_expiry=True,
        downloadable=query_bool(request, "downloadable"),
        scope_id=query_one(request, "scope_id"),
        expires_in_seconds=None
        if expires is None
        else state.service.parse_expires_in_seconds(expires, any_positive=True),
    )
    return json_response(file_json(record, call.dialect))


admin_routes = [
    Route("/v1/admin/files", admin_create_file, methods=["POST"]),
    Route("/v1/admin/reset", admin_reset, methods=["POST"]),
]
