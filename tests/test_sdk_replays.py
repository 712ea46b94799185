"""Raw-HTTP replays of the SDKs that cannot be installed here: Ruby 1.65, .NET, Go, Java, TypeScript
0.121 and 1.12 (and Python 2.12 for GA paging).

Every request is written byte for byte on a plain socket to the real server process (``live_server``),
so granian's HTTP parsing is exercised too: header order and casing as the SDK sends them, repeated
header lines, ``Transfer-Encoding: chunked`` bodies, and the multipart framing and boundaries seen in
the wire captures (see the spec's ``captures/``). Answers are checked the way those SDKs' parsers read
them: status, the dialect's JSON shape and field types, the ``request-id`` header on every response and
the error envelope.

The server runs in open mode, so every test shares one workspace with the rest of the session. The
``wire`` fixture deletes the files a test made; assertions about "every file exactly once" compare
against an independent full listing rather than assuming an empty workspace.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import LiveServer

BETA_FLAG = "files-api-2025-04-14"
KEY = "test-key"
HOST = "\x00host\x00"  # replaced by the live server's host:port when the request is written
BETA, GA = "beta", "ga"

FILE_ID = re.compile(r"file_01[1-9A-HJ-NP-Za-km-z]{22}")
RFC3339_US = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
REQUEST_ID = re.compile(r"req_\w+")

EXAMPLE = b"Example data"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

Headers = list[tuple[str, str]]
Part = tuple[Headers, bytes]


# -- the wire: one request per connection, written exactly as given


@dataclass
class Reply:
    status: int
    headers: Headers  # names lowercased, in wire order
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        assert (self.header("content-type") or "").startswith("application/json"), (self.status, self.headers)
        return json.loads(self.body)


def _recv_until(sock: socket.socket, buf: bytearray, marker: bytes) -> int:
    while (idx := buf.find(marker)) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response; got {bytes(buf[:200])!r}")
        buf += chunk
    return idx


def _recv_exactly(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} body bytes")
        buf += chunk
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _read_reply(sock: socket.socket, method: str) -> Reply:
    buf = bytearray()
    end = _recv_until(sock, buf, b"\r\n\r\n")
    status_line, *lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[: end + 4]
    version, status_text, *_ = status_line.split(" ", 2)
    assert version.startswith("HTTP/1."), status_line
    status = int(status_text)
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
    framing = {k: v for k, v in headers if k in ("transfer-encoding", "content-length")}
    body = bytearray()
    if method == "HEAD" or status in (204, 304):
        pass
    elif "chunked" in framing.get("transfer-encoding", "").lower():
        while True:
            idx = _recv_until(sock, buf, b"\r\n")
            size = int(bytes(buf[:idx]).split(b";")[0], 16)
            del buf[: idx + 2]
            if size == 0:
                while (idx := _recv_until(sock, buf, b"\r\n")) > 0:  # trailers, up to the blank line
                    del buf[: idx + 2]
                break
            body += _recv_exactly(sock, buf, size)
            assert _recv_exactly(sock, buf, 2) == b"\r\n"
    elif "content-length" in framing:
        body += _recv_exactly(sock, buf, int(framing["content-length"]))
    else:
        body += buf
        while chunk := sock.recv(65536):
            body += chunk
    data = bytes(body)
    if any(k == "content-encoding" and v.lower() == "gzip" for k, v in headers):
        data = gzip.decompress(data)
    return Reply(status, headers, data)


def chunk_frames(pieces: Sequence[bytes]) -> list[bytes]:
    """HTTP/1.1 chunked framing as Ruby's net/http writes it (lowercase hex sizes), one frame per
    piece, then the last-chunk and the empty trailer section."""
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces if p] + [b"0\r\n\r\n"]


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclass
class Wire:
    server: LiveServer
    made: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return urlsplit(self.server.base_url).netloc

    def send(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes = b"",
        *,
        chunks: Sequence[bytes] | None = None,
    ) -> Reply:
        """Write the request exactly: header lines in this order and casing (a repeated name stays
        repeated lines). With ``chunks`` the body goes out truly chunked, one HTTP chunk (and one
        socket write) per piece; the headers must then say ``Transfer-Encoding: chunked``."""
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{name}: {value.replace(HOST, self.host)}" for name, value in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        host, port = self.host.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(head)
            if chunks is not None:
                assert ("transfer-encoding", "chunked") in [(k.lower(), v) for k, v in headers]
                assert body == b""
                for frame in chunk_frames(chunks):
                    sock.sendall(frame)
            else:
                sock.sendall(body)
            reply = _read_reply(sock, method)
        # Every response, errors included, carries a request id.
        assert REQUEST_ID.fullmatch(reply.header("request-id") or ""), reply.headers
        if method == "POST" and target.startswith("/v1/files") and reply.status == 200:
            self.made.append(reply.json()["id"])
        return reply


@pytest.fixture
def wire(live_server: LiveServer) -> Iterator[Wire]:
    w = Wire(live_server)
    yield w
    for file_id in w.made:
        w.send("DELETE", f"/v1/files/{file_id}", python_headers())


# -- what each SDK puts in its header block (order and casing from the captures)


def ruby_headers(
    *, beta: str | None = BETA_FLAG, content_type: str | None = None, accept: str = "application/json"
) -> Headers:
    h = [
        ("Accept-Encoding", "gzip;q=1.0,deflate;q=0.6,identity;q=0.3"),
        ("Accept", accept),
        ("User-Agent", "Anthropic::Client/Ruby 1.65.0"),
        ("Host", HOST),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Lang", "ruby"),
        ("X-Stainless-Os", "Linux"),
        ("X-Stainless-Package-Version", "1.65.0"),
        ("X-Stainless-Runtime", "ruby"),
        ("X-Stainless-Runtime-Version", "3.1.7"),
    ]
    if content_type:
        h.append(("Content-Type", content_type))
    h += [("Anthropic-Version", "2023-06-01"), ("X-Api-Key", KEY)]
    if beta:
        h.append(("Anthropic-Beta", beta))
    h += [("X-Stainless-Retry-Count", "0"), ("X-Stainless-Timeout", "600.0")]
    # Ruby streams every upload chunked, and sends an explicit zero length on bodiless requests.
    h.append(("Transfer-Encoding", "chunked") if content_type else ("Content-Length", "0"))
    return h


def ts_headers(
    version: str, *, beta: str | None = None, content_type: str | None = None, length: int | None = None
) -> Headers:
    """TypeScript 0.121 (beta era: x-api-key, 2023-06-01) or 1.12 (GA: Bearer, 2026-10-21), on undici."""
    old = version.startswith("0.")
    h = [
        ("host", HOST),
        ("connection", "keep-alive"),
        ("Accept", "application/json"),
        ("User-Agent", f"Anthropic/JS {version}"),
        ("X-Stainless-Retry-Count", "0"),
    ]
    if not old:
        h.append(("X-Stainless-Timeout", "600"))
    h += [
        ("X-Stainless-Lang", "js"),
        ("X-Stainless-Package-Version", version),
        ("X-Stainless-OS", "Linux"),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Runtime", "node"),
        ("X-Stainless-Runtime-Version", "v20.20.2"),
    ]
    h += (
        [("anthropic-version", "2023-06-01"), ("x-api-key", KEY)]
        if old
        else [
            ("anthropic-version", "2026-10-21"),
            ("authorization", f"Bearer {KEY}"),
        ]
    )
    if beta:
        h.append(("anthropic-beta", beta))
    if content_type:
        h.append(("content-type", content_type))
    h += [("accept-language", "*"), ("sec-fetch-mode", "cors"), ("accept-encoding", "gzip, deflate")]
    if length is not None:
        h.append(("content-length", str(length)))
    return h


def python_headers(*, content_type: str | None = None, length: int | None = None) -> Headers:
    """Python 2.12 (GA)."""
    h = [
        ("Host", HOST),
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "keep-alive"),
        ("x-stainless-timeout", "NOT_GIVEN"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-read-timeout", "600"),
        ("Accept", "application/json"),
        ("User-Agent", "Anthropic/Python 2.12.0"),
        ("X-Stainless-Lang", "python"),
        ("X-Stainless-Package-Version", "2.12.0"),
        ("X-Stainless-OS", "Linux"),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Runtime", "CPython"),
        ("X-Stainless-Runtime-Version", "3.11.7"),
        ("Authorization", f"Bearer {KEY}"),
        ("X-Stainless-Async", "false"),
        ("anthropic-version", "2026-10-21"),
    ]
    if length is not None:
        h.append(("Content-Length", str(length)))
    if content_type:
        h.append(("Content-Type", content_type))
    return h


def go_headers(
    *, betas: Sequence[str] = (), content_type: str | None = None, length: int | None = None
) -> Headers:
    """Go's net/http: Host, User-Agent, Content-Length, then the header map in sorted canonical form
    (each value of a multi-valued header on its own line), then the transport's Accept-Encoding."""
    h = [("Host", HOST), ("User-Agent", "Anthropic/Go 1.19.0")]
    if length is not None:
        h.append(("Content-Length", str(length)))
    h.append(("Accept", "application/json"))
    h += [("Anthropic-Beta", b) for b in betas]
    h.append(("Anthropic-Version", "2023-06-01"))
    if content_type:
        h.append(("Content-Type", content_type))
    h += [
        ("X-Api-Key", KEY),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Lang", "go"),
        ("X-Stainless-Os", "Linux"),
        ("X-Stainless-Package-Version", "1.19.0"),
        ("X-Stainless-Retry-Count", "0"),
        ("X-Stainless-Runtime", "go"),
        ("X-Stainless-Runtime-Version", "go1.24.1"),
        ("Accept-Encoding", "gzip"),
    ]
    return h


