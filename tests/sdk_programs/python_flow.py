"""Drive the official ``anthropic`` Python SDK through the whole Files API flow against a filesapi server.

    python python_flow.py --base-url http://127.0.0.1:8000 --api-key KEY [--flow auto|ga|beta]

The base URL and key may also come from ``FILESAPI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` and
``ANTHROPIC_API_KEY``. Runs with whatever ``anthropic`` the interpreter has and picks what to test by
looking at the SDK itself, never at its version string:

- ``ga``: ``client.files`` (upload with ``expires_in_seconds``, ``page``/``next_page`` cursors, ``ids``).
- ``beta``: ``client.beta.files``. Beta-era SDKs (e.g. 1.1.0) page it with ``after_id``/``before_id``
  and send ``anthropic-beta: files-api-2025-04-14``; the newest SDKs page it with ``page`` cursors
  like GA and send no beta header unless asked. Scoped files (``scope_id``) are made through the
  server's admin endpoint ``POST /v1/admin/files`` (plain HTTP, stdlib only).
- ``auto`` (default): every flow the installed SDK has.

Each flow needs an empty workspace (start a fresh server, e.g. ``filesapi serve --memory``) and
leaves it empty again. Exit status: 0 all checks passed, 1 a check failed (the first failure is
printed to stderr), 2 bad usage or a flow this SDK does not have. Only the standard library and
``anthropic`` are imported, so any virtualenv with the SDK can run it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import secrets
import sys
import tempfile
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
from anthropic import Omit

FILES_BETA = "files-api-2025-04-14"
UNKNOWN_ID = "file_011CNha8iCJcU1wXNR6q4V8w"  # well-formed, never issued by a fresh server
PAGED_FILES = 25
PAGE_SIZE = 10
DEFAULT_PAGE_SIZE = 20
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


class CheckFailed(Exception):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def say(message: str) -> None:
    print(message, flush=True)


def params_of(fn: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(fn).parameters)


def ids_of(items: Sequence[Any]) -> list[str]:
    return [item.id for item in items]


def short(ids: Sequence[str]) -> str:
    return "[" + ", ".join(i[-6:] for i in ids) + "]"


# -- the admin endpoint (plain HTTP): files as a tool would make them


def admin_create(
    base_url: str,
    api_key: str,
    data: bytes,
    filename: str,
    *,
    scope_id: str | None = None,
    downloadable: bool | None = None,
    expires_in_seconds: int | None = None,
) -> dict[str, Any]:
    query: dict[str, str] = {}
    if scope_id is not None:
        query["scope_id"] = scope_id
    if downloadable is not None:
        query["downloadable"] = "true" if downloadable else "false"
    if expires_in_seconds is not None:
        query["expires_in_seconds"] = str(expires_in_seconds)
    boundary = secrets.token_hex(16)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        base_url.rstrip("/") + "/v1/admin/files?" + urllib.parse.urlencode(query),
        data=body,
        method="POST",
        headers={
            "x-api-key": api_key,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": FILES_BETA,
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"admin endpoint answered {exc.code}: {exc.read()[:500]!r}") from None


# -- errors


def expect_error(
    cls: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
    call: Callable[[], object],
    what: str,
    *,
    error_code: str | None = None,
) -> anthropic.APIStatusError:
    """``call`` must raise ``cls`` with the right status, envelope, error type and request id."""
    try:
        call()
    except anthropic.APIStatusError as exc:
        check(
            isinstance(exc, cls),
            f"{what}: expected {cls.__name__}, got {type(exc).__name__} ({exc.status_code}): {exc.body}",
        )
        check(exc.status_code == status, f"{what}: expected status {status}, got {exc.status_code}")
        body = exc.body
        check(isinstance(body, dict), f"{what}: error body is not a JSON object: {body!r}")
        assert isinstance(body, dict)
        check(body.get("type") == "error", f"{what}: error body type is {body.get('type')!r}, not 'error'")
        error = body.get("error") or {}
        check(
            error.get("type") == error_type,
            f"{what}: error.type is {error.get('type')!r}, expected {error_type!r} ({body})",
        )
        check(isinstance(error.get("message"), str) and error["message"], f"{what}: no error.message")
        request_id = exc.response.headers.get("request-id", "")
        check(request_id.startswith("req_"), f"{what}: request-id header is {request_id!r}")
        check(body.get("request_id") == request_id, f"{what}: body request_id != request-id header")
        if error_code is not None:
            got = (error.get("details") or {}).get("error_code")
            check(got == error_code, f"{what}: error.details.error_code is {got!r}, expected {error_code!r}")
        return exc
    except anthropic.APIConnectionError as exc:
        raise CheckFailed(f"{what}: expected {cls.__name__}, got a connection error: {exc!r}") from exc
    raise CheckFailed(f"{what}: expected {cls.__name__}, but the call succeeded")


# -- one flow


@dataclass
class Flow:
    name: str
    client: anthropic.Anthropic
    files: Any  # client.files or client.beta.files
    base_url: str
    api_key: str
    workdir: Path

    def __post_init__(self) -> None:
        list_params = params_of(self.files.list)
        self.cursor_style = "after_id" if "after_id" in list_params else "page"
        self.has_ids = "ids" in list_params
        self.has_scope_filter = "scope_id" in list_params
        self.has_expiry = "expires_in_seconds" in params_of(self.files.upload)
        self.is_beta = self.files is self.client.beta.files

    def step(self, message: str) -> None:
        say(f"ok   {self.name}: {message}")

    # helpers

    def list_all(self, **params: Any) -> list[Any]:
        return list(self.files.list(limit=1000, **params))

    def download(self, file_id: str) -> bytes:
        data: bytes = self.files.download(file_id).read()
        return data

    def delete(self, file_id: str) -> None:
        deleted = self.files.delete(file_id)
        check(deleted.id == file_id, f"delete {file_id}: response id is {deleted.id!r}")
        check(deleted.type == "file_deleted", f"delete {file_id}: response type is {deleted.type!r}")

    def expect_not_found(self, file_id: str, what: str) -> None:
        expect_error(
            anthropic.NotFoundError,
            404,
            "not_found_error",
            lambda: self.files.retrieve_metadata(file_id),
            f"{what}: retrieve_metadata",
        )
        expect_error(
            anthropic.NotFoundError,
            404,
            "not_found_error",
            lambda: self.download(file_id),
            f"{what}: download",
        )
        expect_error(
            anthropic.NotFoundError,
            404,
            "not_found_error",
            lambda: self.files.delete(file_id),
            f"{what}: delete",
        )

    # the flow

    def run(self) -> None:
        say(
            f"---- {self.name} flow: {type(self.files).__module__}.{type(self.files).__name__}, "
            f"cursors={self.cursor_style} ids={self.has_ids} scope_id={self.has_scope_filter} "
            f"expires_in_seconds={self.has_expiry}"
        )
        leftovers = self.list_all()
        check(
            not leftovers,
            f"the workspace already holds {len(leftovers)} files; this program needs an empty one "
            "(start a fresh server, e.g. `filesapi serve --memory`)",
        )
        self.step("workspace starts empty")
        self.uploads()
        if self.has_expiry:
            self.expiry()
        self.paging()
        self.errors()
        if self.is_beta and self.has_scope_filter:
            self.scopes()
        for item in self.list_all():
            self.delete(item.id)
        check(not self.list_all(), "files remain after deleting every file")
        self.step("cleaned up: workspace is empty again")

    def check_metadata(self, meta: Any, what: str, *, filename: str, mime_type: str, data: bytes) -> None:
        check(meta.type == "file", f"{what}: type is {meta.type!r}")
        check(
            isinstance(meta.id, str) and meta.id.startswith("file_") and len(meta.id) == 29,
            f"{what}: id {meta.id!r} is not file_ + 24 characters",
        )
        check(meta.filename == filename, f"{what}: filename is {meta.filename!r}, expected {filename!r}")
        check(meta.mime_type == mime_type, f"{what}: mime_type is {meta.mime_type!r}, expected {mime_type!r}")
        check(meta.size_bytes == len(data), f"{what}: size_bytes is {meta.size_bytes}, expected {len(data)}")
        check(meta.downloadable is True, f"{what}: downloadable is {meta.downloadable!r}, expected True")
        created = meta.created_at
        check(
            isinstance(created, datetime) and created.utcoffset() == timedelta(0),
            f"{what}: created_at {created!r} is not a UTC datetime",
        )
        now = datetime.now(UTC)
        check(
            abs(now - created) < timedelta(minutes=2),
            f"{what}: created_at {created} is not about now ({now})",
        )
        if self.has_expiry:
            check(
                getattr(meta, "expires_at", None) is None,
                f"{what}: expires_at is {meta.expires_at!r}, not None",
            )
        if self.is_beta:
            check(getattr(meta, "scope", None) is None, f"{what}: an upload has scope {meta.scope!r}")

    def uploads(self) -> None:
        md_text = b"# Notes\n\nUploaded from a pathlib.Path.\n"
        md_path = self.workdir / "notes.md"
        md_path.write_bytes(md_text)
        bin_data = b"\x00\x01BIN" + secrets.token_bytes(1_500_000)
        bin_path = self.workdir / "blob.bin"
        bin_path.write_bytes(bin_data)
        json_data = b'{"answer": 42, "text": "caf\xc3\xa9"}'
        # Newest SDKs send raw bytes with no filename (stored as unnamed + extension); beta-era ones let
        # httpx name the part "upload", which the server keeps.
        from anthropic import _files as sdk_files

        raw_name = "unnamed.pdf" if hasattr(sdk_files, "unnamed_file") else "upload"

        made: list[tuple[str, Any, bytes]] = []
        meta = self.files.upload(file=PDF)
        self.check_metadata(
            meta, "upload raw bytes", filename=raw_name, mime_type="application/pdf", data=PDF
        )
        made.append(("raw bytes", meta, PDF))
        meta = self.files.upload(file=md_path)
        self.check_metadata(
            meta, "upload pathlib.Path", filename="notes.md", mime_type="text/markdown", data=md_text
        )
        made.append(("pathlib.Path", meta, md_text))
        with bin_path.open("rb") as handle:
            meta = self.files.upload(file=handle)
        self.check_metadata(
            meta, "upload open file", filename="blob.bin", mime_type="application/octet-stream", data=bin_data
        )
        made.append(("open file", meta, bin_data))
        meta = self.files.upload(file=("data.json", json_data, "application/json"))
        self.check_metadata(
            meta,
            "upload (name, bytes, mime) tuple",
            filename="data.json",
            mime_type="application/json",
            data=json_data,
        )
        made.append(("tuple", meta, json_data))
        self.step(
            "uploads: "
            + ", ".join(f"{kind} -> {m.filename} ({m.mime_type}, {m.size_bytes} B)" for kind, m, _ in made)
        )
        check(len({m.id for _, m, _ in made}) == len(made), "two uploads got the same id")

        for kind, meta, data in made:
            again = self.files.retrieve_metadata(meta.id)
            check(
                again.model_dump() == meta.model_dump(),
                f"retrieve_metadata of the {kind} upload differs from the upload response:\n"
                f"  upload:   {meta.model_dump()}\n  retrieve: {again.model_dump()}",
            )
            response = self.files.download(meta.id)
            content = response.read()
            check(
                content == data,
                f"download of the {kind} upload: {len(content)} bytes differ from the {len(data)} sent",
            )
            content_type = response.headers.get("content-type", "")
            check(
                content_type.split(";")[0] == meta.mime_type,
                f"download of the {kind} upload: content-type {content_type!r}, metadata says {meta.mime_type!r}",
            )
        self.step("retrieve_metadata matches every upload; every download is byte-identical")

        with self.files.with_streaming_response.download(made[2][1].id) as streamed:
            check(streamed.status_code == 200, f"streamed download: status {streamed.status_code}")
            streamed_bytes = b"".join(streamed.iter_bytes())
        check(streamed_bytes == bin_data, "streamed download of the 1.5 MB file is not byte-identical")
        raw = self.files.with_raw_response.retrieve_metadata(made[0][1].id)
        check(raw.headers.get("request-id", "").startswith("req_"), "no req_ request-id header on a success")
        self.step("streamed download byte-identical; request-id header on success")

        listed = self.list_all()
        want = [m.id for _, m, _ in reversed(made)]
        check(
            ids_of(listed) == want,
            f"list after 4 uploads: {short(ids_of(listed))}, expected newest first {short(want)}",
        )
        for item, (_, meta, _) in zip(listed, reversed(made), strict=True):
            check(
                item.model_dump() == meta.model_dump(),
                f"listed metadata of {meta.id} differs from the upload response: {item.model_dump()}",
            )

        if self.has_ids:
            page = self.files.list(ids=[made[0][1].id, UNKNOWN_ID, made[2][1].id, made[0][1].id])
            got = ids_of(page.data)
            check(
                sorted(got) == sorted([made[0][1].id, made[2][1].id]),
                f"list(ids=[a, unknown, c, a]) returned {short(got)}: expected exactly a and c",
            )
            check(not page.next_page and not page.has_next_page(), "list(ids=...) is not a single page")
            self.step("list(ids=[...]) returns the known files once each, silently leaves out the unknown id")

        deleted_id = made[1][1].id
        self.delete(deleted_id)
        self.expect_not_found(deleted_id, "deleted file")
        check(deleted_id not in ids_of(self.list_all()), "a deleted file is still listed")
        if self.has_ids:
            page = self.files.list(ids=[deleted_id, made[3][1].id])
            check(
                ids_of(page.data) == [made[3][1].id],
                f"list(ids=[deleted, d]) returned {short(ids_of(page.data))}",
            )
        for _, meta, _ in made:
            if meta.id != deleted_id:
                self.delete(meta.id)
        check(not self.list_all(), "files remain after deleting every upload")
        self.step(
            "delete -> DeletedFile; then retrieve/download/delete raise NotFoundError; no longer listed"
        )

    def expiry(self) -> None:
        for seconds in (3600, 7_776_000):
            meta = self.files.upload(
                file=("expiring.txt", b"expires", "text/plain"), expires_in_seconds=seconds
            )
            expires_at = getattr(meta, "expires_at", None)
            check(expires_at is not None, f"upload with expires_in_seconds={seconds}: expires_at is missing")
            check(
                expires_at - meta.created_at == timedelta(seconds=seconds),
                f"expires_at {expires_at} - created_at {meta.created_at} != {seconds} s",
            )
            again = self.files.retrieve_metadata(meta.id)
            check(again.expires_at == expires_at, f"retrieve_metadata says expires_at {again.expires_at}")
            check(self.download(meta.id) == b"expires", "an unexpired expiring file does not download")
            self.delete(meta.id)
        for seconds in (3599, 7_776_001):
            expect_error(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                lambda s=seconds: self.files.upload(file=("x.txt", b"x", "text/plain"), expires_in_seconds=s),
                f"upload with expires_in_seconds={seconds}",
            )
        check(not self.list_all(), "a rejected expiring upload left a file behind")
        self.step(
            "expires_in_seconds -> expires_at = created_at + N (3600, 7776000); 3599 and 7776001 -> 400"
        )

    # paging

    def upload_many(self, count: int) -> list[str]:
        """Upload ``count`` files; return their ids newest first."""
        made = [
            self.files.upload(file=(f"page-{i:02d}.txt", f"file {i}\n".encode(), "text/plain")).id
            for i in range(count)
        ]
        return list(reversed(made))

    def paging(self) -> None:
        expected = self.upload_many(PAGED_FILES)
        check(len(set(expected)) == PAGED_FILES, "uploads returned duplicate ids")

        pager = self.files.list(limit=PAGE_SIZE)
        seen = ids_of(list(pager))
        check(
            seen == expected,
            f"auto-pagination over {PAGED_FILES} files with limit={PAGE_SIZE} yielded {len(seen)} ids "
            f"({len(set(seen))} distinct) {short(seen)}; expected every file once, newest first {short(expected)}",
        )
        sizes = [len(page.data) for page in self.files.list(limit=PAGE_SIZE).iter_pages()]
        check(sizes == [10, 10, 5], f"auto-pagination page sizes {sizes}, expected [10, 10, 5]")
        listed = list(self.files.list(limit=PAGE_SIZE))
        times = [f.created_at for f in listed]
        check(times == sorted(times, reverse=True), "created_at is not newest first along the list")
        self.step(
            f"auto-pagination: {PAGED_FILES} files, limit={PAGE_SIZE}: pages {sizes}, each once, newest first"
        )

        first = self.files.list()
        check(
            len(first.data) == DEFAULT_PAGE_SIZE and ids_of(first.data) == expected[:DEFAULT_PAGE_SIZE],
            f"list() without limit returned {len(first.data)} files, expected the newest {DEFAULT_PAGE_SIZE}",
        )
        everything = self.files.list(limit=1000)
        check(ids_of(everything.data) == expected, "list(limit=1000) is not all files newest first")
        check(not everything.has_next_page(), "list(limit=1000) over 25 files claims another page")
        self.step("default page size 20; limit=1000 returns everything in one page")

        if self.cursor_style == "after_id":
            self.manual_paging_beta(expected)
        else:
            self.manual_paging_ga(expected)

    def manual_paging_ga(self, expected: list[str]) -> None:
        pages = []
        page = self.files.list(limit=PAGE_SIZE)
        while True:
            pages.append(ids_of(page.data))
            if not page.next_page:
                break
            check(
                page.next_page.startswith("page_"), f"next_page {page.next_page!r} does not start with page_"
            )
            check(len(pages) < 10, "next_page never ends")
            page = self.files.list(limit=PAGE_SIZE, page=page.next_page)
        want = [expected[0:10], expected[10:20], expected[20:25]]
        check(
            pages == want,
            f"manual next_page paging gave {[short(p) for p in pages]}, expected {[short(p) for p in want]}",
        )
        self.step("manual paging with page=next_page: [10, 10, 5], next_page null on the last page")

        # Keyset cursors: files added and deleted between pages must not shift the pages.
        page1 = self.files.list(limit=PAGE_SIZE)
        newcomer = self.files.upload(file=("newcomer.txt", b"new", "text/plain")).id
        self.delete(expected[14])
        page2 = self.files.list(limit=PAGE_SIZE, page=page1.next_page)
        want2 = expected[10:14] + expected[15:21]
        check(
            ids_of(page2.data) == want2,
            f"page 2 after an add and a delete: {short(ids_of(page2.data))}, expected {short(want2)}",
        )
        page3 = self.files.list(limit=PAGE_SIZE, page=page2.next_page)
        check(
            ids_of(page3.data) == expected[21:],
            f"page 3 after an add and a delete: {short(ids_of(page3.data))}",
        )
        check(page3.next_page is None, "last page has a next_page")
        self.delete(newcomer)
        self.step("next_page cursors are keysets: a new file and a deleted one between pages shift nothing")

    def manual_paging_beta(self, expected: list[str]) -> None:
        def page(**params: Any) -> Any:
            result = self.files.list(limit=PAGE_SIZE, **params)
            check(isinstance(result.has_more, bool), f"has_more is {result.has_more!r}, not a boolean")
            data = ids_of(result.data)
            check(result.first_id == (data[0] if data else None), f"first_id {result.first_id} != first item")
            check(result.last_id == (data[-1] if data else None), f"last_id {result.last_id} != last item")
            return result

        p1 = page()
        check(
            ids_of(p1.data) == expected[0:10] and p1.has_more is True,
            f"page 1: {short(ids_of(p1.data))} has_more={p1.has_more}",
        )
        p2 = page(after_id=p1.last_id)
        check(
            ids_of(p2.data) == expected[10:20] and p2.has_more is True,
            f"after_id page 2: {short(ids_of(p2.data))} has_more={p2.has_more}",
        )
        p3 = page(after_id=p2.last_id)
        check(
            ids_of(p3.data) == expected[20:25] and p3.has_more is False,
            f"after_id page 3: {short(ids_of(p3.data))} has_more={p3.has_more}",
        )
        self.step("manual after_id=last_id paging: [10, 10, 5], has_more true, true, false")

        b2 = page(before_id=p3.first_id)
        check(
            ids_of(b2.data) == expected[10:20] and b2.has_more is True,
            f"before_id=page 3's first_id: {short(ids_of(b2.data))} has_more={b2.has_more}, expected page 2 and has_more=true",
        )
        b1 = page(before_id=b2.first_id)
        check(
            ids_of(b1.data) == expected[0:10] and b1.has_more is False,
            f"before_id=page 2's first_id: {short(ids_of(b1.data))} has_more={b1.has_more}, expected page 1 and has_more=false",
        )
        b0 = page(before_id=expected[0])
        check(
            b0.data == [] and b0.first_id is None and b0.last_id is None and b0.has_more is False,
            f"before_id=newest: {b0}",
        )
        a0 = page(after_id=expected[-1])
        check(a0.data == [] and a0.first_id is None and a0.has_more is False, f"after_id=oldest: {a0}")
        self.step(
            "going back with before_id=first_id returns the previous pages; edges are empty pages with null ids"
        )

        # The SDK pages onward with before_id=first_id when the caller started with before_id.
        backwards = ids_of(list(self.files.list(limit=4, before_id=expected[-1])))
        want = [i for end in range(PAGED_FILES - 1, 0, -4) for i in expected[max(0, end - 4) : end]]
        check(
            backwards == want,
            f"auto-pagination from before_id=oldest, limit=4: {short(backwards)}, expected {short(want)}",
        )
        check(
            sorted(backwards) == sorted(expected[:-1]),
            "auto-pagination from before_id missed or repeated files",
        )
        self.step(
            "auto-pagination starting at before_id=oldest walks every newer file once (before_id=first_id)"
        )

        # Keyset cursors: files added and deleted between pages must not shift the pages.
        q1 = page()
        newcomer = self.files.upload(file=("newcomer.txt", b"new", "text/plain")).id
        self.delete(expected[14])
        q2 = page(after_id=q1.last_id)
        want2 = expected[10:14] + expected[15:21]
        check(
            ids_of(q2.data) == want2,
            f"after_id page 2 after an add and a delete: {short(ids_of(q2.data))}, expected {short(want2)}",
        )
        q3 = page(after_id=q2.last_id)
        check(
            ids_of(q3.data) == expected[21:] and q3.has_more is False,
            f"after_id page 3 after an add and a delete: {short(ids_of(q3.data))}",
        )
        back = page(before_id=q3.first_id)
        check(
            ids_of(back.data) == want2,
            f"before_id after an add and a delete: {short(ids_of(back.data))}, expected {short(want2)}",
        )
        self.delete(newcomer)
        self.step("after_id/before_id are keysets: a new file and a deleted one between pages shift nothing")

    # errors

    def errors(self) -> None:
        for file_id in (UNKNOWN_ID, "file_not-a-real-id", "nonsense"):
            self.expect_not_found(file_id, f"unknown id {file_id!r}")
        self.step("unknown ids (well-formed or not) -> NotFoundError on retrieve, download and delete")

        checked = ["limit 0/1001/-1"]
        for limit in (0, 1001, -1):
            expect_error(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                lambda n=limit: self.files.list(limit=n),
                f"list(limit={limit})",
            )
        if self.cursor_style == "page":
            expect_error(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                lambda: self.files.list(page="page_not-a-cursor"),
                "list(page='page_not-a-cursor')",
            )
            checked.append("a bad page cursor")
        if self.has_ids:
            expect_error(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                lambda: self.files.list(ids=[UNKNOWN_ID], limit=5),
                "list(ids=[...], limit=5)",
            )
            checked.append("ids with limit")
        if not self.is_beta:
            expect_error(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                lambda: self.files.list(extra_query={"after_id": UNKNOWN_ID}),
                "GA list with a beta after_id",
            )
            checked.append("a beta after_id on the GA list")
        self.step(", ".join(checked) + " -> BadRequestError")

        before = ids_of(self.list_all())
        no_key = {"X-Api-Key": Omit(), "Authorization": Omit()}
        calls: list[tuple[str, Callable[[], object]]] = [
            ("list", lambda: self.files.list(extra_headers=no_key)),
            ("retrieve_metadata", lambda: self.files.retrieve_metadata(UNKNOWN_ID, extra_headers=no_key)),
            ("upload", lambda: self.files.upload(file=("a.txt", b"a", "text/plain"), extra_headers=no_key)),
        ]
        for what, call in calls:
            expect_error(
                anthropic.AuthenticationError, 401, "authentication_error", call, f"{what} without a key"
            )
        check(ids_of(self.list_all()) == before, "an upload without a key created a file")
        self.step("no API key header -> AuthenticationError (list, retrieve_metadata, upload)")

    # beta scopes

    def scopes(self) -> None:
        before = ids_of(self.list_all())
        scope = "sesn_" + secrets.token_hex(8)
        other = "sesn_" + secrets.token_hex(8)
        plain = self.files.upload(file=("plain.txt", b"plain", "text/plain")).id
        scoped = [
            admin_create(
                self.base_url, self.api_key, f"scoped {i}".encode(), f"scoped-{i}.txt", scope_id=scope
            )["id"]
            for i in range(3)
        ]
        elsewhere = admin_create(self.base_url, self.api_key, b"other", "other.txt", scope_id=other)["id"]
        want = list(reversed(scoped))

        listed = self.list_all(scope_id=scope)
        check(
            ids_of(listed) == want,
            f"list(scope_id=S) returned {short(ids_of(listed))} ({len(listed)} files); expected only the 3 "
            f"scoped files newest first {short(want)} (not {plain[-6:]} unscoped or {elsewhere[-6:]} of another scope)",
        )
        for item in listed:
            check(item.scope is not None, f"listed scoped file {item.id} has scope None")
            check(
                item.scope.id == scope and item.scope.type == "session",
                f"listed file {item.id}: scope {item.scope}",
            )
        paged = ids_of(list(self.files.list(scope_id=scope, limit=2)))
        check(paged == want, f"auto-pagination of list(scope_id=S, limit=2) gave {short(paged)}")
        meta = self.files.retrieve_metadata(scoped[0])
        check(
            meta.scope is not None and meta.scope.id == scope and meta.scope.type == "session",
            f"retrieve_metadata of a scoped file: scope {meta.scope!r}",
        )
        check(self.files.retrieve_metadata(plain).scope is None, "an upload reports a scope")
        everything = ids_of(self.list_all())
        check(
            sorted(everything) == sorted([*before, plain, *scoped, elsewhere]),
            "the unfiltered list is not every file (scoped and unscoped)",
        )
        empty = self.files.list(scope_id="sesn_nobody")
        check(empty.data == [] and not empty.has_next_page(), f"list(scope_id=unknown) is not empty: {empty}")
        if self.cursor_style == "after_id":
            check(
                empty.first_id is None and empty.last_id is None and empty.has_more is False,
                f"empty beta page: first_id={empty.first_id} last_id={empty.last_id} has_more={empty.has_more}",
            )
        self.step(
            "scope_id filter: only the 3 files of the session, scope {id, type: session}; others unscoped"
        )


# -- main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("FILESAPI_BASE_URL") or os.environ.get("ANTHROPIC_BASE_URL")
    )
    parser.add_argument("--api-key", default=os.environ.get("ANTHROPIC_API_KEY") or "filesapi-flow-key")
    parser.add_argument("--flow", choices=["auto", "ga", "beta"], default="auto")
    args = parser.parse_args(argv)
    if not args.base_url:
        parser.error("give --base-url (or FILESAPI_BASE_URL / ANTHROPIC_BASE_URL)")
    return args


def available_flows(client: anthropic.Anthropic) -> list[str]:
    flows = []
    files = getattr(client, "files", None)
    if files is not None and {"page", "limit"} <= params_of(files.list) and hasattr(files, "upload"):
        flows.append("ga")
    beta_files = getattr(getattr(client, "beta", None), "files", None)
    if beta_files is not None and hasattr(beta_files, "upload"):
        flows.append("beta")
    return flows


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    say(
        f"anthropic {anthropic.__version__} ({Path(anthropic.__file__).parent}) on Python {sys.version.split()[0]}"
    )
    client = anthropic.Anthropic(api_key=args.api_key, base_url=args.base_url, max_retries=0, timeout=60)
    flows = available_flows(client)
    say(f"flows this SDK has: {', '.join(flows) or 'none'}")
    wanted = flows if args.flow == "auto" else [args.flow]
    missing = [f for f in wanted if f not in flows]
    if missing or not wanted:
        print(f"FAIL: anthropic {anthropic.__version__} has no {missing or 'files'} flow", file=sys.stderr)
        return 2
    current = "setup"
    try:
        with tempfile.TemporaryDirectory(prefix="filesapi-flow-") as tmp:
            for name in wanted:
                current = name
                resource = client.files if name == "ga" else client.beta.files
                Flow(name, client, resource, args.base_url, args.api_key, Path(tmp)).run()
    except CheckFailed as exc:
        print(f"FAIL [{current} flow, anthropic {anthropic.__version__}]: {exc}", file=sys.stderr)
        return 1
    except anthropic.APIStatusError as exc:
        traceback.print_exc()
        print(
            f"FAIL [{current} flow, anthropic {anthropic.__version__}]: unexpected {type(exc).__name__} "
            f"{exc.status_code} from {exc.request.method} {exc.request.url}: {exc.body}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:
        traceback.print_exc()
        print(
            f"FAIL [{current} flow, anthropic {anthropic.__version__}]: unexpected {exc!r}", file=sys.stderr
        )
        return 1
    say(f"PASS: anthropic {anthropic.__version__}: {', '.join(wanted)} flow(s) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
