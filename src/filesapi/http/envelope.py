"""The Anthropic error envelope, the one table that maps domain errors onto it, and the app's
exception handlers that answer every raised error with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from filesapi.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    CorruptBlob,
    FileExpired,
    FileNotDownloadable,
    FilesApiError,
    FileTooLarge,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RequestTimeout,
)

__all__ = ["ERROR_TABLE", "error_body", "error_response", "exception_handlers", "request_id", "response_for"]

# class -> (status, error.type, details.error_code or None, extra headers)
ERROR_TABLE: dict[type[FilesApiError], tuple[int, str, str | None, dict[str, str]]] = {
    InvalidRequest: (400, "invalid_request_error", None, {}),
    FileNotDownloadable: (400, "invalid_request_error", "file_not_downloadable", {}),
    QuotaExceeded: (400, "invalid_request_error", "storage_quota_exceeded", {}),
    AuthenticationFailed: (401, "authentication_error", None, {}),
    PermissionDenied: (403, "permission_error", None, {}),
    NotFound: (404, "not_found_error", None, {}),
    FileExpired: (404, "not_found_error", "file_expired", {}),
    FileTooLarge: (413, "request_too_large", None, {}),
    RequestTimeout: (408, "invalid_request_error", None, {"connection": "close"}),
    # SDKs retry 5xx; tell them to, after a pause, for an outage, and not to for corrupt data.
    BackendUnavailable: (503, "api_error", None, {"retry-after": "1", "x-should-retry": "true"}),
    CorruptBlob: (500, "api_error", None, {"x-should-retry": "false"}),
}


def error_body(status_type: str, message: str, request_id: str, error_code: str | None = None) -> bytes:
    error: dict[str, object] = {"type": status_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return json.dumps({"type": "error", "error": error, "request_id": request_id}).encode()


def error_response(
    status: int,
    status_type: str,
    message: str,
    request_id: str,
    *,
    error_code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        error_body(status_type, message, request_id, error_code),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def response_for(exc: FilesApiError, request_id: str) -> Response:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            status, status_type, code, headers = ERROR_TABLE[cls]
            return error_response(
                status, status_type, exc.message, request_id, error_code=code, headers=headers
            )
    return error_response(500, "api_error", exc.message, request_id)


def request_id(request: Request) -> str:
    """The id RequestContext gave this request (every response carries it)."""
    return str(request.scope.get("state", {}).get("request_id", "req_unknown"))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FilesApiError)
    return response_for(exc, request_id(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    rid = request_id(request)
    if exc.status_code == 404:
        return error_response(404, "not_found_error", f"Not found: {request.method} {request.url.path}", rid)
    if exc.status_code == 405:
        return error_response(
            405,
            "invalid_request_error",
            f"Method {request.method} is not allowed on {request.url.path}.",
            rid,
            headers=exc.headers,
        )
    return error_response(exc.status_code, "invalid_request_error", str(exc.detail), rid, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(500, "api_error", "Internal server error.", request_id(request))


exception_handlers: dict[Any, Any] = {
    FilesApiError: _api_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