def dotnet_headers(
    *, beta: str | None = f"a, {BETA_FLAG}", content_type: str | None = None, length: int | None = None
) -> Headers:
    """.NET HttpClient: request headers (multi-values joined with ", "), then the content headers."""
    h = [("Host", HOST), ("anthropic-version", "2023-06-01"), ("x-api-key", KEY)]
    if beta:
        h.append(("anthropic-beta", beta))
    h += [
        ("User-Agent", "Anthropic/C# 12.0.0"),
        ("X-Stainless-Lang", "csharp"),
        ("X-Stainless-Package-Version", "12.0.0"),
        ("X-Stainless-OS", "Linux"),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Runtime", ".NET"),
        ("X-Stainless-Runtime-Version", "8.0.11"),
        ("X-Stainless-Retry-Count", "0"),
        ("Accept", "application/json"),
    ]
    if content_type:
        h.append(("Content-Type", content_type))
    if length is not None:
        h.append(("Content-Length", str(length)))
    return h


def java_headers() -> Headers:
    """Java on OkHttp (lowercase SDK headers, OkHttp's own title-cased ones)."""
    return [
        ("anthropic-beta", BETA_FLAG),
        ("anthropic-version", "2023-06-01"),
        ("x-api-key", KEY),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Lang", "java"),
        ("X-Stainless-OS", "Linux"),
        ("X-Stainless-Package-Version", "2.11.0"),
        ("X-Stainless-Runtime", "JRE"),
        ("X-Stainless-Runtime-Version", "21.0.5"),
        ("X-Stainless-Retry-Count", "0"),
        ("User-Agent", "Anthropic/Java 2.11.0"),
        ("Host", HOST),
        ("Connection", "Keep-Alive"),
        ("Accept-Encoding", "gzip"),
    ]


