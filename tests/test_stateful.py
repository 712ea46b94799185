"""A hypothesis state machine against an in-memory model of the Files API, in both dialects.

Random sequences of uploads (small random contents, odd unicode names sent three ways, both dialects,
GA with and without ``expires_in_seconds``), tool-made files (session scope, not downloadable),
deletes, metadata reads, downloads and list calls: beta ``after_id``/``before_id`` (alone, together,
with ids of deleted files), GA page cursors followed while files come and go between pages, GA
``ids[]``, ``scope_id`` filters, random limits. Every answer is compared with the model exactly: each
page's ids and order (newest first), ``has_more``/``next_page``, ``first_id``/``last_id``, and every
file's fields as its dialect shows them.

Runs on the in-process app (memory backend, and fewer examples on SQLite + disk), a fresh store per
example.
"""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conftest import backend_settings
from figures import record
from filesapi.app import build_app, open_state

GA = {"authorization": "Bearer model-key", "anthropic-version": "2026-10-21"}
BETA = {"x-api-key": "model-key", "anthropic-version": "2023-06-01", "anthropic-beta": "files-api-2025-04-14"}
TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
ID_SHAPE = re.compile(r"file_01[1-9A-HJ-NP-Za-km-z]{22}")
# Declared part types that the server must keep as they are, and the name an unnamed upload gets.
SPECIFIC_TYPES = {
    "text/plain": "unnamed.txt",
    "application/pdf": "unnamed.pdf",
    "image/png": "unnamed.png",
    "application/json": "unnamed.json",
}
ODD_NAMES = [
    "résumé — final.txt",
    "日本語のファイル.pdf",
    "emoji 🎉🧪.png",
    'quote "inside" name.txt',
    "semi;colon,comma.csv",
    "right-to-left \u200fmark.txt",  # a bidi mark (not an override or isolate) is kept
    "zero\u200bwidth\ufeff.txt",
    "combining e\u0301 vs \u00e9.md",
    "  leading and trailing  ",
    ".hidden",
    "dots...",
    "100% done.txt",
    "x" * 255,
    "ǅ ß ﬁ ẞ Ω",
    "line\u2028separator.txt",
]
# Keep what the server keeps: no control characters (C0 and C1 are category Cc), no bidirectional
# controls, no path separators, 1..255 characters, not blank.
_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NAME_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\%" + _BIDI_CONTROLS, max_codepoint=0x10FFFF
)
NAMES = st.one_of(st.sampled_from(ODD_NAMES), st.text(_NAME_CHARS, min_size=1, max_size=60)).filter(
    lambda n: n.strip() not in ("", ".", "..")
)
LIMITS = st.one_of(st.none(), st.integers(1, 7))

# Counted by the machines: examples run, steps taken (rules, initializers), requests sent.
COUNTS: dict[str, dict[str, int]] = {}


@dataclass
class ModelFile:
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: str
    downloadable: bool
    scope: str | None
    expires_at: str | None
    content: bytes

    def as_dialect(self, dialect: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "downloadable": self.downloadable,
            "scope": None if self.scope is None else {"type": "session", "id": self.scope},
        }
        if dialect == "ga":
            body["expires_at"] = self.expires_at
        return body


@dataclass(frozen=True)
class Cursor:
    """A GA ``next_page`` and the id of the last file of the page that made it."""

    token: str
    after: str
    scope: str | None


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _pct(name: str) -> str:
    return "".join(
        c if c.isascii() and (c.isalnum() or c in "-._~") else "".join(f"%{b:02X}" for b in c.encode())
        for c in name
    )


def _multipart(
    data: bytes, name: str | None, content_type: str, how: str, expires: int | None
) -> tuple[bytes, str]:
    """The form as different clients send it: raw UTF-8 in a quoted filename, RFC 5987 filename*
    alone (.NET), or both with an ASCII fallback; ``expires_in_seconds`` before or after the file."""
    boundary = "modelboundary7d1f"
    if name is None:
        disposition = 'form-data; name="file"'
    elif how == "quoted":
        disposition = f'form-data; name="file"; filename="{_quote(name)}"'
    elif how == "ext":
        disposition = f"form-data; name=\"file\"; filename*=UTF-8''{_pct(name)}"
    else:
        disposition = f'form-data; name="file"; filename="fallback.bin"; filename*=utf-8\'\'{_pct(name)}'
    file_part = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    field = b""
    if expires is not None:
        field = f'--{boundary}\r\nContent-Disposition: form-data; name="expires_in_seconds"\r\n\r\n{expires}\r\n'.encode()
    parts = field + file_part if how == "ext" else file_part + field
    return parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _plus(created_at: str, seconds: int) -> str:
    return (datetime.strptime(created_at, TIME) + timedelta(seconds=seconds)).strftime(TIME)


