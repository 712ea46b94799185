"""The hot path's shortcuts say exactly what the long way says: kept file JSON, the journal's
columns, the access log's direct line writer, request ids in forked workers."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import sqlite3

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import BETA_HEADERS, Api, inline_file
from filesapi import logs
from filesapi.controls.journal import Journal, JournalQuery
from filesapi.controls.shared import SharedState
from filesapi.http.dialect import Dialect, dump, file_json, file_json_bytes, files_page_bytes
from filesapi.http.direct import DirectRoutes
from filesapi.ids import IdClock, new_request_id
from filesapi.metadata import open_metadata_store
from filesapi.models import FilePage, FileRecord
from filesapi.records import JOURNAL_FIELDS, LOG_FIELDS, RequestRecord

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_records = st.builds(
    FileRecord,
    id=st.from_regex(r"file_01[1-9A-HJ-NP-Za-km-z]{24}", fullmatch=True),
    workspace_id=st.just("wrkspc_01x"),
    filename=_text,
    mime_type=st.sampled_from(["text/plain", "application/pdf", "image/png"]),
    size_bytes=st.integers(0, 2**40),
    created_at_us=st.integers(0, 2**52),
    downloadable=st.booleans(),
    checksum=st.just("crc32c:00000000"),
    scope_id=st.none() | _text,
    expires_at_us=st.none() | st.integers(0, 2**52),
)


@given(st.lists(_records, max_size=5), st.sampled_from(list(Dialect)), st.booleans(), st.none() | _text)
def test_kept_file_json_equals_the_plain_dump(
    records: list[FileRecord], dialect: Dialect, beta_shape: bool, next_page: str | None
) -> None:
    for record in records:
        assert file_json_bytes(record, dialect) == dump(file_json(record, dialect))
    rest: dict[str, object] = {"next_page": next_page}
    if beta_shape:
        rest = {"first_id": records[0].id if records else None, "has_more": True, **rest}
    plain = dump({"data": [file_json(r, dialect) for r in records], **rest})
    assert files_page_bytes(records, dialect, rest) == plain
    page = FilePage(files=records, has_more=True)
    for _ in range(2):  # joined afresh, then from what was kept for the page
        assert files_page_bytes(records, dialect, rest, page=page) == plain
    assert files_page_bytes(records, dialect, {}) == dump({"data": [file_json(r, dialect) for r in records]})
    assert json.loads(plain)["data"] == [file_json(r, dialect) for r in records]


def _json_values(scalars: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=12,
    )


_exact = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text()  # past 64 bits too


def _stdlib(value: object) -> bytes | None:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: neither way can put it on the wire
        return None


@given(_json_values(_exact))
def test_dump_is_the_standard_library_s_compact_utf8_json(value: object) -> None:
    expected = _stdlib(value)
    if expected is not None:
        assert dump(value) == expected


@given(_json_values(_exact | st.floats(allow_nan=False, allow_infinity=False)))
def test_dump_of_floats_reads_back_the_same(value: object) -> None:
    """Floats are the one difference: orjson writes 1e-7 where the standard library writes 1e-07."""
    if _stdlib(value) is not None:
        assert json.loads(dump(value)) == value


@given(st.binary(max_size=300))
def test_the_lean_json_response_is_what_starlette_s_would_send(body: bytes) -> None:
    from starlette.responses import Response

    from filesapi.http.files import _JsonBytes

    lean, plain = _JsonBytes(body), Response(body, media_type="application/json")
    assert (lean.status_code, lean.raw_headers, lean.body) == (
        plain.status_code,
        plain.raw_headers,
        plain.body,
    )
    assert lean.background is None and lean.headers["content-type"] == "application/json"


def test_the_kept_json_never_serves_a_changed_record() -> None:
    """The key is the whole record: the same id with another name (an id issued again after a
    reset of the clock's epoch) gets its own JSON."""
    first = FileRecord("file_01a", "w", "a.txt", "text/plain", 1, 1, True, "c")
    again = FileRecord("file_01a", "w", "b.txt", "text/plain", 1, 1, True, "c")
    assert json.loads(file_json_bytes(first, Dialect.GA))["filename"] == "a.txt"
    assert json.loads(file_json_bytes(again, Dialect.GA))["filename"] == "b.txt"


def test_one_record_per_distinct_row() -> None:
    """The store hands out the record it made before for an equal row (every column equal), and a
    new one for a row that differs in any column; past its bound it forgets, and still answers."""
    from filesapi.metadata import _rows

    columns = _rows._FILE_COLUMNS
    make = _rows.file_maker(columns)
    row = ("file_01a", "w", "a.txt", "text/plain", 1, 1, 1, "c", None, None, None, 0)
    first = make(row)
    assert make(tuple(row)) is first and first.filename == "a.txt" and first.downloadable is True
    for at in range(len(row)):
        changed = list(row)
        changed[at] = (
            1 if row[at] is None else ((0 if row[at] else 1) if isinstance(row[at], int) else row[at] + "x")
        )
        other = make(tuple(changed))
        assert other is not first and other != first, columns[at]
    for n in range(_rows._KEPT_RECORDS + 10):
        make(("file_01b", "w", f"{n}.txt", "text/plain", 1, 1, 1, "c", None, None, None, 0))
    assert make(row) == first


def _record(**overrides: object) -> RequestRecord:
    fields: dict[str, object] = {
        "request_id": new_request_id(),
        "started_us": 1_700_000_000_000_000,
        "duration_ms": 1.25,
        "method": "POST",
        "path": "/v1/files",
        "route": "/v1/files",
        "operation": "upload",
        "dialect": "ga",
        "status": 200,
        "error_type": None,
        "workspace": "default",
        "workspace_id": "wrkspc_01x",
        "api_key": "sk-a…",
        "sdk": None,
        "user_agent": "test",
        "fault": None,
        "worker": os.getpid(),
        "bytes_in": 10,
        "bytes_out": 20,
        "upload": None,
        "files": None,
        "upstream_request_id": None,
    }
    fields.update(overrides)
    return RequestRecord(**fields)


def test_observe_many_counts_what_observe_does() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    from filesapi.http.observe import observe_many

    buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
    amounts = [0.0, 0.001, 0.0010001, 0.0024, 0.0025, 0.003, 0.003, 0.3, 1.0, 299.99, 300.0, 300.5, 1e9]
    got = {}
    for way in ("one by one", "many"):
        registry = CollectorRegistry()
        histogram = Histogram("h", "h", ["route"], buckets=buckets, registry=registry).labels("r")
        if way == "many":
            observe_many(histogram, amounts)
        else:
            for amount in amounts:
                histogram.observe(amount)
        samples = [s for m in registry.collect() for s in m.samples if not s.name.endswith("_created")]
        got[way] = {s.name + str(s.labels.get("le")): s.value for s in samples}
    one, many = got["one by one"], got["many"]
    assert one.keys() == many.keys()
    assert {k: v for k, v in one.items() if "sum" not in k} == {
        k: v for k, v in many.items() if "sum" not in k
    }
    assert many["h_sumNone"] == pytest.approx(one["h_sumNone"], rel=1e-12)
    assert one["h_bucket0.001"] == 2 and one["h_bucket+Inf"] == len(amounts)  # the test checks something


def test_log_fields_are_the_log_fields_in_order() -> None:
    values = {name: f"value-{i}" for i, name in enumerate(JOURNAL_FIELDS)}
    record = RequestRecord(**{**values, "started_us": 1_700_000_000_250_000, "status": None})
    fields = record.log_fields()
    assert tuple(fields) == (*LOG_FIELDS, "time")
    assert {name: fields[name] for name in LOG_FIELDS if name != "status"} == {
        name: values[name] for name in LOG_FIELDS if name != "status"
    }
    assert fields["status"] == 0 and fields["time"] == 1_700_000_000.25


def test_journal_columns_give_back_every_field(tmp_path) -> None:
    shared = SharedState(str(tmp_path / "run"))
    try:
        journal = Journal(shared)
        plain = _record()
        nested = _record(
            sdk={"language": "python", "package_version": "2.16.0", "runtime": None, "retry_count": 1},
            fault="flt_1",
            upload={"filename": "é.txt", "sha256": "00"},
            files=[{"id": "file_01a", "block": 0}],
            status=None,
            error_type="api_error",
            upstream_request_id="req_up",
        )
        journal.append(plain)
        journal.append(nested)
        journal.flush()
        entries, more = journal.entries(JournalQuery(limit=10))
        assert not more
        assert entries == [nested.journal_entry(), plain.journal_entry()]  # newest first
        assert all(list(e) == list(JOURNAL_FIELDS) for e in entries)
        shown, last = journal.recent("default", 0, 10, include_console=True)
        assert [seq for seq, _ in shown] == [1, 2] and last == 2
        assert [entry for _, entry in shown] == [plain.journal_entry(), nested.journal_entry()]
    finally:
        shared.close()


def test_a_runtime_dir_of_an_older_schema_starts_afresh(tmp_path) -> None:
    directory = tmp_path / "run"
    SharedState(str(directory)).close()
    db = sqlite3.connect(directory / "state.db")
    db.execute("DROP TABLE journal_batches")  # what schema 3 had instead: a row per entry
    db.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY, request_id TEXT, packed BLOB NOT NULL)")
    db.execute("INSERT INTO journal VALUES (1, 'req_old', x'00')")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    shared = SharedState(str(directory))
    try:
        journal = Journal(shared)
        journal.append(_record())
        journal.flush()
        assert len(journal.entries(JournalQuery())[0]) == 1
        tables = {r[0] for r in shared.read("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "journal" not in tables and "journal_batches" in tables
    finally:
        shared.close()


def test_the_journal_of_two_workers_is_one(tmp_path) -> None:
    """Two processes' journals on one runtime directory (what two workers have): each reads the
    other's batches, the numbers are the server's, a cleared journal starts again (no batch a
    reader decoded before comes back), and trimming keeps at least KEEP entries."""
    from filesapi.controls import journal as journal_module

    directory = str(tmp_path / "run")
    one, two = SharedState(directory), SharedState(directory)
    try:
        a, b = Journal(one, workers=2), Journal(two, workers=2)
        a.append(_record(request_id="req_a1"))
        a.flush()
        b.append(_record(request_id="req_b1", workspace="other"))
        b.append(_record(request_id="req_b2"))
        b.flush()
        a.append(_record(request_id="req_a2", operation="console"))
        a.flush()
        for reader in (a, b, a):  # the second read of ``a`` uses the batches it decoded before
            entries, more = reader.entries(JournalQuery(limit=10))
            assert [e["request_id"] for e in entries] == ["req_a2", "req_b2", "req_b1", "req_a1"]
            assert not more
        shown, last = b.recent(None, 1, 10, include_console=False)
        assert [(seq, e["request_id"]) for seq, e in shown] == [(2, "req_b1"), (3, "req_b2")] and last == 4
        shown, last = a.recent("default", 0, 10, include_console=True)
        assert [(seq, e["request_id"]) for seq, e in shown] == [(1, "req_a1"), (2, "req_b2"), (3, "req_a2")]
        assert last == 3
        assert b.entries(JournalQuery(workspace="other"))[0][0]["request_id"] == "req_b1"
        assert [e["request_id"] for e in a.entries(JournalQuery(before="req_b2"))[0]] == ["req_b1", "req_a1"]
        a.clear()
        assert b.entries(JournalQuery())[0] == []
        b.append(_record(request_id="req_b3"))
        b.flush()
        assert [e["request_id"] for e in a.entries(JournalQuery())[0]] == ["req_b3"]
        assert a.recent(None, 0, 10, include_console=True)[1] == 5  # numbers go on after a clear

        keep, every = 50, 20
        saved = journal_module.KEEP, journal_module._TRIM_EVERY
        journal_module.KEEP, journal_module._TRIM_EVERY = keep, every
        try:
            for n in range(300):
                (a if n % 2 else b).append(_record(request_id=f"req_t{n}"))
                if n % 7 == 0:
                    a.flush()
                    b.flush()
            a.flush()
            b.flush()
        finally:
            journal_module.KEEP, journal_module._TRIM_EVERY = saved
        entries = a.entries(JournalQuery(limit=1000))[0]
        assert keep <= len(entries) < 300  # trimmed, yet never below KEEP
        got = {e["request_id"] for e in entries}
        assert {f"req_t{n}" for n in range(300 - keep, 300)} <= got
    finally:
        one.close()
        two.close()


def test_direct_access_lines_equal_the_formatter_s(monkeypatch) -> None:
    """What ``line_writer`` writes is what the configured formatter makes of the LogRecord."""
    for json_lines in (True, False):
        stream = io.StringIO()
        monkeypatch.setattr("sys.stderr", stream)
        root = logging.getLogger()
        saved = (root.handlers[:], root.level, logs._installed)
        try:
            logs.setup_logging("info", json_lines)
            logger = logging.getLogger("filesapi.access")
            write = logs.line_writer(logger)
            assert write is not None
            record = _record(workspace="w1")
            message = "POST /v1/files 200 1.2ms"
            created = 1_700_000_123.456
            write([(created, message, record.log_fields())])
            logs._installed.flush()  # type: ignore[union-attr]
            direct = stream.getvalue().splitlines()
            log_record = logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None)
            log_record.created, log_record.msecs = created, 456.0
            log_record.request = record
            assert direct == [logs._installed.format(log_record)]  # type: ignore[union-attr]
            if json_lines:
                line = json.loads(direct[0])
                assert line["request_id"] == record.request_id and "api_key" not in line
            # Anything between the logger and the handler: back to logging's own path.
            extra = logging.NullHandler()
            logger.addHandler(extra)
            assert logs.line_writer(logger) is None
            logger.removeHandler(extra)
            logger.setLevel(logging.WARNING)
            assert logs.line_writer(logger) is None
            logger.setLevel(logging.NOTSET)
        finally:
            root.handlers[:], logs._installed = saved[0], saved[2]
            root.setLevel(saved[1])


def test_forked_workers_never_hand_out_the_pool_s_bytes_again() -> None:
    """The cursor nonces' pool was drawn before the fork: each child draws its own."""
    from filesapi.ids import RandomPool

    pool = RandomPool(size=64)
    pool.take(12)  # drawn in the parent, before the fork
    reader, writer = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os.write(writer, pool.take(12) + pool.take(12))
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(writer)
    with os.fdopen(reader, "rb") as got:
        taken = got.read()
    drawn = [taken[i : i + 12] for i in range(0, len(taken), 12)]
    drawn += [pool.take(12) for _ in range(8)]  # the parent's next, past its first pool too
    assert len(drawn) == 12 and len(set(drawn)) == 12


def test_forked_workers_draw_their_own_request_ids() -> None:
    reader, writer = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # a worker: its first ids, then gone
            os.write(writer, ("".join(new_request_id() + "\n" for _ in range(3))).encode())
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(writer)
    with os.fdopen(reader) as lines:
        ids = lines.read().split()
    ids += [new_request_id() for _ in range(3)]
    assert len(ids) == 9 and len(set(ids)) == 9


def _open_shared(directory: str, start: float) -> None:
    import time

    while time.time() < start:  # every process opens the new file in the same instant
        pass
    SharedState(directory).close()


def test_workers_opening_a_new_runtime_dir_together_all_start(tmp_path) -> None:
    """A worker that met "database is locked" switching the new file to WAL died at start (seen
    in the container test with two workers): every one of many must open it."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("fork")
    for attempt in range(20):
        directory = str(tmp_path / f"run{attempt}")
        os.mkdir(directory)
        start = time.time() + 0.2
        workers = [context.Process(target=_open_shared, args=(directory, start)) for _ in range(12)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [w.exitcode for w in workers] == [0] * 12, attempt


async def test_the_direct_lane_answers_as_the_router_would(make_api) -> None:
    """Every request answered twice, through the app as built (the direct lane first) and through
    the Starlette app alone: the same status, body and headers (request ids aside); and the lane
    really took the two reads, and nothing else."""
    api: Api = await make_api(backend="disk")
    context = api.http._transport.app  # type: ignore[attr-defined]
    guard = context.app
    lane: DirectRoutes = guard.app
    starlette = lane.starlette
    reached: list[str] = []

    async def counting(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope.get("path", ""))
        await starlette(scope, receive, send)

    lane.app = counting
    ids = [(await api.upload(f"f{i}".encode(), f"f{i}.txt")).json()["id"] for i in range(3)]
    await api.http.delete(f"/v1/files/{ids[2]}")
    cases = [
        ("GET", "/v1/files", {}),
        ("GET", "/v1/files?limit=2", {}),
        ("GET", "/v1/files?limit=0", {}),
        ("GET", "/v1/files?after_id=x", {}),
        ("GET", "/v1/files", BETA_HEADERS),
        ("GET", f"/v1/files?ids[]={ids[0]}&ids[]={ids[1]}", {}),
        ("GET", f"/v1/files/{ids[0]}", {}),
        ("GET", f"/v1/files/{ids[0]}", BETA_HEADERS),
        ("GET", f"/v1/files/{ids[2]}", {}),  # deleted
        ("GET", "/v1/files/file_nope", {}),
        ("GET", "/v1/files/%2e%2e", {}),
        ("GET", f"/v1/files/{ids[0]}", {"x-api-key": ""}),
        ("GET", f"/v1/files/{ids[0]}", {"anthropic-version": "bad"}),
    ]
    form = {"content-type": "multipart/form-data; boundary=B"}
    uploads: dict[str, bytes] = {  # the request bodies of the POST cases, by their headers' key
        "ok": b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhi\r\n--B--\r\n',
        "no file": b'--B\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--B--\r\n',
        "broken": b"--B\r\nnot a header\r\n",
        "bad expiry": b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhi\r\n'
        b'--B\r\nContent-Disposition: form-data; name="expires_in_seconds"\r\n\r\nsoon\r\n--B--\r\n',
    }
    cases += [("POST", "/v1/files", {**form, "x-case": case}) for case in uploads]
    cases += [("POST", "/v1/files", {}), ("POST", "/v1/files", {"content-type": "text/plain"})]
    passed_on = [
        ("GET", "/v1/files/", {}),
        ("GET", f"/v1/files/{ids[0]}/content", {}),
        ("HEAD", f"/v1/files/{ids[0]}", {}),
        ("DELETE", "/v1/files/file_nope", {}),
        ("POST", f"/v1/files/{ids[0]}", {}),
        ("PUT", "/v1/files", {}),
    ]

    def comparable(answer: httpx.Response) -> tuple[int, object]:
        body = answer.content.replace(answer.headers["request-id"].encode(), b"")
        if answer.status_code == 200 and answer.request.method == "POST":  # a new file each time
            made = json.loads(body)
            assert made["id"].startswith("file_01") and made["created_at"]
            return 200, {k: v for k, v in made.items() if k not in ("id", "created_at")}
        return answer.status_code, body

    statuses: dict[str, int] = {}
    for method, url, headers in cases + passed_on:
        content = uploads.get(headers.get("x-case", ""), b"")
        reached.clear()
        direct = await api.http.request(method, url, headers=headers or None, content=content)
        took_lane = not reached
        assert took_lane == ((method, url, headers) in cases), url
        guard.app = starlette
        try:
            plain = await api.http.request(method, url, headers=headers or None, content=content)
        finally:
            guard.app = lane
        assert comparable(direct) == comparable(plain), (method, url, headers)
        strip = {"request-id", "content-length"}
        assert {k: v for k, v in direct.headers.items() if k not in strip} == {
            k: v for k, v in plain.headers.items() if k not in strip
        }, url
        if "x-case" in headers:
            statuses[headers["x-case"]] = direct.status_code
    assert statuses == {"ok": 200, "no file": 400, "broken": 400, "bad expiry": 400}


def test_a_batch_is_written_when_full_when_due_or_at_once_without_a_loop() -> None:
    import asyncio

    from filesapi.records import Batch

    written: list[list[int]] = []
    batch = Batch(written.append, seconds=0.05, size=3)
    batch.add(1)  # no event loop here: written at once
    assert written == [[1]]

    async def in_a_loop() -> None:
        batch.add(2)
        batch.add(3)
        assert written == [[1]]  # waits for more, or for the timer
        batch.add(4)
        assert written == [[1], [2, 3, 4]]  # full
        batch.add(5)
        await asyncio.sleep(0.2)
        assert written == [[1], [2, 3, 4], [5]]  # due
        batch.add(6)
        batch.clear()
        batch.flush()
        await asyncio.sleep(0.1)
        assert written == [[1], [2, 3, 4], [5]]  # cleared: never written, and no empty write

    asyncio.run(in_a_loop())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_kept_list_page_is_served_only_while_the_workspace_s_files_are_unchanged(
    backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    """Two stores on one database, as two workers or replicas: every change one makes to the
    files a workspace lists is in the other's next page, and nothing else is read again."""
    url = (
        f"sqlite:///{tmp_path}/meta.db"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_server").create_database()
    )
    here, there = await open_metadata_store(url), await open_metadata_store(url)
    try:
        workspace = await here.ensure_workspace("w")
        other = await here.ensure_workspace("other")
        clock = IdClock()

        async def listed() -> list[str]:
            return [f.id for f in (await here.list_files(workspace.id, limit=20)).files]

        first = dataclasses.replace(inline_file(clock, workspace.id), expires_at_us=10)
        assert await there.insert_file(first, None, b"abc")
        assert await listed() == [first.id]
        kept = await here.list_files(workspace.id, limit=20)
        assert await here.list_files(workspace.id, limit=20) is kept  # unchanged: the same page
        assert await there.insert_file(inline_file(clock, other.id), None, b"abc")
        assert await here.list_files(workspace.id, limit=20) is kept  # another workspace's upload

        second = inline_file(clock, workspace.id)
        assert await there.insert_file(second, None, b"abc")
        assert await listed() == [second.id, first.id]
        assert [f.id for f in (await here.list_files(workspace.id, limit=1)).files] == [second.id]
        # Purging an expired file's bytes or leasing rows to a sweeper changes no listed file.
        kept = await here.list_files(workspace.id, limit=20)
        assert [r.id for r in await there.claim_expired(10, 20, 1000)] == [first.id]
        await there.mark_purged(first.id, 21)
        assert await here.list_files(workspace.id, limit=20) is kept

        assert await there.hide_file(workspace.id, first.id, 2) is not None  # (purged already)
        assert await listed() == [second.id]
        assert await there.hide_file(workspace.id, second.id, 3) is not None
        assert await listed() == []
        third = inline_file(clock, workspace.id)
        assert await there.insert_file(third, None, b"abc")
        assert await listed() == [third.id]
        assert await there.hide_all(None, 4) == 2  # a reset of every workspace
        assert await listed() == []
    finally:
        await here.close()
        await there.close()


async def test_kept_list_pages_stay_within_their_bounds(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past their budget the kept pages (records, and their joined JSON) are forgotten, and every
    page is still answered right."""
    from filesapi.http import dialect as dialect_module
    from filesapi.metadata import sql

    monkeypatch.setattr(sql, "_KEPT_PAGE_RECORDS", 3)
    kept_ga = dialect_module._KeptByIdentity[list[FileRecord], bytes](300)
    monkeypatch.setitem(dialect_module._page_json, Dialect.GA, kept_ga)
    store = await open_metadata_store(f"sqlite:///{tmp_path}/meta.db")
    try:
        workspace = await store.ensure_workspace("w")
        clock = IdClock()
        uploaded = [inline_file(clock, workspace.id) for _ in range(3)]
        for record in uploaded:
            assert await store.insert_file(record, None, b"abc")
        newest_first = [r.id for r in reversed(uploaded)]
        for _ in range(2):
            for limit in (1, 2, 3):
                page = await store.list_files(workspace.id, limit=limit)
                assert [f.id for f in page.files] == newest_first[:limit]
                assert sum(len(p.files) for _, p in store._pages.values()) <= 3  # type: ignore[attr-defined]
                body = files_page_bytes(page.files, Dialect.GA, {}, page=page)
                assert json.loads(body)["data"] == [file_json(f, Dialect.GA) for f in page.files]
                assert sum(len(data) for data in kept_ga.values()) <= max(300, len(body))
    finally:
        await store.close()