# -- multipart bodies: one builder for every SDK's framing


def part(disposition: str, body: bytes, content_type: str | None = None, *, type_first: bool = False) -> Part:
    headers: Headers = [("Content-Disposition", disposition)]
    if content_type is not None:
        headers.insert(0 if type_first else 1, ("Content-Type", content_type))
    return headers, body


def form(boundary: str, *parts: Part) -> bytes:
    out = bytearray()
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def multipart_type(boundary: str) -> str:
    return f"multipart/form-data; boundary={boundary}"


# -- how the SDKs' parsers read the answers


def parse_time(text: str) -> datetime:
    assert RFC3339_US.fullmatch(text), text  # Go's time.Parse(RFC3339) needs the T; Z; microseconds
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_file(obj: Any, dialect: str) -> dict[str, Any]:
    assert isinstance(obj, dict), obj
    assert FILE_ID.fullmatch(obj["id"]), obj
    assert obj["type"] == "file"
    assert isinstance(obj["filename"], str) and obj["filename"]
    assert isinstance(obj["mime_type"], str) and "/" in obj["mime_type"]
    assert type(obj["size_bytes"]) is int and obj["size_bytes"] >= 0
    parse_time(obj["created_at"])
    assert type(obj["downloadable"]) is bool
    # Both dialects show scope (the newest SDK's beta.files reads it off the GA wire); only GA
    # shows expires_at.
    assert obj["scope"] is None or (obj["scope"]["type"] == "session" and isinstance(obj["scope"]["id"], str))
    if dialect == BETA:
        assert "expires_at" not in obj, obj
    else:
        assert "expires_at" in obj, obj
        if obj["expires_at"] is not None:
            parse_time(obj["expires_at"])
    return obj


def file_reply(reply: Reply, dialect: str) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    return assert_file(reply.json(), dialect)


def page_reply(reply: Reply, dialect: str) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    page = reply.json()
    assert isinstance(page["data"], list)
    for item in page["data"]:
        assert_file(item, dialect)
    ids = [f["id"] for f in page["data"]]
    # Beta answers carry next_page too (the newest SDK's beta.files pages by cursor only).
    assert page["next_page"] is None or (
        isinstance(page["next_page"], str) and page["next_page"].startswith("page_")
    )
    if dialect == BETA:
        assert type(page["has_more"]) is bool
        assert page["first_id"] == (ids[0] if ids else None)
        assert page["last_id"] == (ids[-1] if ids else None)
    else:
        assert not {"has_more", "first_id", "last_id"} & set(page), page
    return page


def assert_error(reply: Reply, status: int, error_type: str, error_code: str | None = None) -> str:
    """The Anthropic error envelope, always JSON; returns the message."""
    assert reply.status == status, (reply.status, reply.body)
    body = reply.json()
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error"
    assert body["request_id"] == reply.header("request-id")
    error = body["error"]
    assert error["type"] == error_type, error
    assert isinstance(error["message"], str) and error["message"], error
    if error_code is not None:
        assert error["details"] == {"error_code": error_code}, error
    return str(error["message"])


# -- small helpers over the wire


def seed(wire: Wire, n: int, tag: str = "seed") -> list[str]:
    """``n`` small files uploaded the way Python 2.12 sends them; ids oldest first."""
    ids = []
    boundary = "9bff000ac54ddbbd21b086d81d89a39a"
    for i in range(n):
        body = form(
            boundary, part(f'form-data; name="file"; filename="{tag}-{i}.txt"', b"x%d" % i, "text/plain")
        )
        reply = wire.send(
            "POST", "/v1/files", python_headers(content_type=multipart_type(boundary), length=len(body)), body
        )
        ids.append(file_reply(reply, GA)["id"])
    return ids


def every_id(wire: Wire) -> list[str]:
    """The whole workspace, newest first, through GA paging (an independent path)."""
    ids: list[str] = []
    target = "/v1/files?limit=1000"
    while True:
        page = page_reply(wire.send("GET", target, python_headers()), GA)
        ids += [f["id"] for f in page["data"]]
        if page["next_page"] is None:
            return ids
        target = f"/v1/files?limit=1000&page={page['next_page']}"


def download(wire: Wire, file_id: str, headers: Headers, query: str = "") -> bytes:
    reply = wire.send("GET", f"/v1/files/{file_id}/content{query}", headers)
    assert reply.status == 200, (reply.status, reply.body)
    return reply.body


