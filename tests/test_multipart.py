"""The streaming multipart reader on its own: framing, splits at every byte, header parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filesapi.errors import InvalidRequest
from filesapi.http import multipart
from filesapi.http.multipart import MultipartReader, parse_boundary, parse_header_params


async def _stream(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    last = 0
    for cut in sorted(set(cuts)):
        yield data[last:cut]
        last = cut
    yield data[last:]


async def _parse(
    data: bytes, boundary: bytes, cuts: list[int] | None = None
) -> list[tuple[str, str | None, bytes]]:
    out = []
    async for part in MultipartReader(_stream(data, cuts or []), boundary):
        body = b"".join([c async for c in part.chunks()])
        out.append((part.name, part.filename, body))
    return out


def _form(boundary: bytes, *parts: tuple[bytes, bytes]) -> bytes:
    out = b""
    for headers, body in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + body + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    content=st.binary(max_size=300).map(lambda b: b.replace(b"\r\n--", b"\r\n-"))
    | st.sampled_from([b"\r\n-", b"\r\n--b", b"--bound", b"\r\n--boun", b"\r\r\n\n--", b"-" * 50]),
    boundary=st.sampled_from([b"bound", b"--bound", b"----formdata-undici-012345678901", b"a-_b"]),
    data=st.data(),
)
async def test_any_content_survives_any_split(content: bytes, boundary: bytes, data: st.DataObject) -> None:
    body = _form(boundary, (b'Content-Disposition: form-data; name="file"; filename="f"', content))
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=8))
    if b"\r\n--" + boundary in b"\r\n" + content:  # content that contains the delimiter is not framable
        return
    assert await _parse(body, boundary, cuts) == [("file", "f", content)]


async def test_every_single_byte_split() -> None:
    boundary = b"xyz"
    body = _form(
        boundary,
        (b'Content-Disposition: form-data; name="expires_in_seconds"', b"3600"),
        (
            b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: x/y',
            b"\r\n-\r\n--xy",
        ),
    )
    expected = [("expires_in_seconds", None, b"3600"), ("file", "a.bin", b"\r\n-\r\n--xy")]
    for cut in range(len(body) + 1):
        assert await _parse(body, boundary, [cut]) == expected
    assert await _parse(body, boundary, list(range(len(body)))) == expected  # one byte at a time


async def test_unread_parts_are_skipped() -> None:
    body = _form(
        b"b",
        (b'Content-Disposition: form-data; name="skip"', b"s" * 100_000),
        (b'Content-Disposition: form-data; name="file"', b"keep"),
    )
    names = []
    async for part in MultipartReader(_stream(body, [7, 5000, 60000]), b"b"):
        names.append(part.name)
        if part.name == "file":
            assert await part.read(100) == b"keep"
    assert names == ["skip", "file"]


async def test_field_read_limit() -> None:
    body = _form(b"b", (b'Content-Disposition: form-data; name="f"', b"x" * 2000))
    with pytest.raises(InvalidRequest, match="longer than 1024"):
        async for part in MultipartReader(_stream(body, []), b"b"):
            await part.read(1024)


async def test_filename_star_wins_and_is_decoded() -> None:
    headers = b"Content-Disposition: form-data; name=file; filename=\"fallback.pdf\"; filename*=utf-8''r%C3%A9sum%C3%A9.pdf"
    assert await _parse(_form(b"b", (headers, b"x")), b"b") == [("file", "résumé.pdf", b"x")]


async def test_bad_filename_star_is_400() -> None:
    headers = b"Content-Disposition: form-data; name=file; filename*=utf-8''%FF%FE"
    with pytest.raises(InvalidRequest, match="filename"):
        await _parse(_form(b"b", (headers, b"x")), b"b")


async def test_transport_padding_after_boundary() -> None:
    body = b'--b  \t\r\nContent-Disposition: form-data; name="file"\r\n\r\nv\r\n--b--'
    assert await _parse(body, b"b") == [("file", None, b"v")]


_PARAM_BITS = ["name", "filename", "filename*", "NAME", "x", "=", ";", '"', "\\", " ", "\t", "\x1c", "\xa0"]
_PARAM_BITS += ["a b", "é", "file.txt", "C:\\a", "''", "%22", "*", "a=b"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PARAM_BITS), max_size=14).map("".join))
def test_the_quick_parameter_parser_says_what_the_regex_says(rest: str) -> None:
    """The common headers take a few string operations; whatever they say must be what the full
    parser says (and anything they cannot read goes to it)."""
    quick = multipart._plain_params(rest)
    if quick is not None:
        assert quick == multipart._regex_params(rest)


def test_the_quick_parameter_parser_reads_what_clients_send() -> None:
    for rest in ('; name="file"; filename="small.txt"', "; boundary=----formdata-undici-0123", "; name=file"):
        assert multipart._plain_params(rest) is not None


def test_header_params() -> None:
    assert parse_header_params('form-data; name="file"; filename="a \\"q\\" b.txt"') == (
        "form-data",
        {"name": "file", "filename": 'a "q" b.txt'},
    )
    # Windows paths sent unescaped keep their backslashes.
    assert (
        parse_header_params('form-data; name="file"; filename="C:\\a\\b.pdf"')[1]["filename"]
        == "C:\\a\\b.pdf"
    )
    assert parse_header_params("form-data; NAME=file; x")[1] == {"name": "file"}


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('multipart/form-data; boundary="a b:c"', b"a b:c"),
        ("Multipart/Form-Data;boundary=----formdata-undici-0123", b"----formdata-undici-0123"),
    ],
)
def test_parse_boundary(header: str, boundary: bytes) -> None:
    assert parse_boundary(header) == boundary


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "a" * 201,
        "multipart/form-data; boundary=a\x00b",
    ],
)
def test_bad_boundaries(header: str | None) -> None:
    with pytest.raises(InvalidRequest):
        parse_boundary(header)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
async def test_large_chunks_with_delimiter_lookalikes_at_every_edge(data: st.DataObject) -> None:
    """Big chunks take the zero-copy path: partial delimiters at chunk edges must not fool it."""
    boundary = data.draw(st.sampled_from([b"bound", b"--bound", b"----formdata-undici-012345678901"]))
    delimiter = b"\r\n--" + boundary
    pieces = st.one_of(
        st.binary(min_size=1, max_size=3000),
        st.integers(1, len(delimiter) - 1).map(lambda k: delimiter[:k]),
        st.sampled_from([b"\r\n", b"\r", b"-", b"--", b"\r\n-"]),
    )
    content = b"".join(data.draw(st.lists(pieces, max_size=12)))
    if delimiter in b"\r\n" + content:
        return
    body = _form(
        boundary,
        (b'Content-Disposition: form-data; name="file"; filename="f"', content),
        (b'Content-Disposition: form-data; name="after"', b"tail field"),
    )
    # Cut just around where the real delimiters sit, plus anywhere.
    edges = [i for i in range(len(body)) if body.startswith(delimiter, i)]
    near = [e + d for e in edges for d in (-2, -1, 0, 1, 3, len(delimiter) - 1, len(delimiter))]
    cuts = data.draw(st.lists(st.sampled_from(near + list(range(0, len(body), 97))), max_size=6))
    cuts = [c for c in cuts if 0 <= c <= len(body)]
    assert await _parse(body, boundary, cuts) == [("file", "f", content), ("after", None, b"tail field")]


async def _parse_taking_buffered(
    data: bytes, boundary: bytes, cuts: list[int]
) -> tuple[list[tuple[str, str | None, bytes]], int]:
    """As ``_parse``, taking each part whole with ``buffered()`` when it offers it; also how many
    parts it offered."""
    out, taken = [], 0
    async for part in MultipartReader(_stream(data, cuts), boundary):
        body = part.buffered()
        if body is None:
            body = b"".join([c async for c in part.chunks()])
        else:
            taken += 1
            assert b"".join([c async for c in part.chunks()]) == b""  # consumed
        out.append((part.name, part.filename, body))
    return out, taken


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    content=st.binary(max_size=300).map(lambda b: b.replace(b"\r\n--", b"\r\n-")),
    boundary=st.sampled_from([b"bound", b"--bound", b"----formdata-undici-012345678901"]),
    data=st.data(),
)
async def test_a_part_taken_whole_is_the_part_read_in_chunks(
    content: bytes, boundary: bytes, data: st.DataObject
) -> None:
    body = _form(
        boundary,
        (b'Content-Disposition: form-data; name="file"; filename="f"', content),
        (b'Content-Disposition: form-data; name="after"', b"tail"),
    )
    if b"\r\n--" + boundary in b"\r\n" + content:
        return
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    parts, taken = await _parse_taking_buffered(body, boundary, cuts)
    assert parts == [("file", "f", content), ("after", None, b"tail")]
    if not cuts:  # the whole form in one chunk: every part is offered whole
        assert taken == 2


async def test_buffered_is_none_until_the_part_has_arrived_and_then_consumes_nothing() -> None:
    body = _form(b"b", (b'Content-Disposition: form-data; name="file"', b"0123456789" * 50))
    whole, taken = await _parse_taking_buffered(body, b"b", [])
    assert taken == 1 and whole == [("file", None, b"0123456789" * 50)]
    split = body.index(b"0123456789") + 100  # the part's body is cut in two
    parts, taken = await _parse_taking_buffered(body, b"b", [split])
    assert taken == 0 and parts == whole


async def test_next_part_says_none_after_the_end_every_time() -> None:
    reader = MultipartReader(
        _stream(_form(b"b", (b'Content-Disposition: form-data; name="a"', b"x")), []), b"b"
    )
    part = await reader.next_part()
    assert part is not None and await part.read(10) == b"x"
    assert await reader.next_part() is None
    assert await reader.next_part() is None
