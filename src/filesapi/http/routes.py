"""The Files API endpoints. Thin: read the wire (headers, query, multipart), call the service,
write the dialect's JSON. Errors are raised and turned into envelopes by ``exception_handlers``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from filesapi.auth import Authenticator
from filesapi.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    FilesApiError,
    FileTooLarge,
    InvalidRequest,
    PermissionDenied,
    RequestTimeout,
)
from filesapi.http.dialect import Dialect, dump, file_json, is_beta
from filesapi.http.download import (
    BlobResponse,
    RangeNotSatisfiable,
    content_disposition,
    parse_range,
    supports_pathsend,
)
from filesapi.http.envelope import error_response, response_for
from filesapi.http.guard import HttpOptions
from filesapi.http.multipart import MultipartReader, parse_boundary
from filesapi.http.observe import Observer
from filesapi.http.openapi import docs_page, openapi_document
from filesapi.models import FileRecord, Principal
from filesapi.service import FileService, StagedUpload, check_text

__all__ = ["AppState", "exception_handlers", "routes"]

_VERSION_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FORM_OVERHEAD = 1 << 20  # multipart framing and small fields allowed on top of the file size
_FIELD_LIMIT = 1024
_TS_ARRAY_HINT = (
    "The file was sent as form fields file[0], file[1], ...: this TypeScript SDK version serialized the "
    "bytes as an array. Pass the data through toFile() (or upgrade @anthropic-ai/sdk) so it is sent as "
    "one part named 'file'."
)


@dataclass
class AppState:
    """What the endpoints need; built once per process by the app's lifespan (or by tests)."""

    service: FileService
    authenticator: Authenticator


@dataclass(frozen=True)
class Call:
    principal: Principal
    dialect: Dialect


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.filesapi
    return state


def _options(request: Request) -> HttpOptions:
    options: HttpOptions = request.app.state.options
    return options


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "req_unknown"))


def _api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


async def _authorize(request: Request) -> Call:
    principal = await _state(request).authenticator.authenticate(
        _api_key(request), request.headers.get("anthropic-workspace-id")
    )
    version = request.headers.get("anthropic-version")
    if not version:
        raise InvalidRequest("anthropic-version: header is required")
    if not _VERSION_SHAPE.fullmatch(version.strip()):
        raise InvalidRequest(f"anthropic-version: {version[:40]!r} is not a valid version (e.g. 2023-06-01).")
    dialect = Dialect.BETA if is_beta(request.headers.getlist("anthropic-beta")) else Dialect.GA
    request.scope["state"]["workspace"] = principal.workspace.name  # for the access log and metrics
    return Call(principal, dialect)


def _json(body: Any, status: int = 200) -> Response:
    return Response(dump(body), status_code=status, media_type="application/json")


def _query_one(request: Request, name: str) -> str | None:
    """The parameter's last value; an empty value counts as not given."""
    values = request.query_params.getlist(name)
    return values[-1] if values and values[-1] != "" else None