# == Ruby 1.65


RUBY_BOUNDARIES = [
    "fbljj2wDuvZSokzAUNfzVJVbPVXT-ld0_zC3-PmZ",  # captured: '-' and '_' inside
    "3_Qxam8V9-Ij4hgnvW4RJsCh6XTv_KWUHXC7ZOYw",  # captured
    "--Qxam8V9-Ij4hgnvW4RJsCh6XTv_KWUHXC7ZOYw",  # starts with '--': the delimiter starts with 4 dashes
    "fbljj2wDuvZSokzAUNfzVJVbPVXT-ld0_zC3-P--",  # ends with '--': the close is 4 dashes after it
    "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_",
]


@pytest.mark.parametrize("boundary", RUBY_BOUNDARIES)
def test_ruby_chunked_upload_with_base64url_boundaries(wire: Wire, boundary: str) -> None:
    assert len(boundary) == 40 and re.fullmatch(r"[A-Za-z0-9_-]{40}", boundary)
    # The content holds a line that is the delimiter minus its last character: not an end of part.
    content = EXAMPLE + b"\r\n--" + boundary[:-1].encode() + b"\r\nlast line"
    body = form(boundary, part('form-data; name="file"; filename="upload"', content, "text/plain"))
    reply = wire.send(
        "POST",
        "/v1/files?beta=true",
        ruby_headers(content_type=multipart_type(boundary)),
        # Small chunks: the boundary, the part headers and the CRLFs all straddle chunk edges.
        chunks=split(body, 7),
    )
    meta = file_reply(reply, BETA)  # Title-cased Anthropic-Beta chose the beta dialect
    assert meta["filename"] == "upload"
    assert meta["mime_type"] == "text/plain"
    assert meta["size_bytes"] == len(content)
    assert meta["scope"] is None
    assert download(wire, meta["id"], ruby_headers(accept="application/binary"), "?beta=true") == content


def test_ruby_chunked_upload_of_a_larger_stream(wire: Wire) -> None:
    boundary = "N1jGDh9AmtgQF0mRYcGAdmEYcnGjB7VtT-jIYq98"
    content = bytes(range(256)) * 1200 + b"\r\n--" + boundary.encode()[:20]  # ~300 KiB, binary
    body = form(
        boundary, part('form-data; name="file"; filename="upload"', content, "application/octet-stream")
    )
    reply = wire.send(
        "POST",
        "/v1/files?beta=true",
        ruby_headers(content_type=multipart_type(boundary)),
        chunks=split(body, 16384),
    )
    meta = file_reply(reply, BETA)
    assert meta["filename"] == "upload"
    assert meta["size_bytes"] == len(content)
    assert download(wire, meta["id"], ruby_headers(accept="application/binary"), "?beta=true") == content


@pytest.mark.parametrize(
    ("sdk", "expires_first"),
    [("ruby", False), ("typescript-1.12", False), ("python-2.12", True)],
)
def test_ga_upload_with_expires_in_seconds(wire: Wire, sdk: str, expires_first: bool) -> None:
    """Ruby sends the field after the file, chunked, with its own Content-Type: text/plain; TS after
    the file with no type; Python before the file."""
    boundary = {
        "ruby": "roQl0YoKA1FI4CcHCBgPVDQCCKI_c9XjEy2cba4x",
        "typescript-1.12": "----formdata-undici-098613119691",
        "python-2.12": "3c2a9d0e5f4b4e7c8a1d6b2f9e0c7a15",
    }[sdk]
    file_part = part('form-data; name="file"; filename="x.txt"', b"x", "text/plain")
    expires = part('form-data; name="expires_in_seconds"', b"3600", "text/plain" if sdk == "ruby" else None)
    body = form(boundary, *((expires, file_part) if expires_first else (file_part, expires)))
    ctype = multipart_type(boundary)
    if sdk == "ruby":
        reply = wire.send(
            "POST", "/v1/files", ruby_headers(beta=None, content_type=ctype), chunks=split(body, 64)
        )
    elif sdk == "typescript-1.12":
        reply = wire.send(
            "POST", "/v1/files", ts_headers("1.12.0", content_type=ctype, length=len(body)), body
        )
    else:
        reply = wire.send("POST", "/v1/files", python_headers(content_type=ctype, length=len(body)), body)
    meta = file_reply(reply, GA)
    assert meta["expires_at"] is not None
    assert parse_time(meta["expires_at"]) - parse_time(meta["created_at"]) == timedelta(seconds=3600)
    again = file_reply(wire.send("GET", f"/v1/files/{meta['id']}", python_headers()), GA)
    assert again["expires_at"] == meta["expires_at"]


def test_ruby_beta_upload_with_expires_part_as_captured(wire: Wire) -> None:
    boundary = "roQl0YoKA1FI4CcHCBgPVDQCCKI_c9XjEy2cba4x"
    body = form(
        boundary,
        part('form-data; name="file"; filename="x.txt"', b"x", "text/plain"),
        part('form-data; name="expires_in_seconds"', b"3600", "text/plain"),
    )
    reply = wire.send(
        "POST", "/v1/files?beta=true", ruby_headers(content_type=multipart_type(boundary)), chunks=[body]
    )
    meta = file_reply(reply, BETA)
    assert (meta["filename"], meta["size_bytes"]) == ("x.txt", 1)


