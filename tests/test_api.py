"""HTTP behaviour of the five calls in both dialects, on the in-memory and on-disk backends."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import pytest

from conftest import BETA_HEADERS, Api
from filesapi.ids import IdClock, file_id_timestamp_us

ID_SHAPE = re.compile(r"file_01[1-9A-HJ-NP-Za-km-z]{22}")
TIME_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def assert_envelope(response, status: int, error_type: str, error_code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]
    if error_code is None:
        assert "details" not in body["error"]
    else:
        assert body["error"]["details"] == {"error_code": error_code}
    return body


# -- upload and metadata


async def test_upload_returns_ga_metadata(api: Api) -> None:
    response = await api.upload(b"%PDF-1.4 body", "report.pdf", "application/pdf")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "type",
        "filename",
        "mime_type",
        "size_bytes",
        "created_at",
        "downloadable",
        "expires_at",
        "scope",
    }
    assert body["scope"] is None
    assert ID_SHAPE.fullmatch(body["id"])
    assert TIME_SHAPE.fullmatch(body["created_at"])
    assert body["type"] == "file"
    assert body["filename"] == "report.pdf"
    assert body["mime_type"] == "application/pdf"
    assert body["size_bytes"] == len(b"%PDF-1.4 body")
    assert body["downloadable"] is True
    assert body["expires_at"] is None


async def test_created_at_is_the_time_in_the_id(api: Api) -> None:
    body = (await api.upload()).json()
    created = datetime.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    epoch = datetime(1970, 1, 1)
    assert (created - epoch) // timedelta(microseconds=1) == file_id_timestamp_us(body["id"])


async def test_beta_dialect_shows_scope_not_expiry(api: Api) -> None:
    response = await api.upload(headers=BETA_HEADERS)
    body = response.json()
    assert body["scope"] is None
    assert "expires_at" not in body
    fetched = (await api.http.get(f"/v1/files/{body['id']}", headers=BETA_HEADERS)).json()
    assert fetched == body


async def test_metadata_round_trip_in_both_dialects(api: Api) -> None:
    created = (await api.upload(b"abc", "a.txt")).json()
    ga = (await api.http.get(f"/v1/files/{created['id']}")).json()
    assert ga == created
    beta = (await api.http.get(f"/v1/files/{created['id']}?beta=true", headers=BETA_HEADERS)).json()
    assert beta == {k: v for k, v in ga.items() if k != "expires_at"}


async def test_ids_are_strictly_increasing(api: Api) -> None:
    ids = [(await api.upload(str(i).encode())).json()["id"] for i in range(30)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 30


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "expected_name", "expected_type"),
    [
        ("../../etc/passwd", "application/octet-stream", b"root:x:0:0", "passwd", "text/plain"),
        ("C:\\a\\b.pdf", "application/octet-stream", b"%PDF-1.7 x", "b.pdf", "application/pdf"),
        ("report.pdf", "application/octet-stream", b"%PDF-1.4", "report.pdf", "application/pdf"),
        ("photo", "application/octet-stream", b"\x89PNG\r\n\x1a\n0000", "photo", "image/png"),
        ("data.csv", "application/octet-stream", b"a,b\n1,2\n", "data.csv", "text/csv"),
        ("notes.md", "application/octet-stream", b"# hi", "notes.md", "text/markdown"),
        (
            "doc.docx",
            "application/octet-stream",
            b"PK\x03\x04rest",
            "doc.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("x.bin", "application/octet-stream", bytes(range(256)), "x.bin", "application/octet-stream"),
        ("given.txt", "text/plain; charset=utf-8", b"%PDF-1.4 but declared", "given.txt", "text/plain"),
        ("résumé — final.txt", "text/plain", b"ok", "résumé — final.txt", "text/plain"),
    ],
)
async def test_filename_and_mime_rules(
    api: Api, filename, content_type, data, expected_name, expected_type
) -> None:
    body = (await api.upload(data, filename, content_type)).json()
    assert (body["filename"], body["mime_type"]) == (expected_name, expected_type)


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"%PDF-1.4", "unnamed.pdf"), (b"plain words", "unnamed.txt"), (b"\x00\x01\x02", "unnamed")],
)
async def test_missing_filename_becomes_unnamed_with_extension(api: Api, data: bytes, expected: str) -> None:
    # A part with no filename parameter at all (Python and Java SDKs for raw bytes).
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await api.http.post(
        "/v1/files", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["filename"] == expected


@pytest.mark.parametrize("filename", ["bad\nname.txt", "tab\there", "nul\x00.txt", "x" * 256, "del\x7f.txt"])
async def test_bad_filenames_are_400(api: Api, filename: str) -> None:
    boundary = "bb"
    part_header = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'
    )
    body = part_header.encode() + b"data" + f"\r\n--{boundary}--\r\n".encode()
    response = await api.http.post(
        "/v1/files", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_envelope(response, 400, "invalid_request_error")


async def test_filename_of_255_characters_is_accepted(api: Api) -> None:
    response = await api.upload(b"x", "n" * 251 + ".txt")
    assert response.status_code == 200
    assert len(response.json()["filename"]) == 255


async def test_zero_byte_file(api: Api) -> None:
    body = (await api.upload(b"", "empty.txt")).json()
    assert body["size_bytes"] == 0
    assert (await api.http.get(f"/v1/files/{body['id']}/content")).content == b""


async def test_expires_in_seconds_sets_expires_at(api: Api) -> None:
    body = (await api.upload(expires_in_seconds="3600")).json()
    created = datetime.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - created == timedelta(seconds=3600)


@pytest.mark.parametrize("value", ["3599", "7776001", "0", "-5", "soon", "1e4", ""])
async def test_expires_in_seconds_out_of_range_is_400(api: Api, value: str) -> None:
    response = await api.upload(expires_in_seconds=value)
    body = assert_envelope(response, 400, "invalid_request_error")
    assert "expires_in_seconds" in body["error"]["message"]
    # Nothing was stored.
    assert (await api.http.get("/v1/files")).json()["data"] == []


async def test_expired_file_keeps_metadata_but_download_is_file_expired(api: Api) -> None:
    now = [1_800_000_000_000_000]
    api.state.service.clock = IdClock(lambda: now[0])
    body = (await api.upload(b"short lived", expires_in_seconds="3600")).json()
    assert (await api.http.get(f"/v1/files/{body['id']}/content")).status_code == 200
    now[0] += 3600 * 1_000_000
    response = await api.http.get(f"/v1/files/{body['id']}/content")
    assert_envelope(response, 404, "not_found_error", "file_expired")
    assert (await api.http.get(f"/v1/files/{body['id']}")).json() == body
    assert [f["id"] for f in (await api.http.get("/v1/files")).json()["data"]] == [body["id"]]


# -- bad multipart input


def _multipart_post(api: Api, body: bytes, content_type: str | None):
    headers = {} if content_type is None else {"content-type": content_type}
    return api.http.post("/v1/files", content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"", "multipart/form-data; boundary=x", "empty"),
        (b"--x--\r\n", "multipart/form-data; boundary=x", "no part named 'file'"),
        (b"hello", None, "multipart/form-data"),
        (b"hello", "application/json", "multipart/form-data"),
        (b"--x\r\n", "multipart/form-data", "boundary"),
        (b"no boundary here", "multipart/form-data; boundary=x", "boundary"),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\ntruncated',
            "multipart/form-data; boundary=x",
            "closing boundary",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"\r\nno-end-of-headers',
            "multipart/form-data; boundary=x",
            "headers",
        ),
        (
            b"--x\r\nContent-Type: text/plain\r\n\r\nabc\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            "Content-Disposition",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nabc\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "no part named 'file'",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="\xff\xfe.txt"\r\n\r\nabc\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "UTF-8",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="file[0]"\r\n\r\n69\r\n'
            b'--x\r\nContent-Disposition: form-data; name="file[1]"\r\n\r\n120\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "file[0]",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n1\r\n'
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n2\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "more than one",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc\r\n--xGARBAGE',
            "multipart/form-data; boundary=x",
            "garbage",
        ),
    ],
)
async def test_malformed_uploads_are_400_with_a_useful_message(api: Api, body, content_type, needle) -> None:
    response = await _multipart_post(api, body, content_type)
    envelope = assert_envelope(response, 400, "invalid_request_error")
    assert needle.lower() in envelope["error"]["message"].lower()
    assert (await api.http.get("/v1/files")).json()["data"] == []


async def test_too_many_parts_is_400(api: Api) -> None:
    parts = b"".join(
        b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(100)
    )
    response = await _multipart_post(api, parts + b"--x--\r\n", "multipart/form-data; boundary=x")
    assert_envelope(response, 400, "invalid_request_error")


async def test_huge_part_headers_are_400(api: Api) -> None:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="file"\r\nX-Pad: '
        + b"a" * 20000
        + b"\r\n\r\nv\r\n--x--\r\n"
    )
    response = await _multipart_post(api, body, "multipart/form-data; boundary=x")
    assert "longer than" in assert_envelope(response, 400, "invalid_request_error")["error"]["message"]


async def test_preamble_epilogue_and_unknown_fields_are_tolerated(api: Api) -> None:
    body = (
        b"preamble text\r\n--x\r\n"
        b'Content-Disposition: form-data; name="purpose"\r\n\r\nignored\r\n'
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n\r\nDATA\r\n--x--\r\nepilogue'
    )
    response = await _multipart_post(api, body, 'multipart/form-data; boundary="x"')
    assert response.status_code == 200, response.text
    file_id = response.json()["id"]
    assert (await api.http.get(f"/v1/files/{file_id}/content")).content == b"DATA"


# -- size limit and quota


async def test_size_limit_is_413_and_leaves_nothing(make_api) -> None:
    api = await make_api(backend="disk", max_file_size=1000, inline_max_size=0)
    ok = await api.upload(b"x" * 1000)
    assert ok.status_code == 200
    response = await api.upload(b"x" * 1001)
    assert_envelope(response, 413, "request_too_large")
    assert len((await api.http.get("/v1/files")).json()["data"]) == 1
    blob_dir = api.state.service.blobs.root  # type: ignore[attr-defined]
    assert list((blob_dir / "tmp").iterdir()) == []
    assert sum(1 for _ in (blob_dir / "blobs").rglob("file_*")) == 1


async def test_size_limit_applies_to_chunked_bodies_without_length(make_api) -> None:
    api = await make_api(max_file_size=10_000)

    async def chunked():
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big"\r\n\r\n'
        for _ in range(100):
            yield b"y" * 1000
        yield b"\r\n--x--\r\n"

    response = await api.http.post(
        "/v1/files", content=chunked(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "request_too_large")


async def test_declared_length_over_limit_is_refused_early(make_api) -> None:
    api = await make_api(max_file_size=1000)
    response = await api.http.post(
        "/v1/files",
        content=b"x" * 10,
        headers={"content-type": "multipart/form-data; boundary=x", "content-length": str(5 * 1024 * 1024)},
    )
    assert_envelope(response, 413, "request_too_large")


async def test_quota_is_enforced_and_freed_by_delete(make_api) -> None:
    api = await make_api(backend="disk", workspace_quota=100)
    first = (await api.upload(b"a" * 60)).json()
    response = await api.upload(b"b" * 41)
    assert_envelope(response, 400, "invalid_request_error", "storage_quota_exceeded")
    assert (await api.upload(b"c" * 40)).status_code == 200
    assert (await api.http.delete(f"/v1/files/{first['id']}")).status_code == 200
    assert (await api.upload(b"d" * 60)).status_code == 200


async def test_concurrent_uploads_cannot_overshoot_the_quota(make_api) -> None:
    api = await make_api(backend="disk", workspace_quota=10_000)
    responses = await asyncio.gather(*(api.upload(b"z" * 1000) for _ in range(25)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10
    assert statuses.count(400) == 15
    listed = (await api.http.get("/v1/files?limit=100")).json()["data"]
    assert sum(f["size_bytes"] for f in listed) == 10_000
    assert await api.state.service.metadata.used_bytes(api.state.authenticator._open_workspace.id) == 10_000  # type: ignore[union-attr]


# -- list and paging


async def _upload_many(api: Api, n: int) -> list[str]:
    return [(await api.upload(f"file {i}".encode(), f"f{i}.txt")).json()["id"] for i in range(n)]


async def test_list_is_newest_first_with_default_limit_20(api: Api) -> None:
    ids = await _upload_many(api, 25)
    body = (await api.http.get("/v1/files")).json()
    assert [f["id"] for f in body["data"]] == ids[::-1][:20]
    assert body["next_page"].startswith("page_")


async def test_ga_paging_sees_every_file_once(api: Api) -> None:
    ids = await _upload_many(api, 23)
    seen, page = [], None
    while True:
        params = {"limit": 5} | ({"page": page} if page else {})
        body = (await api.http.get("/v1/files", params=params)).json()
        seen += [f["id"] for f in body["data"]]
        page = body["next_page"]
        if page is None:
            break
    assert seen == ids[::-1]


async def test_ga_paging_stays_correct_while_files_come_and_go(api: Api) -> None:
    ids = await _upload_many(api, 30)
    first = (await api.http.get("/v1/files", params={"limit": 10})).json()
    assert [f["id"] for f in first["data"]] == ids[::-1][:10]
    # Between pages: new files arrive (they belong before page one) and files on later pages go.
    await _upload_many(api, 3)
    gone = ids[5:8]
    for file_id in gone:
        assert (await api.http.delete(f"/v1/files/{file_id}")).status_code == 200
    rest = []
    page = first["next_page"]
    while page:
        body = (await api.http.get("/v1/files", params={"limit": 10, "page": page})).json()
        rest += [f["id"] for f in body["data"]]
        page = body["next_page"]
    assert rest == [i for i in ids[::-1][10:] if i not in gone]


async def test_beta_after_and_before_paging(api: Api) -> None:
    ids = await _upload_many(api, 12)
    newest_first = ids[::-1]
    page1 = (await api.http.get("/v1/files", params={"limit": 5}, headers=BETA_HEADERS)).json()
    assert [f["id"] for f in page1["data"]] == newest_first[:5]
    assert (page1["first_id"], page1["last_id"], page1["has_more"]) == (
        newest_first[0],
        newest_first[4],
        True,
    )
    page2 = (
        await api.http.get(
            "/v1/files", params={"limit": 5, "after_id": page1["last_id"]}, headers=BETA_HEADERS
        )
    ).json()
    assert [f["id"] for f in page2["data"]] == newest_first[5:10]
    page3 = (
        await api.http.get(
            "/v1/files", params={"limit": 5, "after_id": page2["last_id"]}, headers=BETA_HEADERS
        )
    ).json()
    assert [f["id"] for f in page3["data"]] == newest_first[10:]
    assert page3["has_more"] is False
    back = (
        await api.http.get(
            "/v1/files", params={"limit": 5, "before_id": page3["first_id"]}, headers=BETA_HEADERS
        )
    ).json()
    assert [f["id"] for f in back["data"]] == newest_first[5:10]
    assert back["has_more"] is True
    top = (
        await api.http.get(
            "/v1/files", params={"limit": 5, "before_id": newest_first[3]}, headers=BETA_HEADERS
        )
    ).json()
    assert [f["id"] for f in top["data"]] == newest_first[:3]
    assert top["has_more"] is False


async def test_beta_empty_page_has_null_ids(api: Api) -> None:
    body = (await api.http.get("/v1/files", headers=BETA_HEADERS)).json()
    assert body == {"data": [], "first_id": None, "last_id": None, "has_more": False, "next_page": None}


async def test_beta_after_and_before_together_select_files_between(api: Api) -> None:
    ids = await _upload_many(api, 10)
    newest_first = ids[::-1]
    body = (
        await api.http.get(
            "/v1/files",
            params={"after_id": newest_first[1], "before_id": newest_first[6]},
            headers=BETA_HEADERS,
        )
    ).json()
    assert [f["id"] for f in body["data"]] == newest_first[2:6]
    assert body["has_more"] is False


async def test_beta_scope_filter(api: Api) -> None:
    await api.upload(b"unscoped")
    scoped = await api.http.post(
        "/v1/admin/files?scope_id=sesn_abc",
        files={"file": ("out.txt", b"made by a tool", "text/plain")},
        headers=BETA_HEADERS,
    )
    assert scoped.status_code == 200, scoped.text
    assert scoped.json()["scope"] == {"type": "session", "id": "sesn_abc"}
    body = (await api.http.get("/v1/files", params={"scope_id": "sesn_abc"}, headers=BETA_HEADERS)).json()
    assert [f["id"] for f in body["data"]] == [scoped.json()["id"]]


async def test_ga_scope_filter_and_scope_field(api: Api) -> None:
    # The newest SDK's client.beta.files sends scope_id on the GA wire (no beta header).
    await api.upload(b"unscoped")
    made = [
        (
            await api.http.post(
                "/v1/admin/files?scope_id=sesn_q", files={"file": (f"{i}.txt", b"x", "text/plain")}
            )
        ).json()["id"]
        for i in range(3)
    ]
    first = (await api.http.get("/v1/files", params={"scope_id": "sesn_q", "limit": 2})).json()
    assert [f["id"] for f in first["data"]] == made[::-1][:2]
    assert all(f["scope"] == {"type": "session", "id": "sesn_q"} for f in first["data"])
    rest = (
        await api.http.get("/v1/files", params={"scope_id": "sesn_q", "limit": 2, "page": first["next_page"]})
    ).json()
    assert [f["id"] for f in rest["data"]] == [made[0]]
    assert rest["next_page"] is None


async def test_beta_answers_also_carry_a_next_page_cursor(api: Api) -> None:
    ids = await _upload_many(api, 5)
    first = (await api.http.get("/v1/files", params={"limit": 2}, headers=BETA_HEADERS)).json()
    assert first["has_more"] and first["next_page"].startswith("page_")
    seen = [f["id"] for f in first["data"]]
    page = first["next_page"]
    while page:
        body = (
            await api.http.get("/v1/files", params={"limit": 2, "page": page}, headers=BETA_HEADERS)
        ).json()
        seen += [f["id"] for f in body["data"]]
        page = body["next_page"]
    assert seen == ids[::-1]
    mixed = await api.http.get(
        "/v1/files", params={"page": first["next_page"], "after_id": ids[0]}, headers=BETA_HEADERS
    )
    assert_envelope(mixed, 400, "invalid_request_error")


async def test_ga_ids_filter(api: Api) -> None:
    ids = await _upload_many(api, 5)
    await api.http.delete(f"/v1/files/{ids[1]}")
    response = await api.http.get(
        "/v1/files", params=[("ids[]", ids[0]), ("ids[]", ids[1]), ("ids[]", ids[3]), ("ids[]", "file_nope")]
    )
    body = response.json()
    assert [f["id"] for f in body["data"]] == [ids[3], ids[0]]
    assert body["next_page"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "abc"},
        {"limit": "-1"},
        {"page": "page_notarealcursor"},
        {"page": "garbage"},
        {"page": "page_" + "A" * 600},
        {"ids[]": "file_x", "page": "page_x"},
        {"ids[]": "file_x", "limit": "5"},
        {"after_id": "file_011ngdqPKvKnuZD5F3TtAmv7"},
        {"before_id": "file_011ngdqPKvKnuZD5F3TtAmv7"},
    ],
)
async def test_bad_ga_list_params_are_400(api: Api, params) -> None:
    assert_envelope(await api.http.get("/v1/files", params=params), 400, "invalid_request_error")


async def test_more_than_100_ids_is_400(api: Api) -> None:
    params = [("ids[]", f"file_{i}") for i in range(101)]
    assert_envelope(await api.http.get("/v1/files", params=params), 400, "invalid_request_error")


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "1001"}, {"after_id": "../x"}, {"before_id": "nope"}]
)
async def test_bad_beta_list_params_are_400(api: Api, params) -> None:
    response = await api.http.get("/v1/files", params=params, headers=BETA_HEADERS)
    assert_envelope(response, 400, "invalid_request_error")


async def test_limits_1_and_1000_are_fine(api: Api) -> None:
    await _upload_many(api, 2)
    assert len((await api.http.get("/v1/files?limit=1")).json()["data"]) == 1
    assert len((await api.http.get("/v1/files?limit=1000")).json()["data"]) == 2


async def test_tampered_cursor_is_400(api: Api) -> None:
    await _upload_many(api, 3)
    cursor = (await api.http.get("/v1/files?limit=1")).json()["next_page"]
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    assert_envelope(await api.http.get("/v1/files", params={"page": flipped}), 400, "invalid_request_error")
    assert (await api.http.get("/v1/files", params={"page": cursor})).status_code == 200


async def test_query_beta_true_is_ignored(api: Api) -> None:
    await api.upload()
    ga = await api.http.get("/v1/files?beta=true")
    assert set(ga.json()) == {"data", "next_page"}


# -- download


async def test_download_headers(api: Api) -> None:
    body = (await api.upload(b"<svg onload=alert(1)>", 'evil"; x=1.svg', "image/svg+xml")).json()
    response = await api.http.get(f"/v1/files/{body['id']}/content", headers={"accept": "application/binary"})
    assert response.status_code == 200
    assert response.content == b"<svg onload=alert(1)>"
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["content-length"] == "21"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    disposition = response.headers["content-disposition"]
    assert disposition == "attachment; filename=\"evil_; x=1.svg\"; filename*=UTF-8''evil%22%3B%20x%3D1.svg"
    assert re.fullmatch(r'"[0-9a-f]{8}"', response.headers["etag"])


async def test_unicode_filename_disposition(api: Api) -> None:
    body = (await api.upload(b"x", "résumé.pdf", "application/pdf")).json()
    response = await api.http.get(f"/v1/files/{body['id']}/content")
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    )


@pytest.mark.parametrize(
    ("range_header", "status", "expected", "content_range"),
    [
        ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-2", 206, b"89", "bytes 8-9/10"),
        ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
        ("bytes=0-1,4-5", 200, b"0123456789", None),
        ("items=0-1", 200, b"0123456789", None),
        ("bytes=5-2", 200, b"0123456789", None),
    ],
)
async def test_range_requests(api: Api, range_header, status, expected, content_range) -> None:
    body = (await api.upload(b"0123456789", "digits.txt")).json()
    response = await api.http.get(f"/v1/files/{body['id']}/content", headers={"range": range_header})
    assert response.status_code == status
    assert response.content == expected
    assert response.headers.get("content-range") == content_range
    assert response.headers["content-length"] == str(len(expected))


@pytest.mark.parametrize("range_header", ["bytes=10-", "bytes=100-200", "bytes=-0"])
async def test_unsatisfiable_range_is_416(api: Api, range_header: str) -> None:
    body = (await api.upload(b"0123456789")).json()
    response = await api.http.get(f"/v1/files/{body['id']}/content", headers={"range": range_header})
    assert_envelope(response, 416, "invalid_request_error")
    assert response.headers["content-range"] == "bytes */10"


async def test_head_and_conditional_download(api: Api) -> None:
    body = (await api.upload(b"0123456789")).json()
    url = f"/v1/files/{body['id']}/content"
    head = await api.http.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == "10"
    assert head.content == b""
    etag = head.headers["etag"]
    assert (await api.http.get(url, headers={"if-none-match": etag})).status_code == 304
    stale = await api.http.get(url, headers={"range": "bytes=0-1", "if-range": '"00000000"'})
    assert (stale.status_code, stale.content) == (200, b"0123456789")
    fresh = await api.http.get(url, headers={"range": "bytes=0-1", "if-range": etag})
    assert (fresh.status_code, fresh.content) == (206, b"01")


async def test_hosted_profile_uploads_are_not_downloadable(make_api) -> None:
    api = await make_api(profile="hosted")
    body = (await api.upload()).json()
    assert body["downloadable"] is False
    response = await api.http.get(f"/v1/files/{body['id']}/content")
    assert_envelope(response, 400, "invalid_request_error", "file_not_downloadable")
    made = await api.http.post(
        "/v1/admin/files?downloadable=true", files={"file": ("tool.csv", b"a,b", "text/csv")}
    )
    assert made.json()["downloadable"] is True
    assert (await api.http.get(f"/v1/files/{made.json()['id']}/content")).content == b"a,b"


# -- delete and ids


async def test_delete(api: Api) -> None:
    body = (await api.upload()).json()
    response = await api.http.delete(f"/v1/files/{body['id']}")
    assert response.json() == {"id": body["id"], "type": "file_deleted"}
    for method, url in [
        ("GET", f"/v1/files/{body['id']}"),
        ("GET", f"/v1/files/{body['id']}/content"),
        ("DELETE", f"/v1/files/{body['id']}"),
    ]:
        assert_envelope(await api.http.request(method, url), 404, "not_found_error")
    assert (await api.http.get("/v1/files")).json()["data"] == []


@pytest.mark.parametrize(
    "file_id",
    [
        "..%2Fx",
        "file_",
        "nope",
        "x" * 10_000,
        "file_01" + "0" * 22,
        "fichier_é",
        "%00",
        "file_011ngdqPKvKnuZD5F3TtAmv7",
    ],
)
async def test_odd_ids_are_404(api: Api, file_id: str) -> None:
    for method, suffix in [("GET", ""), ("GET", "/content"), ("DELETE", "")]:
        response = await api.http.request(method, f"/v1/files/{file_id}{suffix}")
        assert_envelope(response, 404, "not_found_error")
        assert len(response.json()["error"]["message"]) < 200


# -- headers, auth, routing


async def test_missing_version_is_400(api: Api) -> None:
    response = await api.http.get("/v1/files", headers={"anthropic-version": ""})
    body = assert_envelope(response, 400, "invalid_request_error")
    assert "anthropic-version" in body["error"]["message"]


async def test_garbage_version_is_400(api: Api) -> None:
    assert_envelope(
        await api.http.get("/v1/files", headers={"anthropic-version": "latest"}), 400, "invalid_request_error"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "", "x-api-key": ""},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer "},
    ],
)
async def test_missing_key_is_401(api: Api, headers) -> None:
    response = await api.http.get("/v1/files", headers=headers)
    assert_envelope(response, 401, "authentication_error")


async def test_both_auth_headers_work(api: Api) -> None:
    assert (
        await api.http.get("/v1/files", headers={"authorization": "", "x-api-key": "k"})
    ).status_code == 200
    assert (await api.http.get("/v1/files", headers={"authorization": "bearer k"})).status_code == 200


async def test_workspace_header_must_match(api: Api) -> None:
    ok = await api.http.get("/v1/files", headers={"anthropic-workspace-id": "default"})
    assert ok.status_code == 200
    response = await api.http.get("/v1/files", headers={"anthropic-workspace-id": "wrkspc_other"})
    assert_envelope(response, 403, "permission_error")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/files", 404),
        ("GET", "/", 404),
        ("GET", "/v1/files/", 404),
        ("PUT", "/v1/files", 405),
        ("PATCH", "/v1/files/file_x", 405),
        ("POST", "/v1/files/file_x/content", 405),
    ],
)
async def test_unknown_paths_and_methods_are_json(api: Api, method: str, path: str, status: int) -> None:
    response = await api.http.request(method, path)
    assert_envelope(response, status, "not_found_error" if status == 404 else "invalid_request_error")


async def test_every_response_has_a_request_id(api: Api) -> None:
    responses = [
        await api.upload(),
        await api.http.get("/v1/files"),
        await api.http.get("/nope"),
        await api.http.get("/v1/files", headers={"authorization": ""}),
        await api.http.get("/healthz"),
    ]
    ids = [r.headers["request-id"] for r in responses]
    assert all(re.fullmatch(r"req_01[1-9A-HJ-NP-Za-km-z]{22}", i) for i in ids)
    assert len(set(ids)) == len(ids)


async def test_an_unexpected_bug_is_a_json_500(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.state.service, "get", broken)
    response = await api.http.get("/v1/files/file_011ngdqPKvKnuZD5F3TtAmv7")
    body = assert_envelope(response, 500, "api_error")
    assert "boom" not in body["error"]["message"]


async def test_expires_in_seconds_twice_is_400(api: Api) -> None:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="expires_in_seconds"\r\n\r\n3600\r\n'
        b'--x\r\nContent-Disposition: form-data; name="expires_in_seconds"\r\n\r\n7200\r\n'
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc\r\n--x--\r\n'
    )
    response = await _multipart_post(api, body, "multipart/form-data; boundary=x")
    assert (
        "more than one expires_in_seconds"
        in assert_envelope(response, 400, "invalid_request_error")["error"]["message"]
    )


async def test_control_characters_in_scope_id_are_400(api: Api) -> None:
    response = await api.http.get("/v1/files", params={"scope_id": "sesn\x00x"}, headers=BETA_HEADERS)
    assert_envelope(response, 400, "invalid_request_error")


def test_base58_encoding_two_digits_at_a_time_matches_one_at_a_time() -> None:
    import random

    from filesapi.ids import BASE58_ALPHABET, b58encode_fixed

    def one_at_a_time(value: int, width: int) -> str:
        digits = []
        for _ in range(width):
            value, digit = divmod(value, 58)
            digits.append(BASE58_ALPHABET[digit])
        return "".join(reversed(digits))

    rng = random.Random(16)
    for width in (1, 2, 3, 11, 22):
        for value in [0, 58**width - 1, *(rng.randrange(58**width) for _ in range(500))]:
            assert b58encode_fixed(value, width) == one_at_a_time(value, width)
    with pytest.raises(ValueError):
        b58encode_fixed(58**5, 5)
