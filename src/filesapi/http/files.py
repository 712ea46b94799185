"""The Files API itself: upload, list, retrieve, delete, download. Thin: read the wire (headers,
query, multipart), call the service, write the dialect's JSON. Errors are raised and turned into
envelopes by the app's exception handlers (``filesapi.http.envelope``)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filesapi.blobs.base import Chunk
from filesapi.errors import InvalidRequest
from filesapi.http.body import BodyReader
from filesapi.http.calls import (
    app_state,
    authorize,
    by_method,
    http_options,
    json_response,
    query_int,
    query_one,
)
from filesapi.http.dialect import Dialect, file_json_bytes, files_page_bytes
from filesapi.http.download import (
    BlobResponse,
    RangeNotSatisfiable,
    content_disposition,
    parse_range,
    supports_pathsend,
)
from filesapi.http.envelope import error_response, request_id
from filesapi.http.multipart import MultipartReader, parse_boundary
from filesapi.models import FileRecord, Principal
from filesapi.numbers import decimal
from filesapi.service import FileService, StagedUpload

__all__ = ["files_routes", "limited_body", "receive_upload"]

_FORM_OVERHEAD = 1 << 20  # multipart framing and small fields allowed on top of the file size
_FIELD_LIMIT = 1024
_TS_ARRAY_HINT = (
    "The file was sent as form fields file[0], file[1], ...: this TypeScript SDK version serialized the "
    "bytes as an array. Pass the data through toFile() (or upgrade @anthropic-ai/sdk) so it is sent as "
    "one part named 'file'."
)


def limited_body(request: Request, limit: int) -> BodyReader:
    """The body, refused past ``limit`` bytes, when the client goes quiet for ``body_timeout``, when
    it falls below ``min_upload_rate`` (averaged since the upload began, after a grace period), or
    when it passes ``upload_deadline``: a client sending a byte now and then holds a slot otherwise."""
    return BodyReader(request.receive, request.scope["state"], http_options(request), limit)


async def _hashed(chunks: AsyncIterable[Chunk], digest: hashlib._Hash) -> AsyncIterator[Chunk]:
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _form_reader(request: Request, service: FileService) -> tuple[MultipartReader, BodyReader]:
    content_type = content_length = None
    for name, value in request.scope["headers"]:  # the first of each, as request.headers would
        if name == b"content-type":
            content_type = value.decode("latin-1") if content_type is None else content_type
        elif name == b"content-length":
            content_length = value.decode("latin-1") if content_length is None else content_length
    boundary = parse_boundary(content_type)
    limit = service.policy.max_file_size + _FORM_OVERHEAD
    declared = decimal(content_length or "")
    if declared is not None and declared > limit:
        raise service.too_large()
    body = limited_body(request, limit)
    return MultipartReader(body, boundary), body


async def receive_upload(
    request: Request,
    principal: Principal,
    *,
    admin_expiry: bool = False,
    downloadable: bool | None = None,
    scope_id: str | None = None,
    expires_in_seconds: int | None = None,
) -> FileRecord:
    service = app_state(request).service
    reader, body = _form_reader(request, service)
    staged: StagedUpload | None = None
    # The journal shows each upload's SHA-256 under --test-controls (a test asserts what was sent);
    # otherwise only the stored CRC32C, so no upload pays for a second hash.
    digest = hashlib.sha256() if getattr(request.app.state, "test_controls", False) else None
    try:
        while (part := await reader.next_part()) is not None:
            if part.name == "file":
                if staged is not None:
                    raise InvalidRequest(
                        "The form has more than one part named 'file'; send one file per upload."
                    )
                # A small form has usually arrived whole: its file goes on as one piece of bytes.
                content = part.buffered()
                chunks: AsyncIterable[Chunk] | bytes
                if content is not None:
                    chunks = content
                    if digest is not None:
                        digest.update(content)
                else:
                    chunks = part.chunks() if digest is None else _hashed(part.chunks(), digest)
                staged = await service.stage(
                    principal,
                    filename=part.filename,
                    content_type=part.content_type,
                    chunks=chunks,
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
        record = await service.commit(staged, expires_in_seconds=expires_in_seconds)
        request.scope["state"]["upload"] = {  # for the request journal
            "filename": record.filename,
            "size": record.size_bytes,
            "sha256": None if digest is None else digest.hexdigest(),
            "crc32c": record.checksum.rpartition(":")[2],
        }
        return record
    except BaseException:
        if staged is not None:
            await service.discard(staged)
        raise
    finally:
        body.close()  # the form may end before the body does


async def upload(request: Request) -> Response:
    call = await authorize(request)
    record = await receive_upload(request, call.principal)
    return _bytes_response(file_json_bytes(record, call.dialect))


# -- list


class _JsonBytes(Response):
    """A 200 with a JSON body already encoded: the headers ``Response`` would make (content-length,
    then content-type), made directly; its ``init_headers`` looks for what it must add first."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]


