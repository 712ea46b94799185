"""Small files stored inline: their bytes committed with their row in the metadata database (one
shared fsync instead of a blob's three), everything else in the blob store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from conftest import Api
from filesapi.config import DEFAULT_INLINE_MAX_SIZE, Settings
from filesapi.errors import FileTooLarge, QuotaExceeded
from filesapi.ids import IdClock
from filesapi.metadata import open_metadata_store
from filesapi.metadata.migrate import upgrade
from filesapi.metadata.schema import inline_contents
from filesapi.service import StagedUpload

_BOUNDARY = "inline-test-boundary"


async def _inline_rows(api: Api) -> dict[str, bytes]:
    rows = await api.state.service.metadata.read(  # type: ignore[attr-defined]
        lambda conn: conn.execute(select(inline_contents)).all()
    )
    return {r.file_id: bytes(r.content) for r in rows}


async def _blob_keys(api: Api) -> set[str]:
    return {key async for key in api.state.service.blobs.iter_keys()}


async def _stored_inline(api: Api, file_id: str) -> bool:
    workspace = api.state.authenticator._open_workspace  # type: ignore[attr-defined]
    record = await api.state.service.metadata.get_file(workspace.id, file_id)
    assert record is not None
    return record.stored_inline


async def test_small_files_go_inline_and_larger_ones_to_the_blob_store(make_api) -> None:
    api: Api = await make_api(backend="disk")  # SQLite + a folder: inline up to 64 KiB by default
    small, large = os.urandom(DEFAULT_INLINE_MAX_SIZE), os.urandom(DEFAULT_INLINE_MAX_SIZE + 1)
    small_id = (await api.upload(small, "small.bin")).json()["id"]
    large_id = (await api.upload(large, "large.bin")).json()["id"]
    assert await _inline_rows(api) == {small_id: small}
    assert await _blob_keys(api) == {large_id}
    assert await _stored_inline(api, small_id) and not await _stored_inline(api, large_id)

    for file_id, data in ((small_id, small), (large_id, large)):
        url = f"/v1/files/{file_id}/content"
        whole = await api.http.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-length"] == str(len(data))
        part = await api.http.get(url, headers={"range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
        tail = await api.http.get(url, headers={"range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == data[-5:]
        head = await api.http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
        again = await api.http.get(url, headers={"if-none-match": whole.headers["etag"]})
        assert again.status_code == 304

    assert (await api.http.delete(f"/v1/files/{small_id}")).status_code == 200
    assert await _inline_rows(api) == {}
    assert (await api.http.get(f"/v1/files/{small_id}/content")).status_code == 404
    assert (await api.http.delete(f"/v1/files/{large_id}")).status_code == 200
    assert await _blob_keys(api) == set()


def _form(data: bytes) -> bytes:
    return (
        (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{_BOUNDARY}--\r\n".encode()
    )


async def _in_pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("backend", ["disk", "postgres"])
async def test_the_limit_is_exact_however_the_body_arrives(make_api, backend: str) -> None:
    """Around the limit, in chunks of every shape: inline exactly up to the limit, and the bytes
    read to decide (which may straddle it) reach the blob store whole. On PostgreSQL inline is off
    by default; turned on, the bytes go into its bytea column."""
    api: Api = await make_api(backend=backend, inline_max_size=1000)
    for size in (1, 999, 1000, 1001, 5000):
        data = os.urandom(size)
        for piece in (7, 333, 1000, 4096):
            response = await api.http.post(
                "/v1/files",
                content=_in_pieces(_form(data), piece),
                headers={"content-type": f"multipart/form-data; boundary={_BOUNDARY}"},
            )
            assert response.status_code == 200, response.text
            file_id = response.json()["id"]
            assert response.json()["size_bytes"] == size
            assert await _stored_inline(api, file_id) == (size <= 1000), (size, piece)
            assert (await api.http.get(f"/v1/files/{file_id}/content")).content == data, (size, piece)


async def test_a_refused_upload_leaves_no_inline_bytes(make_api) -> None:
    api: Api = await make_api(backend="disk", workspace_quota=100)
    bad_expiry = await api.upload(b"small", expires_in_seconds="soon")  # the field after the file
    assert bad_expiry.status_code == 400
    over_quota = await api.upload(b"q" * 101)
    assert over_quota.status_code == 400
    assert over_quota.json()["error"]["message"].startswith("This workspace's storage quota")
    assert await _inline_rows(api) == {}
    assert (await api.http.get("/v1/files")).json()["data"] == []
    fits = (await api.upload(b"q" * 100)).json()["id"]
    assert await _inline_rows(api) == {fits: b"q" * 100}


async def test_inline_off_keeps_every_file_in_the_blob_store(make_api) -> None:
    api: Api = await make_api(backend="disk", inline_max_size=0)
    file_id = (await api.upload(b"tiny")).json()["id"]
    assert await _inline_rows(api) == {} and await _blob_keys(api) == {file_id}


@pytest.mark.parametrize("inline_max_size", [0, 1000])
async def test_bytes_that_arrived_whole_are_staged_as_streamed_ones(make_api, inline_max_size: int) -> None:
    """The service takes a small form's file as one piece of bytes, a larger one as chunks: the
    same size, checksum, type, name and place either way, and the same refusals."""
    api: Api = await make_api(
        backend="disk", inline_max_size=inline_max_size, max_file_size=3000, workspace_quota=2500
    )
    service, principal = api.state.service, await api.state.authenticator.authenticate("test-key", None)

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 64):
            yield data[i : i + 64]

    def shape(staged: StagedUpload) -> tuple[object, ...]:
        return (staged.filename, staged.mime_type, staged.size_bytes, staged.checksum, staged.inline)

    for data, name in [
        (b"", None), (b"%PDF-1.7 tiny", None), (b"plain words " * 5, "a.txt"),
        (os.urandom(999), "r.bin"), (os.urandom(1000), None), (os.urandom(1001), "x"),
        (b"<html><body>" + b"w" * 2000, None),
    ]:  # fmt: skip
        whole = await service.stage(principal, filename=name, content_type=None, chunks=data)
        streamed = await service.stage(principal, filename=name, content_type=None, chunks=chunks(data))
        assert shape(whole) == shape(streamed), (len(data), name)
        assert (whole.inline is not None) == (inline_max_size > 0 and len(data) <= inline_max_size)
        for staged in (whole, streamed):
            if staged.inline is None:
                assert b"".join([c async for c in await service.blobs.open(staged.file_id)]) == data
            await service.discard(staged)
    unlimited: Api = await make_api(backend="disk", inline_max_size=inline_max_size, max_file_size=3000)
    for where, data, error in [(unlimited, b"t" * 3001, FileTooLarge), (api, b"q" * 2501, QuotaExceeded)]:
        for form in (data, chunks(data)):
            with pytest.raises(error):
                who = await where.state.authenticator.authenticate("test-key", None)
                await where.state.service.stage(who, filename=None, content_type=None, chunks=form)
        assert await _blob_keys(where) == set()


def test_inline_is_on_by_default_on_sqlite_only() -> None:
    assert Settings().effective_inline_max_size == DEFAULT_INLINE_MAX_SIZE == 64 * 1024
    assert Settings(memory=True).effective_inline_max_size == DEFAULT_INLINE_MAX_SIZE
    assert Settings(database_url="postgresql://u@db/files").effective_inline_max_size == 0
    chosen = Settings(database_url="postgresql://u@db/files", inline_max_size=4096)
    assert chosen.effective_inline_max_size == 4096
    assert Settings(inline_max_size=0).effective_inline_max_size == 0
    assert Settings.from_env({"FILESAPI_INLINE_MAX_SIZE": "16KiB"}).effective_inline_max_size == 16384


async def test_files_from_before_inline_storage_are_read_from_the_blob_store(tmp_path: Path) -> None:
    """A database made by the previous schema revision upgrades in place: its files are marked as
    stored in the blob store."""
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    file_id, created = IdClock().new_file_id()
    engine = create_engine(url)
    with engine.begin() as conn:
        upgrade(conn, "0003")
        conn.execute(
            text("INSERT INTO workspaces (id, name, used_bytes, created_at_us) VALUES ('wrk_old', 'o', 3, 1)")
        )
        conn.execute(
            text(
                "INSERT INTO files (id, workspace_id, filename, mime_type, size_bytes, checksum, created_at_us,"
                " downloadable) VALUES (:id, 'wrk_old', 'old.txt', 'text/plain', 3, 'crc32c:0', :created, 1)"
            ),
            {"id": file_id, "created": created},
        )
    engine.dispose()
    store = await open_metadata_store(url, upgrade=True)
    try:
        record = await store.get_file("wrk_old", file_id)
        assert record is not None and record.filename == "old.txt" and not record.stored_inline
        assert await store.inline_content(file_id) is None
    finally:
        await store.close()