def test_ruby_expires_in_seconds_out_of_range_is_400(wire: Wire) -> None:
    boundary = "roQl0YoKA1FI4CcHCBgPVDQCCKI_c9XjEy2cba4x"
    body = form(
        boundary,
        part('form-data; name="file"; filename="x.txt"', b"x", "text/plain"),
        part('form-data; name="expires_in_seconds"', b"59", "text/plain"),
    )
    reply = wire.send(
        "POST", "/v1/files", ruby_headers(beta=None, content_type=multipart_type(boundary)), chunks=[body]
    )
    assert "expires_in_seconds" in assert_error(reply, 400, "invalid_request_error")


def test_ruby_beta_autopaging_stops_after_page_one_but_after_id_paging_sees_all(wire: Wire) -> None:
    mine = seed(wire, 25, "ruby")
    newest_first = mine[::-1]

    # Ruby 1.65's auto-pager: page 1 with no parameters, then always before_id=first_id.
    seen: list[str] = []
    target = "/v1/files?beta=true"
    requests = 0
    while True:
        requests += 1
        page = page_reply(wire.send("GET", target, ruby_headers()), BETA)
        seen += [f["id"] for f in page["data"]]
        if not page["has_more"] or page["first_id"] is None:
            break
        target = f"/v1/files?beta=true&before_id={page['first_id']}"
        assert requests < 5
    # Page 1 is the 20 newest (default limit) with has_more; the page before the newest file is
    # empty, so the SDK stops having seen only 20 of the 25 files (its bug, not the server's).
    assert requests == 2
    assert seen == newest_first[:20]
    assert page == {"data": [], "first_id": None, "last_id": None, "has_more": False, "next_page": None}

    # Manual after_id paging (what a Ruby user has to write) sees every file exactly once.
    manual: list[str] = []
    target = "/v1/files?beta=true&limit=7"
    while True:
        page = page_reply(wire.send("GET", target, ruby_headers()), BETA)
        manual += [f["id"] for f in page["data"]]
        if not page["has_more"]:
            break
        target = f"/v1/files?beta=true&limit=7&after_id={page['last_id']}"
    assert len(manual) == len(set(manual))
    assert manual == every_id(wire)
    assert [i for i in manual if i in set(mine)] == newest_first


# == .NET (C#)

DOTNET_BOUNDARY = "5b1f8f6e-3a2d-4c4e-9b1e-2f0d5d7c8a91"  # a GUID; .NET quotes it in Content-Type
RESUME_STAR = "filename*=utf-8''r%C3%A9sum%C3%A9.pdf"
RESUME_2047 = "=?utf-8?B?" + base64.b64encode("résumé.pdf".encode()).decode() + "?="


def dotnet_upload(wire: Wire, parts: Sequence[Part], beta: str | None = f"a, {BETA_FLAG}") -> Reply:
    body = form(DOTNET_BOUNDARY, *parts)
    headers = dotnet_headers(
        beta=beta, content_type=f'multipart/form-data; boundary="{DOTNET_BOUNDARY}"', length=len(body)
    )
    return wire.send("POST", "/v1/files?beta=true", headers, body)


@pytest.mark.parametrize(
    "disposition",
    [
        f"form-data; name=file; filename=resume.pdf; {RESUME_STAR}",
        f'form-data; name="file"; filename="resume.pdf"; {RESUME_STAR}',
        f'form-data; name=file; filename="{RESUME_2047}"; {RESUME_STAR}',  # what .NET writes for non-ASCII
        f"form-data; name=file; {RESUME_STAR}; filename=resume.pdf",
        "form-data; name=file; filename=resume.pdf; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
    ],
)
def test_dotnet_rfc5987_filename_star_wins(wire: Wire, disposition: str) -> None:
    reply = dotnet_upload(wire, [part(disposition, PDF, "application/octet-stream", type_first=True)])
    meta = file_reply(reply, BETA)  # "a, files-api-2025-04-14" is beta
    assert meta["filename"] == "résumé.pdf"
    assert meta["mime_type"] == "application/pdf"
    assert meta["size_bytes"] == len(PDF)
    listed = file_reply(wire.send("GET", f"/v1/files/{meta['id']}?beta=true", dotnet_headers()), BETA)
    assert listed["filename"] == "résumé.pdf"


@pytest.mark.parametrize(
    ("content", "filename", "mime"),
    [(PDF, "unnamed.pdf", "application/pdf"), (EXAMPLE, "unnamed.txt", "text/plain")],
)
def test_dotnet_byte_array_without_filename(wire: Wire, content: bytes, filename: str, mime: str) -> None:
    reply = dotnet_upload(
        wire, [part("form-data; name=file", content, "application/octet-stream", type_first=True)]
    )
    meta = file_reply(reply, BETA)
    assert (meta["filename"], meta["mime_type"], meta["size_bytes"]) == (filename, mime, len(content))


def test_dotnet_comma_space_beta_list_is_beta_and_other_flags_alone_are_ga(wire: Wire) -> None:
    page_reply(wire.send("GET", "/v1/files?beta=true&limit=2", dotnet_headers()), BETA)
    page_reply(wire.send("GET", "/v1/files?limit=2", dotnet_headers(beta="a, b")), GA)
    reply = dotnet_upload(
        wire, [part("form-data; name=file; filename=a.txt", b"a", "text/plain")], beta="a, b"
    )
    assert file_reply(reply, GA)["expires_at"] is None