class Harness:
    """One event loop and, per example, a fresh in-process app on the chosen backend."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.examples = 0

    def open(self) -> tuple[AsyncExitStack, httpx.AsyncClient]:
        self.examples += 1
        where = self.tmp_path / f"example-{self.examples}"

        async def start() -> tuple[AsyncExitStack, httpx.AsyncClient]:
            stack = AsyncExitStack()
            state = await stack.enter_async_context(open_state(backend_settings(self.backend, where)))
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=build_app(state)), base_url="http://model.test"
                )
            )
            return stack, http

        return self.loop.run_until_complete(start())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


def make_machine(harness: Harness) -> type[RuleBasedStateMachine]:
    class FilesModel(RuleBasedStateMachine):
        cursors = Bundle("cursors")

        def __init__(self) -> None:
            super().__init__()
            self.stack, self.http = harness.open()
            self.files: dict[str, ModelFile] = {}
            self.deleted: list[str] = []
            self.counts = COUNTS.setdefault(harness.backend, {"runs": 0, "steps": 0, "requests": 0})
            self.counts["runs"] += 1

        def teardown(self) -> None:
            harness.run(self.stack.aclose())

        # -- helpers

        @invariant()
        def count_step(self) -> None:
            self.counts["steps"] += 1

        def call(self, method: str, url: str, dialect: str, **kwargs: Any) -> httpx.Response:
            self.counts["requests"] += 1
            headers = {**(BETA if dialect == "beta" else GA), **kwargs.pop("headers", {})}
            response = harness.run(self.http.request(method, url, headers=headers, **kwargs))
            assert response.headers["request-id"].startswith("req_")
            return response

        def newest_first(self, scope: str | None = None) -> list[ModelFile]:
            chosen = [f for f in self.files.values() if scope is None or f.scope == scope]
            return sorted(chosen, key=lambda f: f.id, reverse=True)

        def known_ids(self) -> list[str]:
            return sorted(self.files) + self.deleted

        def check_file(self, body: dict[str, Any], dialect: str) -> None:
            expected = self.files[body["id"]].as_dialect(dialect)
            assert body == expected, (body, expected)

        def check_page(self, body: dict[str, Any], dialect: str, expected: list[ModelFile]) -> None:
            assert [f["id"] for f in body["data"]] == [f.id for f in expected]
            for item in body["data"]:
                self.check_file(item, dialect)

        def check_error(self, response: httpx.Response, status: int, code: str | None = None) -> None:
            assert response.status_code == status, response.text
            body = response.json()
            assert body["type"] == "error" and body["request_id"] == response.headers["request-id"]
            if code is not None:
                assert body["error"]["details"]["error_code"] == code

        # -- writes

        @initialize(count=st.integers(0, 6), dialect=st.sampled_from(["beta", "ga"]))
        def some_files(self, count: int, dialect: str) -> None:
            for i in range(count):
                self.upload_one(f"seed-{i}".encode(), f"seed {i}.txt", "text/plain", "quoted", dialect, None)

        def upload_one(
            self,
            data: bytes,
            name: str | None,
            content_type: str,
            how: str,
            dialect: str,
            expires: int | None,
        ) -> None:
            body, form_type = _multipart(data, name, content_type, how, expires)
            path = "/v1/files?beta=true" if dialect == "beta" and len(data) % 2 else "/v1/files"
            response = self.call("POST", path, dialect, content=body, headers={"content-type": form_type})
            assert response.status_code == 200, response.text
            got = response.json()
            assert (
                ID_SHAPE.fullmatch(got["id"])
                and got["id"] not in self.files
                and got["id"] not in self.deleted
            )
            assert all(got["id"] > other for other in self.known_ids()), "ids must grow with time"
            datetime.strptime(got["created_at"], TIME)
            if content_type in SPECIFIC_TYPES:
                mime = content_type
            else:
                mime = got["mime_type"]
                assert re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", mime), mime
            if name is None:
                filename = SPECIFIC_TYPES.get(content_type, got["filename"])
                assert filename.startswith("unnamed")
            else:
                filename = name
            model = ModelFile(
                id=got["id"],
                filename=filename,
                mime_type=mime,
                size_bytes=len(data),
                created_at=got["created_at"],
                downloadable=True,
                scope=None,
                expires_at=None if expires is None else _plus(got["created_at"], expires),
                content=data,
            )
            self.files[model.id] = model
            self.check_file(got, dialect)

        @rule(
            data=st.binary(max_size=64),
            name=st.one_of(st.none(), NAMES),
            content_type=st.sampled_from([*SPECIFIC_TYPES, "application/octet-stream"]),
            how=st.sampled_from(["quoted", "ext", "both"]),
            dialect=st.sampled_from(["beta", "ga"]),
            expires=st.one_of(st.none(), st.sampled_from([3600, 7_776_000]), st.integers(3600, 7_776_000)),
        )
        def upload(
            self,
            data: bytes,
            name: str | None,
            content_type: str,
            how: str,
            dialect: str,
            expires: int | None,
        ) -> None:
            # expires_in_seconds is a GA field; beta-era clients never send it.
            self.upload_one(data, name, content_type, how, dialect, expires if dialect == "ga" else None)

        @rule(
            data=st.binary(min_size=1, max_size=32),
            scope=st.sampled_from(["sesn_a", "sesn_b"]),
            downloadable=st.booleans(),
            dialect=st.sampled_from(["beta", "ga"]),
        )
        def tool_file(self, data: bytes, scope: str, downloadable: bool, dialect: str) -> None:
            response = self.call(
                "POST",
                "/v1/admin/files",
                dialect,
                params={"scope_id": scope, "downloadable": str(downloadable).lower()},
                files={"file": ("chart.png", data, "image/png")},
            )
            assert response.status_code == 200, response.text
            got = response.json()
            self.files[got["id"]] = ModelFile(
                got["id"],
                "chart.png",
                "image/png",
                len(data),
                got["created_at"],
                downloadable,
                scope,
                None,
                data,
            )
            self.check_file(got, dialect)

        @precondition(lambda self: self.files)
        @rule(data=st.data(), dialect=st.sampled_from(["beta", "ga"]))
        def delete(self, data: st.DataObject, dialect: str) -> None:
            file_id = data.draw(st.sampled_from(sorted(self.files)))
            response = self.call("DELETE", f"/v1/files/{file_id}", dialect)
            assert response.status_code == 200, response.text
            assert response.json() == {"id": file_id, "type": "file_deleted"}
            del self.files[file_id]
            self.deleted.append(file_id)

        @precondition(lambda self: self.deleted)
        @rule(data=st.data(), dialect=st.sampled_from(["beta", "ga"]))
        def deleted_stays_gone(self, data: st.DataObject, dialect: str) -> None:
            file_id = data.draw(st.sampled_from(self.deleted))
            for method, path in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
                self.check_error(self.call(method, f"/v1/files/{file_id}{path}", dialect), 404)

        # -- reads

        @precondition(lambda self: self.files)
        @rule(data=st.data(), dialect=st.sampled_from(["beta", "ga"]))
        def metadata(self, data: st.DataObject, dialect: str) -> None:
            file_id = data.draw(st.sampled_from(sorted(self.files)))
            response = self.call("GET", f"/v1/files/{file_id}", dialect)
            assert response.status_code == 200, response.text
            self.check_file(response.json(), dialect)

        @precondition(lambda self: self.files)
        @rule(data=st.data(), dialect=st.sampled_from(["beta", "ga"]), head=st.booleans())
        def download(self, data: st.DataObject, dialect: str, head: bool) -> None:
            model = self.files[data.draw(st.sampled_from(sorted(self.files)))]
            response = self.call("HEAD" if head else "GET", f"/v1/files/{model.id}/content", dialect)
            if not model.downloadable:
                if head:
                    assert response.status_code == 400
                else:
                    self.check_error(response, 400, "file_not_downloadable")
                return
            assert response.status_code == 200, response.text
            assert response.content == (b"" if head else model.content)
            assert response.headers["content-length"] == str(model.size_bytes)
            assert response.headers["content-type"] == model.mime_type
            disposition = response.headers["content-disposition"]
            assert "\r" not in disposition and "\n" not in disposition
            star = re.search(r"filename\*=UTF-8''([^;\s]*)", disposition)
            assert star is not None and unquote(star.group(1)) == model.filename, disposition

        @rule(
            dialect=st.sampled_from(["beta", "ga"]),
            ids=st.lists(st.sampled_from(["file_011111111111111111111111", "nonsense", "x"]), max_size=2),
        )
        def missing_is_404(self, dialect: str, ids: list[str]) -> None:
            for file_id in ids:
                self.check_error(self.call("GET", f"/v1/files/{file_id}", dialect), 404)

        # -- paging, beta

        @rule(
            target=cursors,
            limit=LIMITS,
            after=st.one_of(st.none(), st.integers(0, 1000)),
            before=st.one_of(st.none(), st.integers(0, 1000)),
            scope=st.one_of(st.none(), st.sampled_from(["sesn_a", "sesn_b"])),
        )
        def beta_list(
            self, limit: int | None, after: int | None, before: int | None, scope: str | None
        ) -> Any:
            known = self.known_ids()
            after_id = known[after % len(known)] if known and after is not None else None
            before_id = known[before % len(known)] if known and before is not None else None
            params: dict[str, Any] = {}
            for name, value in (
                ("limit", limit),
                ("after_id", after_id),
                ("before_id", before_id),
                ("scope_id", scope),
            ):
                if value is not None:
                    params[name] = value
            response = self.call("GET", "/v1/files", "beta", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"data", "first_id", "last_id", "has_more", "next_page"}
            size = 20 if limit is None else limit
            everything = self.newest_first(scope)
            window = [
                f
                for f in everything
                if (after_id is None or f.id < after_id) and (before_id is None or f.id > before_id)
            ]
            # With before_id alone: the files just newer than before_id, still newest first.
            toward_newer = before_id is not None and after_id is None
            expected = window[-size:] if toward_newer else window[:size]
            has_more = len(window) > size
            self.check_page(body, "beta", expected)
            assert body["has_more"] is has_more
            assert body["first_id"] == (expected[0].id if expected else None)
            assert body["last_id"] == (expected[-1].id if expected else None)
            # A cursor is offered only for more files in the older direction.
            assert (body["next_page"] is not None) == (not toward_newer and has_more)
            if body["next_page"] is not None:
                # The beta answer's cursor is followed like a GA one (the newest SDK's beta client does).
                return Cursor(body["next_page"], expected[-1].id, scope)
            return multiple()

        # -- paging, GA

        @rule(target=cursors, limit=LIMITS, scope=st.one_of(st.none(), st.sampled_from(["sesn_a", "sesn_b"])))
        def ga_first_page(self, limit: int | None, scope: str | None) -> Any:
            return self.ga_page(None, limit, scope)

        @rule(target=cursors, cursor=consumes(cursors), limit=LIMITS)
        def ga_next_page(self, cursor: Cursor, limit: int | None) -> Any:
            # Files may have been added and deleted since the cursor was made: the next page is still
            # exactly the files older than the last one shown.
            return self.ga_page(cursor, limit, cursor.scope)

        def ga_page(self, cursor: Cursor | None, limit: int | None, scope: str | None) -> Any:
            params: dict[str, Any] = {}
            if limit is not None:
                params["limit"] = limit
            if scope is not None:
                params["scope_id"] = scope
            if cursor is not None:
                params["page"] = cursor.token
            response = self.call("GET", "/v1/files", "ga", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"data", "next_page"}
            size = 20 if limit is None else limit
            window = [f for f in self.newest_first(scope) if cursor is None or f.id < cursor.after]
            expected = window[:size]
            self.check_page(body, "ga", expected)
            more = len(window) > size
            assert (body["next_page"] is not None) == more, (body["next_page"], len(window), size)
            if more:
                token = body["next_page"]
                assert token.startswith("page_") and expected[-1].id not in token
                return Cursor(token, expected[-1].id, scope)
            return multiple()

        @rule(picks=st.lists(st.integers(0, 1000), max_size=8), bogus=st.booleans())
        def ga_ids(self, picks: list[int], bogus: bool) -> None:
            known = self.known_ids()
            wanted = [known[p % len(known)] for p in picks] if known else []
            if bogus:
                wanted.append("file_011111111111111111111111")
            response = self.call("GET", "/v1/files", "ga", params={"ids[]": wanted})
            if not wanted:  # no ids at all is an ordinary first page
                assert response.status_code == 200
                return
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"data", "next_page"} and body["next_page"] is None
            expected = sorted(
                {self.files[i].id: self.files[i] for i in wanted if i in self.files}.values(),
                key=lambda f: f.id,
                reverse=True,
            )
            self.check_page(body, "ga", expected)

        @rule(dialect=st.sampled_from(["beta", "ga"]))
        def whole_listing(self, dialect: str) -> None:
            response = self.call("GET", "/v1/files", dialect, params={"limit": 1000})
            assert response.status_code == 200
            self.check_page(response.json(), dialect, self.newest_first())

    return FilesModel


def _run(backend: str, tmp_path: Path, examples: int, steps: int) -> None:
    harness = Harness(backend, tmp_path)
    try:
        run_state_machine_as_test(
            make_machine(harness),
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        harness.close()


@pytest.mark.parametrize(("backend", "examples"), [("memory", 100), ("disk", 25)])
def test_model_matches_server(backend: str, examples: int, tmp_path: Path) -> None:
    COUNTS.pop(backend, None)
    started = time.monotonic()
    _run(backend, tmp_path, examples, steps=30)
    counts = COUNTS[backend]
    assert counts["runs"] >= examples and counts["steps"] > examples * 10, counts
    title = (
        "hypothesis stateful model (memory)"
        if backend == "memory"
        else "hypothesis stateful model (SQLite + disk)"
    )
    record(
        "fuzz",
        title,
        runs=counts["runs"],
        steps=counts["steps"],
        requests=counts["requests"],
        max_steps_per_run=30,
        mismatches=0,
        seconds=round(time.monotonic() - started, 1),
    )