def _query_int(request: Request, name: str) -> int | None:
    raw = _query_one(request, name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, got {raw[:40]!r}.") from None


# -- upload


async def _limited_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body, refused past ``limit`` bytes or when the client goes quiet for ``body_timeout``."""
    idle = _options(request).body_timeout
    stream = aiter(request.stream())
    total = 0
    try:
        while True:
            try:
                async with asyncio.timeout(idle):  # a timer, not a task per chunk (as wait_for makes)
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body stalled: nothing arrived for {idle:g} seconds (after {total} bytes)."
                ) from None
            total += len(chunk)
            request.scope["state"]["bytes_in"] = total
            if total > limit:
                raise FileTooLarge(f"Request body is larger than this server's limit of {limit} bytes.")
            yield chunk
    except ClientDisconnect:
        raise InvalidRequest("The client disconnected before the upload was complete.") from None


def _form_reader(request: Request, service: FileService) -> MultipartReader:
    boundary = parse_boundary(request.headers.get("content-type"))
    limit = service.policy.max_file_size + _FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise service.too_large()
    return MultipartReader(_limited_body(request, limit), boundary)


async def _receive_upload(
    request: Request,
    principal: Principal,
    *,
    admin_expiry: bool = False,
    downloadable: bool | None = None,
    scope_id: str | None = None,
    expires_in_seconds: int | None = None,
) -> FileRecord:
    service = _state(request).service
    reader = _form_reader(request, service)
    staged: StagedUpload | None = None
    try:
        async for part in reader:
            if part.name == "file":
                if staged is not None:
                    raise InvalidRequest(
                        "The form has more than one part named 'file'; send one file per upload."
                    )
                staged = await service.stage(
                    principal,
                    filename=part.filename,
                    content_type=part.content_type,
                    chunks=part.chunks(),
                    downloadable=downloadable,
                    scope_id=scope_id,
                )
            elif part.name == "expires_in_seconds":
                if expires_in_seconds is not None and not admin_expiry:
                    raise InvalidRequest("The form has more than one expires_in_seconds field.")
                text = (await part.read(_FIELD_LIMIT)).decode("utf-8", "replace")
                expires_in_seconds = service.parse_expires_in_seconds(text, any_positive=admin_expiry)
            elif part.name.startswith("file["):
                raise InvalidRequest(_TS_ARRAY_HINT)
            # any other field is ignored (and skipped by the reader)
        if staged is None:
            raise InvalidRequest("The multipart form has no part named 'file'.")
        return await service.commit(staged, expires_in_seconds=expires_in_seconds)
    except BaseException:
        if staged is not None:
            await service.discard(staged)
        raise


async def upload(request: Request) -> Response:
    call = await _authorize(request)
    record = await _receive_upload(request, call.principal)
    return _json(file_json(record, call.dialect))


# -- list


async def list_files(request: Request) -> Response:
    """Beta: after_id/before_id keys and first_id/last_id/has_more, plus ``next_page``/``page``
    (the newest SDK's ``client.beta.files`` pages only by cursor). GA: ``page`` cursors, ``ids[]``.
    ``scope_id`` filters in both (the newest SDK sends it without the beta header)."""
    call = await _authorize(request)
    service = _state(request).service
    limit = _query_int(request, "limit")
    scope_id = _query_one(request, "scope_id")
    page_token = _query_one(request, "page")
    if call.dialect is Dialect.GA:
        for name in ("after_id", "before_id"):
            if _query_one(request, name) is not None:
                raise InvalidRequest(f"{name} is a beta parameter; page with the next_page cursor instead.")
        ids = [i for i in request.query_params.getlist("ids[]") + request.query_params.getlist("ids") if i]
        if ids:
            if page_token is not None or limit is not None:
                raise InvalidRequest("ids cannot be combined with page or limit.")
            files = await service.list_ids(call.principal, ids)
            return _json({"data": [file_json(r, call.dialect) for r in files], "next_page": None})
    page, next_page = await service.list_files(
        call.principal,
        limit=limit,
        page=page_token,
        after_id=_query_one(request, "after_id"),
        before_id=_query_one(request, "before_id"),
        scope_id=scope_id,
    )
    data = [file_json(r, call.dialect) for r in page.files]
    if call.dialect is Dialect.GA:
        return _json({"data": data, "next_page": next_page})
    return _json(
        {
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
            "next_page": next_page,
        }
    )


# -- one file


async def retrieve(request: Request) -> Response:
    call = await _authorize(request)
    record = await _state(request).service.get(call.principal, request.path_params["file_id"])
    return _json(file_json(record, call.dialect))


async def delete(request: Request) -> Response:
    call = await _authorize(request)
    file_id = await _state(request).service.delete(call.principal, request.path_params["file_id"])
    return _json({"id": file_id, "type": "file_deleted"})


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or etag in candidates


def _wants_proxy(request: Request) -> bool:
    # Sec-Fetch-Site marks a browser; Node's fetch (the TypeScript SDK) sends Sec-Fetch-Mode only.
    return "sec-fetch-site" in request.headers or "x-filesapi-proxy" in request.headers


async def download(request: Request) -> Response | BlobResponse:
    call = await _authorize(request)
    service = _state(request).service
    record = await service.downloadable(call.principal, request.path_params["file_id"])
    etag = '"' + record.checksum.rpartition(":")[2] + '"'
    disposition = content_disposition(record.filename)
    headers = [
        ("content-type", record.mime_type),
        ("content-disposition", disposition),
        ("etag", etag),
        ("accept-ranges", "bytes"),
        ("cache-control", "private, max-age=0"),
    ]
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return BlobResponse(304, headers)
    if_range = request.headers.get("if-range")
    wanted = request.headers.get("range") if if_range is None or if_range.strip() == etag else None
    try:
        byte_range = parse_range(wanted, record.size_bytes)
    except RangeNotSatisfiable:
        return error_response(
            416,
            "invalid_request_error",
            f"Range {wanted!r} is outside the file's {record.size_bytes} bytes.",
            request_id(request),
            headers={"content-range": f"bytes */{record.size_bytes}"},
        )
    status, length = 200, record.size_bytes
    if byte_range is not None:
        status, length = 206, byte_range.length
        headers.append(("content-range", f"bytes {byte_range.start}-{byte_range.end}/{record.size_bytes}"))
    headers.append(("content-length", str(length)))
    if request.method == "HEAD":
        return BlobResponse(status, headers)
    # A whole file in a store that offers its own URL: send the client there (the SDKs follow
    # redirects). Browsers and the console (x-filesapi-proxy) are served here: the bucket would
    # need CORS for them.
    if byte_range is None and not _wants_proxy(request):
        location = await service.download_url(record, content_disposition=disposition)
        if location is not None:
            return BlobResponse(
                307, [("location", location), ("cache-control", "no-store"), ("content-length", "0")]
            )
    # Handing the file to the server by path is fastest, but then nothing checks its bytes on the
    # way out; with verify_downloads (the default) whole files stream through their checksum.
    if byte_range is None and not _options(request).verify_downloads and supports_pathsend(request.scope):
        path = service.content_path(record)
        if path is not None:
            return BlobResponse(status, headers, path=path)
    return BlobResponse(status, headers, chunks=await service.content(record, byte_range))


# -- admin


def _admin_bool(request: Request, name: str) -> bool | None:
    raw = _query_one(request, name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"{name} must be true or false.")


def is_admin_call(request: Request, call: Call) -> bool:
    """The admin key, or anyone under ``--auth open`` (a local server has no one to keep out)."""
    return call.principal.is_admin or _state(request).authenticator.mode == "open"


async def _admin(request: Request) -> Call:
    call = await _authorize(request)
    if not is_admin_call(request, call):
        raise PermissionDenied(
            "The admin endpoints need the server's admin key (filesapi serve --admin-key)."
        )
    return call


async def admin_reset(request: Request) -> Response:
    """Delete every file of the caller's workspace (``?all=true``: of every workspace), for tests."""
    call = await _admin(request)
    everything = _admin_bool(request, "all")
    deleted = await _state(request).service.reset(None if everything else call.principal.workspace.id)
    return _json({"deleted": deleted})


async def admin_create_file(request: Request) -> Response:
    """Create a file as a tool would: with a session scope, downloadable under ``--profile hosted``,
    with any expiry. Query: ``workspace``, ``scope_id``, ``downloadable``, ``expires_in_seconds``."""
    call = await _admin(request)
    state = _state(request)
    principal = call.principal
    workspace_name = _query_one(request, "workspace")
    if workspace_name:
        workspace = await state.service.metadata.find_workspace(check_text("workspace", workspace_name, 200))
        if workspace is None:
            raise InvalidRequest(f"No workspace named {workspace_name[:80]!r}.")
        principal = Principal(workspace=workspace, key_id=None, is_admin=True)
    expires = _query_one(request, "expires_in_seconds")
    record = await _receive_upload(
        request,
        principal,
        admin_expiry=True,
        downloadable=_admin_bool(request, "downloadable"),
        scope_id=_query_one(request, "scope_id"),
        expires_in_seconds=None
        if expires is None
        else state.service.parse_expires_in_seconds(expires, any_positive=True),
    )
    return _json(file_json(record, call.dialect))


# -- health


async def healthz(request: Request) -> Response:
    """Alive: the process answers. Says nothing about the backends (that is /readyz)."""
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: the metadata database and the blob store both answer. 503 (with which failed) if not,
    so a load balancer stops sending traffic here until the backends are back."""
    service = _state(request).service
    checks: dict[str, str] = {}
    for name, check in (("metadata", service.metadata.check), ("blobs", service.blobs.check)):
        try:
            await check()
            checks[name] = "ok"
        except BackendUnavailable as exc:
            checks[name] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return _json({"status": "ready" if ready else "unavailable", **checks}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process, with per-workspace storage read from the database.
    Under ``--auth keys`` they name every workspace, so only the admin key may read them."""
    authenticator = _state(request).authenticator
    if authenticator.mode == "keys" and not authenticator.is_admin_key(_api_key(request)):
        raise AuthenticationFailed(
            "With --auth keys, /metrics needs the admin key (Authorization: Bearer <admin key>)."
        )
    observer: Observer = request.app.state.observer
    try:
        stats = await _state(request).service.metadata.workspace_stats()
    except BackendUnavailable:
        stats = []  # request metrics are still worth scraping during an outage
    for entry in stats:
        observer.workspace_files.labels(entry.workspace.name).set(entry.files)
        observer.workspace_bytes.labels(entry.workspace.name).set(entry.bytes)
    return Response(generate_latest(observer.registry), media_type=CONTENT_TYPE_LATEST)


_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


async def openapi_json(request: Request) -> Response:
    return _json(openapi_document())


async def docs(request: Request) -> Response:
    return HTMLResponse(docs_page(openapi_document()), headers={"content-security-policy": _DOCS_CSP})


def _by_method(
    **endpoints: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint per path, so a 405 lists every method the path has in its Allow header."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return endpoint


routes = [
    Route("/v1/files", _by_method(GET=list_files, POST=upload), methods=["GET", "POST"]),
    Route("/v1/files/{file_id}", _by_method(GET=retrieve, DELETE=delete), methods=["GET", "DELETE"]),
    Route("/v1/files/{file_id}/content", download, methods=["GET", "HEAD"]),
    Route("/v1/admin/files", admin_create_file, methods=["POST"]),
    Route("/v1/admin/reset", admin_reset, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]


# -- error handlers


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