# == Go

GO_BOUNDARY = "5f0c3b9e2a7d41c88e6b0f2d9a4c7e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f"  # 30 random bytes, hex


def go_upload(wire: Wire, disposition: str, content: bytes, betas: Sequence[str]) -> Reply:
    body = form(GO_BOUNDARY, part(disposition, content, "application/octet-stream"))
    headers = go_headers(betas=betas, content_type=multipart_type(GO_BOUNDARY), length=len(body))
    return wire.send("POST", "/v1/files?beta=true", headers, body)


def test_go_repeated_beta_header_lines_and_anonymous_file(wire: Wire) -> None:
    reply = go_upload(
        wire, 'form-data; name="file"; filename="anonymous_file"', EXAMPLE, ["other-beta", BETA_FLAG]
    )
    meta = file_reply(reply, BETA)  # the flag on the second of two header lines still means beta
    assert meta["filename"] == "anonymous_file"
    assert meta["mime_type"] == "text/plain"
    assert meta["created_at"][10] == "T" and meta["created_at"].endswith("Z")
    assert re.search(r"\.\d{6}Z$", meta["created_at"])
    page = page_reply(
        wire.send("GET", "/v1/files?beta=true&limit=3", go_headers(betas=["other-beta", BETA_FLAG])), BETA
    )
    assert meta["id"] in [f["id"] for f in page["data"]]


def test_go_repeated_beta_lines_without_the_flag_are_ga(wire: Wire) -> None:
    reply = go_upload(
        wire, 'form-data; name="file"; filename="anonymous_file"', EXAMPLE, ["other-beta", "more-beta"]
    )
    assert file_reply(reply, GA)["expires_at"] is None


@pytest.mark.parametrize(
    ("content", "filename"),
    [(PDF, "unnamed.pdf"), (EXAMPLE, "unnamed.txt"), (b"\x00\x01\x02\xff", "unnamed")],
)
def test_go_empty_filename_becomes_unnamed(wire: Wire, content: bytes, filename: str) -> None:
    meta = file_reply(go_upload(wire, 'form-data; name="file"; filename=""', content, [BETA_FLAG]), BETA)
    assert meta["filename"] == filename
    assert meta["size_bytes"] == len(content)


def test_go_errors_are_json_envelopes(wire: Wire) -> None:
    headers = go_headers(betas=[BETA_FLAG])
    assert_error(wire.send("GET", "/v1/files/file_missing?beta=true", headers), 404, "not_found_error")
    assert_error(wire.send("GET", "/v1/no/such/path", headers), 404, "not_found_error")
    truncated = form(GO_BOUNDARY, part('form-data; name="file"; filename="a.txt"', EXAMPLE))[:-20]
    upload_headers = go_headers(
        betas=[BETA_FLAG], content_type=multipart_type(GO_BOUNDARY), length=len(truncated)
    )
    assert_error(
        wire.send("POST", "/v1/files?beta=true", upload_headers, truncated), 400, "invalid_request_error"
    )


# == Java and C# beta paging: after_id=last_id until data is empty or last_id is null


def after_id_loop(
    wire: Wire, headers: Headers, limit: int, before_id: str | None = None
) -> list[dict[str, Any]]:
    """The Java/C# auto-pager: ignores has_more; stops on an empty page or a null last_id. Returns
    every page, the final (stopping) one included."""
    pages = []
    after_id = None
    for _ in range(10_000):
        query = [("after_id", after_id), ("before_id", before_id), ("limit", str(limit)), ("beta", "true")]
        target = "/v1/files?" + "&".join(f"{k}={v}" for k, v in query if v is not None)
        page = page_reply(wire.send("GET", target, headers), BETA)
        pages.append(page)
        if not page["data"] or page["last_id"] is None:
            return pages
        after_id = page["last_id"]
    raise AssertionError("the after_id loop never ended")


@pytest.mark.parametrize("sdk", ["java", "csharp"])
def test_java_csharp_after_id_loop_sees_every_file_once(wire: Wire, sdk: str) -> None:
    mine = seed(wire, 25, sdk)
    headers = java_headers() if sdk == "java" else dotnet_headers()
    pages = after_id_loop(wire, headers, limit=10)
    seen = [f["id"] for page in pages for f in page["data"]]
    assert len(seen) == len(set(seen))
    assert seen == every_id(wire)
    assert [i for i in seen if i in set(mine)] == mine[::-1]
    assert pages[-1] == {"data": [], "first_id": None, "last_id": None, "has_more": False, "next_page": None}
    assert all(p["has_more"] for p in pages[:-2]) and not pages[-2]["has_more"]
    assert all(len(p["data"]) == 10 for p in pages[:-2])