def _bytes_response(body: bytes) -> Response:
    return _JsonBytes(body)


async def list_files(request: Request) -> Response:
    """Beta: after_id/before_id keys and first_id/last_id/has_more, plus ``next_page``/``page``
    (the newest SDK's ``client.beta.files`` pages only by cursor). GA: ``page`` cursors, ``ids[]``.
    ``scope_id`` filters in both (the newest SDK sends it without the beta header)."""
    call = await authorize(request)
    service = app_state(request).service
    limit = query_int(request, "limit")
    scope_id = query_one(request, "scope_id")
    page_token = query_one(request, "page")
    if call.dialect is Dialect.GA:
        for name in ("after_id", "before_id"):
            if query_one(request, name) is not None:
                raise InvalidRequest(f"{name} is a beta parameter; page with the next_page cursor instead.")
        query = request.query_params if request.scope["query_string"] else None  # (usually none)
        ids = [i for i in query.getlist("ids[]") + query.getlist("ids") if i] if query else []
        if ids:
            if page_token is not None or limit is not None:
                raise InvalidRequest("ids cannot be combined with page or limit.")
            files = await service.list_ids(call.principal, ids)
            return _bytes_response(files_page_bytes(files, call.dialect, {"next_page": None}))
    page, next_page = await service.list_files(
        call.principal,
        limit=limit,
        page=page_token,
        after_id=query_one(request, "after_id"),
        before_id=query_one(request, "before_id"),
        scope_id=scope_id,
    )
    files = page.files
    if call.dialect is Dialect.GA:
        return _bytes_response(files_page_bytes(files, call.dialect, {"next_page": next_page}, page=page))
    rest = {
        "first_id": files[0].id if files else None,
        "last_id": files[-1].id if files else None,
        "has_more": page.has_more,
        "next_page": next_page,
    }
    return _bytes_response(files_page_bytes(files, call.dialect, rest, page=page))


# -- one file


async def retrieve(request: Request) -> Response:
    call = await authorize(request)
    record = await app_state(request).service.get(call.principal, request.path_params["file_id"])
    return _bytes_response(file_json_bytes(record, call.dialect))


async def delete(request: Request) -> Response:
    call = await authorize(request)
    file_id = await app_state(request).service.delete(call.principal, request.path_params["file_id"])
    return json_response({"id": file_id, "type": "file_deleted"})


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or etag in candidates


def _wants_proxy(request: Request) -> bool:
    # Sec-Fetch-Site marks a browser; Node's fetch (the TypeScript SDK) sends Sec-Fetch-Mode only.
    return "sec-fetch-site" in request.headers or "x-filesapi-proxy" in request.headers


async def download(request: Request) -> Response | BlobResponse:
    call = await authorize(request)
    service = app_state(request).service
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
    if byte_range is None and not http_options(request).verify_downloads and supports_pathsend(request.scope):
        path = await service.content_path(record)
        if path is not None:
            return BlobResponse(status, headers, path=path)
    return BlobResponse(status, headers, chunks=await service.content(record, byte_range))


files_routes = [
    Route("/v1/files", by_method(GET=list_files, POST=upload), methods=["GET", "POST"]),
    Route("/v1/files/{file_id}", by_method(GET=retrieve, DELETE=delete), methods=["GET", "DELETE"]),
    Route("/v1/files/{file_id}/content", download, methods=["GET", "HEAD"]),
]
