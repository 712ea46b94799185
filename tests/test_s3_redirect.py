"""Redirected downloads: with ``download_redirect`` in the S3 blob URL, a whole-file GET answers 307
to a presigned URL of the object, and the client fetches the bytes from the bucket itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import GA_HEADERS, LiveServer, start_server, stop_server
from filesapi.blobs.s3 import S3Location
from servers_s3 import SeaweedS3

_BIG = 200_000  # past the 64 KiB inline limit: stored in S3


@pytest.fixture
def redirecting(tmp_path: Path, s3_server: SeaweedS3) -> Iterator[LiveServer]:
    # The public endpoint names the same SeaweedFS by another host name, as a client outside
    # the server's network would: the URL must be signed for that host.
    public = s3_server.endpoint.replace("127.0.0.1", "localhost")
    blob_url = f"{s3_server.url()}&download_redirect=2&public_endpoint={public}"
    server = start_server(tmp_path, "--blob-url", blob_url, env=s3_server.env)
    try:
        yield server
    finally:
        stop_server(server)


def _upload(server: LiveServer, data: bytes, name: str) -> str:
    response = httpx.post(f"{server.base_url}/v1/files", files={"file": (name, data)}, headers=GA_HEADERS)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_whole_downloads_redirect_to_a_presigned_url(redirecting: LiveServer, s3_server: SeaweedS3) -> None:
    data = os.urandom(_BIG)
    file_id = _upload(redirecting, data, "report 2026 ü.csv")
    url = f"{redirecting.base_url}/v1/files/{file_id}/content"

    answer = httpx.get(url, headers=GA_HEADERS)
    assert answer.status_code == 307 and answer.content == b""
    assert answer.headers["cache-control"] == "no-store" and "request-id" in answer.headers
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == s3_server.endpoint.replace("127.0.0.1", "localhost")
    assert location.path.endswith("/" + file_id)
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == ["2"] and "X-Amz-Signature" in query

    # The bucket answers with the file's bytes and the headers filesapi would have sent.
    followed = httpx.get(url, headers=GA_HEADERS, follow_redirects=True)
    assert followed.status_code == 200 and followed.content == data
    assert followed.headers["content-type"] == "text/csv"
    browser = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}
    direct = httpx.get(url, headers=GA_HEADERS | browser)  # a browser: proxied (no CORS on the bucket)
    assert direct.status_code == 200 and direct.content == data
    node = httpx.get(url, headers=GA_HEADERS | {"sec-fetch-mode": "cors"})  # Node's fetch: redirected
    assert node.status_code == 307
    console = httpx.get(url, headers=GA_HEADERS | {"x-filesapi-proxy": "1"})  # who asks: proxied
    assert console.status_code == 200 and console.content == data
    assert followed.headers["content-disposition"] == direct.headers["content-disposition"]

    # The URL is short-lived.
    time.sleep(3.5)
    assert httpx.get(answer.headers["location"]).status_code == 403


def test_the_cli_download_follows_the_redirect(redirecting: LiveServer, tmp_path: Path) -> None:
    data = os.urandom(_BIG)
    file_id = _upload(redirecting, data, "for the cli.bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env |= {"ANTHROPIC_BASE_URL": redirecting.base_url, "ANTHROPIC_API_KEY": "k"}
    done = subprocess.run([sys.executable, "-m", "filesapi", "download", file_id, "-o", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "for the cli.bin").read_bytes() == data


def test_what_stays_proxied(redirecting: LiveServer) -> None:
    data = os.urandom(_BIG)
    file_id = _upload(redirecting, data, "big.bin")
    small_id = _upload(redirecting, b"inline, no object", "small.txt")
    url = f"{redirecting.base_url}/v1/files/{file_id}/content"

    part = httpx.get(url, headers=GA_HEADERS | {"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    head = httpx.head(url, headers=GA_HEADERS)
    assert head.status_code == 200 and head.headers["content-length"] == str(_BIG)
    etag = head.headers["etag"]
    assert httpx.get(url, headers=GA_HEADERS | {"if-none-match": etag}).status_code == 304
    small = httpx.get(f"{redirecting.base_url}/v1/files/{small_id}/content", headers=GA_HEADERS)
    assert small.status_code == 200 and small.content == b"inline, no object"
    # Errors are answered before any redirect.
    missing = httpx.get(
        f"{redirecting.base_url}/v1/files/file_011ngdqPKvKnuZD5F3TtAmxx/content", headers=GA_HEADERS
    )
    assert missing.status_code == 404
    assert httpx.get(url).status_code == 401  # no key: no URL


def test_the_redirect_setting_is_checked() -> None:
    base = "s3://bucket/prefix?endpoint=http://127.0.0.1:1"
    assert S3Location.from_url(base).download_redirect == 0
    loc = S3Location.from_url(base + "&download_redirect=300&public_endpoint=https://files.example.com/")
    assert (loc.download_redirect, loc.public_endpoint) == (300, "https://files.example.com")
    for bad in ("&download_redirect=soon", "&download_redirect=-1", "&download_redirect=604801",
                "&public_endpoint=files.example.com"):  # fmt: skip
        with pytest.raises(ValueError):
            S3Location.from_url(base + bad)