def test_before_id_with_after_id_is_the_files_strictly_between(wire: Wire) -> None:
    f = seed(wire, 25, "between")  # f[0] oldest .. f[24] newest
    headers = java_headers()

    def between(after: str, before: str, limit: int = 10) -> dict[str, Any]:
        reply = wire.send(
            "GET", f"/v1/files?after_id={after}&before_id={before}&limit={limit}&beta=true", headers
        )
        return page_reply(reply, BETA)

    def ids(page: dict[str, Any]) -> list[str]:
        return [x["id"] for x in page["data"]]

    first = between(f[20], f[5])
    assert ids(first) == f[19:9:-1] and first["has_more"] is True
    second = between(f[10], f[5])
    assert ids(second) == f[9:5:-1] and second["has_more"] is False
    assert between(f[6], f[5]) == {
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
        "next_page": None,
    }
    exactly_full = between(f[16], f[5])  # exactly `limit` files left: a full page, and nothing more
    assert ids(exactly_full) == f[15:5:-1] and exactly_full["has_more"] is False
    # Crossed or equal bounds: an empty page, never an error.
    assert between(f[5], f[20])["data"] == []
    assert between(f[7], f[7])["data"] == []

    # The SDK loop with a caller's before_id: page 1 is the page right before f[5] (newer, adjacent),
    # then after_id=last_id plus the same before_id leaves nothing strictly between: the loop ends
    # with no error and no file twice.
    pages = after_id_loop(wire, headers, limit=10, before_id=f[5])
    assert [ids(p) for p in pages] == [f[15:5:-1], []]
    assert pages[0]["has_more"] is True


def test_java_loop_survives_deleting_the_last_id_between_pages(wire: Wire) -> None:
    f = seed(wire, 6, "java-delete")
    headers = java_headers()
    page = page_reply(wire.send("GET", "/v1/files?limit=3&beta=true", headers), BETA)
    assert [x["id"] for x in page["data"]] == f[:2:-1]
    assert wire.send("DELETE", f"/v1/files/{page['last_id']}?beta=true", headers).status == 200
    reply = wire.send("GET", f"/v1/files?after_id={page['last_id']}&limit=3&beta=true", headers)
    assert [x["id"] for x in page_reply(reply, BETA)["data"]] == f[2::-1]


@pytest.mark.parametrize(
    "query", ["after_id=file_x", "before_id=nope", "after_id=file_x&before_id=file_y", "after_id=&before_id="]
)
def test_cursor_ids_of_unknown_shape_never_5xx(wire: Wire, query: str) -> None:
    """What the hosted service answers is not known; either a page or a 400 envelope, never a 5xx."""
    reply = wire.send("GET", f"/v1/files?{query}&limit=10&beta=true", java_headers())
    if reply.status == 200:
        page_reply(reply, BETA)
    else:
        assert_error(reply, 400, "invalid_request_error")


# == TypeScript (undici)


def undici_boundary(n: int) -> str:
    return f"----formdata-undici-0{n:011d}"


def test_ts_0121_unknown_file_six_dash_boundary(wire: Wire) -> None:
    boundary = undici_boundary(52501065111)
    body = form(
        boundary, part('form-data; name="file"; filename="unknown_file"', EXAMPLE, "application/octet-stream")
    )
    assert body.startswith(b"------formdata-undici-0")  # the delimiter starts with six dashes
    headers = ts_headers("0.121.0", beta=BETA_FLAG, content_type=multipart_type(boundary), length=len(body))
    meta = file_reply(wire.send("POST", "/v1/files?beta=true", headers, body), BETA)
    assert (meta["filename"], meta["mime_type"], meta["size_bytes"]) == ("unknown_file", "text/plain", 12)
    assert download(wire, meta["id"], ts_headers("0.121.0", beta=BETA_FLAG), "?beta=true") == EXAMPLE


def test_ts_112_no_filename_ga(wire: Wire) -> None:
    boundary = undici_boundary(24685557886)
    body = form(boundary, part('form-data; name="file"', EXAMPLE, "application/octet-stream"))
    headers = ts_headers("1.12.0", content_type=multipart_type(boundary), length=len(body))
    meta = file_reply(wire.send("POST", "/v1/files", headers, body), GA)
    assert (meta["filename"], meta["mime_type"], meta["size_bytes"]) == ("unnamed.txt", "text/plain", 12)
    assert meta["expires_at"] is None
    assert download(wire, meta["id"], ts_headers("1.12.0")) == EXAMPLE


def test_ts_0121_array_form_is_400_with_a_useful_message(wire: Wire) -> None:
    boundary = undici_boundary(40164716185)
    body = form(
        boundary, *(part(f'form-data; name="file[{i}]"', str(b).encode()) for i, b in enumerate(EXAMPLE))
    )
    headers = ts_headers("0.121.0", beta=BETA_FLAG, content_type=multipart_type(boundary), length=len(body))
    before = every_id(wire)
    message = assert_error(
        wire.send("POST", "/v1/files?beta=true", headers, body), 400, "invalid_request_error"
    )
    assert "file[0]" in message and "toFile" in message
    assert every_id(wire) == before  # nothing was stored


@pytest.mark.parametrize("version", ["0.121.0", "1.12.0"])
def test_ts_multipart_with_no_part_is_400(wire: Wire, version: str) -> None:
    boundary = undici_boundary(27116626164)
    body = form(boundary)
    assert body == b"------formdata-undici-027116626164--\r\n"  # 38 bytes, as captured
    beta = BETA_FLAG if version.startswith("0.") else None
    headers = ts_headers(version, beta=beta, content_type=multipart_type(boundary), length=len(body))
    message = assert_error(wire.send("POST", "/v1/files", headers, body), 400, "invalid_request_error")
    assert "file" in message


# == duplicated beta flag


