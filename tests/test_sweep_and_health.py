"""Background sweeping, readiness, and answers (not crashes) when a backend goes away."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from conftest import GA_HEADERS, Api
from filesapi.ids import IdClock
from filesapi.service import FileService
from servers_pg import PostgresServer, start_postgres

HOUR_US = 3600 * 1_000_000


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _stored(service: FileService, file_id: str) -> bool:
    """Whether the file's bytes are still kept: inline with its row (small files on SQLite) or
    as a blob."""
    return await service.metadata.inline_content(file_id) is not None or await service.blobs.exists(file_id)


def _workspace_id(api: Api) -> str:
    return api.state.authenticator._open_workspace.id  # type: ignore[union-attr]


async def test_readyz_reports_both_backends(api: Api) -> None:
    response = await api.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "metadata": "ok", "blobs": "ok"}


async def test_readyz_is_503_when_the_blob_folder_is_gone(make_api) -> None:
    api = await make_api(backend="disk")
    shutil.rmtree(api.state.service.blobs.root)  # type: ignore[attr-defined]
    response = await api.http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["metadata"] == "ok" and body["blobs"] != "ok"


async def test_sweep_finishes_an_interrupted_delete(api: Api) -> None:
    file_id = (await api.upload(b"to delete")).json()["id"]
    service = api.state.service
    # A crash between hiding the row and removing the blob leaves exactly this:
    assert await service.metadata.hide_file(_workspace_id(api), file_id, service.clock.now_us())
    assert await _stored(service, file_id)
    report = await service.sweep()
    assert report.deletes_finished == 1
    assert not await _stored(service, file_id)
    assert await service.metadata.existing_ids([file_id]) == set()
    assert not await service.sweep()  # nothing left to do


async def test_sweep_purges_expired_content_but_keeps_metadata(api: Api) -> None:
    now = [1_900_000_000_000_000]
    service = api.state.service
    service.clock = IdClock(lambda: now[0])
    expiring = (await api.upload(b"x" * 100, expires_in_seconds="3600")).json()
    lasting = (await api.upload(b"y" * 10)).json()
    assert (await service.sweep()).expired_purged == 0
    now[0] += HOUR_US
    report = await service.sweep()
    assert report.expired_purged == 1
    assert not await _stored(service, expiring["id"])
    assert await _stored(service, lasting["id"])
    assert (await api.http.get(f"/v1/files/{expiring['id']}")).json() == expiring
    download = await api.http.get(f"/v1/files/{expiring['id']}/content")
    assert download.json()["error"]["details"]["error_code"] == "file_expired"
    assert await service.metadata.used_bytes(_workspace_id(api)) == 10
    # Deleting the purged file afterwards releases nothing twice.
    assert (await api.http.delete(f"/v1/files/{expiring['id']}")).status_code == 200
    assert await service.metadata.used_bytes(_workspace_id(api)) == 10


async def test_sweep_removes_old_orphan_blobs_only(api: Api) -> None:
    service = api.state.service
    kept = (await api.upload(b"has a row")).json()["id"]
    old_id, _ = IdClock(lambda: service.clock.now_us() - 48 * HOUR_US).new_file_id()
    young_id, _ = service.clock.new_file_id()
    await service.blobs.put(old_id, _one(b"crash leftover"))
    await service.blobs.put(young_id, _one(b"upload about to commit"))
    await service.blobs.put("not_a_file_id", _one(b"someone else's"))
    report = await service.sweep()
    assert report.orphans_removed == 1
    assert not await service.blobs.exists(old_id)
    assert await service.blobs.exists(young_id)
    assert await _stored(service, kept)
    assert await service.blobs.exists("not_a_file_id")


# -- a backend that goes away


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped by the test
            server.stop("immediate")
        shutil.rmtree(server.datadir, ignore_errors=True)


def test_database_outage_is_503_with_retry_hints_and_recovers(
    own_postgres: PostgresServer, server_factory
) -> None:
    database_url = own_postgres.create_database()
    server = server_factory("--database-url", database_url)
    uploaded = httpx.post(
        server.base_url + "/v1/files", files={"file": ("a.txt", b"kept")}, headers=GA_HEADERS
    ).json()
    own_postgres.stop("immediate")

    for method, path in [("GET", "/v1/files"), ("GET", f"/v1/files/{uploaded['id']}"), ("POST", "/v1/files")]:
        kwargs = {"files": {"file": ("b.txt", b"x")}} if method == "POST" else {}
        response = httpx.request(method, server.base_url + path, headers=GA_HEADERS, timeout=30, **kwargs)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert response.headers["x-should-retry"] == "true"
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == "api_error"
        assert "Traceback" not in response.text
    assert httpx.get(server.base_url + "/readyz").status_code == 503

    own_postgres.start()
    assert httpx.get(server.base_url + "/readyz").json()["status"] == "ready"
    listed = httpx.get(server.base_url + "/v1/files", headers=GA_HEADERS).json()["data"]
    assert [f["id"] for f in listed] == [uploaded["id"]]
    content = httpx.get(f"{server.base_url}/v1/files/{uploaded['id']}/content", headers=GA_HEADERS).content
    assert content == b"kept"