@pytest.mark.parametrize("sdk", ["typescript-0.121", "ruby"])
def test_duplicated_beta_flag_is_beta(wire: Wire, sdk: str) -> None:
    if sdk == "ruby":
        boundary = "8iD5VPCt4zKUt26rU5Lm8AxeK2jaAAV8WeuYn8qy"
        flag = f"{BETA_FLAG}, {BETA_FLAG}"
        body = form(boundary, part('form-data; name="file"; filename="x.txt"', b"x", "text/plain"))
        reply = wire.send(
            "POST",
            "/v1/files?beta=true",
            ruby_headers(beta=flag, content_type=multipart_type(boundary)),
            chunks=[body],
        )
        list_headers = ruby_headers(beta=flag)
    else:
        boundary = undici_boundary(44259185855)
        flag = f"{BETA_FLAG},{BETA_FLAG}"
        body = form(boundary, part('form-data; name="file"; filename="x.txt"', b"x", "text/plain"))
        headers = ts_headers("0.121.0", beta=flag, content_type=multipart_type(boundary), length=len(body))
        reply = wire.send("POST", "/v1/files?beta=true", headers, body)
        list_headers = ts_headers("0.121.0", beta=flag)
    meta = file_reply(reply, BETA)
    assert meta["filename"] == "x.txt"
    page = page_reply(wire.send("GET", "/v1/files?beta=true&limit=1", list_headers), BETA)
    assert page["first_id"] == meta["id"]


# == GA clients


@pytest.mark.parametrize("sdk", ["python-2.12", "typescript-1.12"])
def test_ga_next_page_loop_with_params_repeated(wire: Wire, sdk: str) -> None:
    headers = python_headers() if sdk == "python-2.12" else ts_headers("1.12.0")
    mine = seed(wire, 12, "ga")
    seen: list[str] = []
    target = "/v1/files?limit=5"
    cursors = []
    while True:
        page = page_reply(wire.send("GET", target, headers), GA)
        seen += [f["id"] for f in page["data"]]
        assert len(page["data"]) == 5 or page["next_page"] is None
        if page["next_page"] is None:
            break
        cursors.append(page["next_page"])
        target = f"/v1/files?limit=5&page={page['next_page']}"  # the other params are sent again
    assert len(cursors) >= 2 and len(set(cursors)) == len(cursors)
    assert len(seen) == len(set(seen))
    assert seen == every_id(wire)
    assert [i for i in seen if i in set(mine)] == mine[::-1]


def test_ga_cursor_survives_deletes_and_inserts_between_pages(wire: Wire) -> None:
    mine = seed(wire, 9, "keyset")
    headers = python_headers()
    page = page_reply(wire.send("GET", "/v1/files?limit=3", headers), GA)
    assert [f["id"] for f in page["data"]] == mine[:5:-1]
    anchor = page["data"][-1]["id"]
    assert wire.send("DELETE", f"/v1/files/{anchor}", headers).status == 200  # the cursor's own file
    assert wire.send("DELETE", f"/v1/files/{mine[4]}", headers).status == 200  # one not yet seen
    newer = seed(wire, 1, "keyset-new")
    rest: list[str] = []
    cursor = page["next_page"]
    while cursor is not None:
        page = page_reply(wire.send("GET", f"/v1/files?limit=3&page={cursor}", headers), GA)
        rest += [f["id"] for f in page["data"]]
        cursor = page["next_page"]
    assert [i for i in rest if i in set(mine) | set(newer)] == [mine[5], mine[3], mine[2], mine[1], mine[0]]


def _tamper(cursor: str) -> list[str]:
    body = cursor.removeprefix("page_")
    mid = len(body) // 2
    flipped = body[:mid] + ("A" if body[mid] != "A" else "B") + body[mid + 1 :]
    return [
        "page_" + flipped,
        cursor[:-4],
        cursor + "x",
        body,  # the prefix dropped
        "page_" + "A" * 40,
        "page_",
        "page_!!not-base64!!",
    ]


def test_ga_tampered_page_cursor_is_400(wire: Wire) -> None:
    seed(wire, 2, "cursor")
    headers = ts_headers("1.12.0")
    cursor = page_reply(wire.send("GET", "/v1/files?limit=1", headers), GA)["next_page"]
    assert cursor is not None
    page_reply(
        wire.send("GET", f"/v1/files?limit=1&page={cursor}", headers), GA
    )  # control: the real one works
    for bad in _tamper(cursor):
        reply = wire.send("GET", f"/v1/files?limit=1&page={bad}", headers)
        assert "cursor" in assert_error(reply, 400, "invalid_request_error"), bad


@pytest.mark.parametrize("param", ["after_id", "before_id"])
def test_ga_rejects_beta_cursors(wire: Wire, param: str) -> None:
    (file_id,) = seed(wire, 1, "ga-cursor")
    for headers in (python_headers(), ts_headers("1.12.0"), ruby_headers(beta=None)):
        reply = wire.send("GET", f"/v1/files?{param}={file_id}", headers)
        assert param in assert_error(reply, 400, "invalid_request_error")


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten"])
def test_limit_out_of_range_is_400_in_both_dialects(wire: Wire, limit: str) -> None:
    assert_error(wire.send("GET", f"/v1/files?limit={limit}", python_headers()), 400, "invalid_request_error")
    assert_error(
        wire.send("GET", f"/v1/files?beta=true&limit={limit}", ruby_headers()), 400, "invalid_request_error"
    )
