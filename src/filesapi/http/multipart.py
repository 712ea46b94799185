"""A streaming multipart/form-data reader (RFC 7578) that never holds a whole part in memory.

It is the server's only multipart parser. It survives what the SDKs send: boundaries that start
with dashes (TypeScript's six-dash delimiters, Ruby's boundaries that may begin with ``--``),
chunked bodies, ``filename*`` (RFC 5987), parts with or without ``Content-Type``. Malformed input
raises ``InvalidRequest`` with a message that says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

from filesapi.blobs.base import Chunk
from filesapi.errors import InvalidRequest

__all__ = ["MultipartReader", "Part", "parse_boundary", "parse_header_params"]

_PARAM = re.compile(r'\s*([^\s=;]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?\s*(?:;|$)')
_QUOTED_ESCAPE = re.compile(r'\\([\\"])')
_BOUNDARY_CHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{1,200}")


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``main; a=1; b="x y"`` into ``("main", {"a": "1", "b": "x y"})`` (names lowercased).

    In quoted values only ``\\"`` and ``\\\\`` are escapes: browsers and old clients send Windows
    paths such as ``C:\\a\\b.pdf`` unescaped, and those backslashes must survive.
    """
    main, _, rest = value.partition(";")
    params = _plain_params(rest)
    return main.strip().lower(), _regex_params(rest) if params is None else params


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-_."


def _plain_params(rest: str) -> dict[str, str] | None:
    """``_regex_params`` for the shape every client sends (plain names, values plain or in quotes
    without escapes or semicolons), in a few string operations; None for anything else."""
    if "\\" in rest:
        return None
    params: dict[str, str] = {}
    for piece in rest.split(";"):
        name, eq, raw = piece.partition("=")
        if not eq:
            if '"' in piece:
                return None
            continue  # a name without a value (or nothing at all): skipped
        name = name.strip()
        if not name or name.strip(_NAME_CHARS):
            return None
        raw = raw.strip()
        if '"' in raw:
            if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"' or raw.count('"') != 2:
                return None
            raw = raw[1:-1]
        params.setdefault(name.lower(), raw)
    return params


def _regex_params(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        name, raw = match.group(1).lower(), match.group(2)
        if raw is None:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = _QUOTED_ESCAPE.sub(r"\1", raw[1:-1])
        params.setdefault(name, raw)
    return params


def parse_boundary(content_type: str | None) -> bytes:
    if not content_type:
        raise InvalidRequest("Content-Type must be multipart/form-data with a boundary; none was sent.")
    kind, params = parse_header_params(content_type)
    if kind != "multipart/form-data":
        raise InvalidRequest(f"Content-Type must be multipart/form-data, not {kind or 'empty'!r}.")
    boundary = params.get("boundary", "")
    if not boundary:
        raise InvalidRequest("Content-Type multipart/form-data is missing its boundary parameter.")
    if not _BOUNDARY_CHARS.fullmatch(boundary):
        raise InvalidRequest("The multipart boundary has invalid characters or is longer than 200.")
    return boundary.encode("ascii")


def _decode_ext_value(value: str) -> str | None:
    """RFC 5987 ``charset'lang'percent-encoded`` (as .NET sends in ``filename*``)."""
    charset, sep, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not (sep and sep2):
        return None
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        raise InvalidRequest(
            "The part's filename* is not valid percent-encoded text in its charset."
        ) from None


@dataclass
class Part:
    """One part's headers; read its bytes with ``chunks()`` (or ``read()`` for small fields), or
    take them at once with ``buffered()`` when they have all arrived."""

    name: str
    filename: str | None
    content_type: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    _reader: MultipartReader | None = field(default=None, repr=False)

    def chunks(self) -> AsyncIterator[Chunk]:
        assert self._reader is not None
        return self._reader._body()

    def buffered(self) -> bytes | None:
        """The part's whole body, if it is already in the reader's buffer (a small form often
        arrives in one chunk): then it is consumed, as ``chunks()`` would have. None otherwise,
        and nothing is consumed."""
        assert self._reader is not None
        return self._reader._buffered_body()

    async def read(self, limit: int) -> bytes:
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise InvalidRequest(f"The form field {self.name!r} is longer than {limit} bytes.")
        return bytes(out)


class MultipartReader:
    """``async for part in MultipartReader(stream, boundary)``; each part's body must be read (or
    is skipped) before the next part is produced."""

    def __init__(
        self,
        stream: AsyncIterator[bytes],
        boundary: bytes,
        *,
        max_header_bytes: int = 16 * 1024,
        max_parts: int = 64,
    ) -> None:
        self._stream = aiter(stream)
        self._delimiter = b"\r\n--" + boundary
        # The first delimiter has no CRLF before it; a virtual one lets a single search find all.
        self._buf = bytearray(b"\r\n")
        self._eof = False
        self._max_header_bytes = max_header_bytes
        self._max_parts = max_parts
        self._parts = 0
        self._in_body = False
        self._started = False
        self._ended = False

    async def _fill(self) -> bool:
        while not self._eof:
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._eof = True
                break
            if chunk:
                self._buf += chunk
                return True
        return False

    async def _skip_preamble(self) -> None:
        keep = len(self._delimiter) - 1
        while True:
            idx = self._buf.find(self._delimiter)
            if idx >= 0:
                del self._buf[: idx + len(self._delimiter)]
                return
            if len(self._buf) > keep:
                del self._buf[:-keep]
            if not await self._fill():
                if not self._buf.strip():
                    raise InvalidRequest("The request body is empty: expected a multipart form with a file.")
                raise InvalidRequest("The body has no multipart boundary matching the Content-Type header.")

    async def _after_delimiter(self) -> bool:
        """Consume what follows a delimiter; True when another part follows, False at the end."""
        while len(self._buf) < 2 and await self._fill():
            pass
        head = self._buf[:2]
        if head == b"--":
            return False
        if head == b"\r\n":
            del self._buf[:2]
            return True
        while True:  # transport padding, then CRLF
            stripped = self._buf.lstrip(b" \t")
            if stripped[:2] == b"\r\n":
                del self._buf[: len(self._buf) - len(stripped) + 2]
                return True
            if len(stripped) >= 2 or not await self._fill():
                raise InvalidRequest("Malformed multipart body: a boundary line is followed by garbage.")

    async def _read_headers(self) -> Part:
        while True:
            if self._buf.startswith(b"\r\n"):  # a part with no headers at all
                block = b""
                del self._buf[:2]
                break
            idx = self._buf.find(b"\r\n\r\n")
            if idx >= 0:
                block = bytes(self._buf[:idx])
                del self._buf[: idx + 4]
                break
            if len(self._buf) > self._max_header_bytes:
                raise InvalidRequest(
                    f"A multipart part's headers are longer than {self._max_header_bytes} bytes."
                )
            if not await self._fill():
                raise InvalidRequest("Malformed multipart body: it ends inside a part's headers.")
        if len(block) > self._max_header_bytes:
            raise InvalidRequest(
                f"A multipart part's headers are longer than {self._max_header_bytes} bytes."
            )
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("A multipart part's headers are not valid UTF-8.") from None
        headers: list[tuple[str, str]] = []
        for line in text.split("\r\n") if text else []:
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise InvalidRequest(f"Malformed multipart part header line: {line[:80]!r}.")
            headers.append((name.strip().lower(), value.strip()))
        return self._part(headers)

    def _part(self, headers: list[tuple[str, str]]) -> Part:
        disposition = content_type = None
        for key, value in headers:  # the first of each counts
            if key == "content-disposition":
                disposition = value if disposition is None else disposition
            elif key == "content-type":
                content_type = value if content_type is None else content_type
        if disposition is None:
            raise InvalidRequest("A multipart part has no Content-Disposition header.")
        kind, params = parse_header_params(disposition)
        if kind != "form-data" or "name" not in params:
            raise InvalidRequest("A multipart part's Content-Disposition must be form-data with a name.")
        filename: str | None = None
        if "filename*" in params:
            filename = _decode_ext_value(params["filename*"])
        if filename is None and "filename" in params:
            filename = params["filename"].replace("%22", '"')
        return Part(params["name"], filename, content_type, headers, self)

    async def _next_chunk(self) -> bytes | None:
        while not self._eof:
            try:
                chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._eof = True
                break
            if chunk:
                return chunk
        return None

    async def _body(self) -> AsyncIterator[Chunk]:
        """The part's bytes up to the next delimiter. Between chunks at most ``keep`` bytes (a
        possible start of the delimiter) wait in the buffer; a large chunk with no delimiter
        straddling its start is searched in place and handed on as views into it, never copied."""
        if not self._in_body:
            return
        delimiter = self._delimiter
        keep = len(delimiter) - 1
        while True:
            idx = self._buf.find(delimiter)
            if idx >= 0:
                if idx:
                    yield bytes(self._buf[:idx])
                del self._buf[: idx + len(delimiter)]
                self._in_body = False
                return
            safe = len(self._buf) - keep
            if safe > 0:
                yield bytes(self._buf[:safe])
                del self._buf[:safe]
            chunk = await self._next_chunk()
            if chunk is None:
                raise InvalidRequest(
                    "The multipart body ended before its closing boundary (truncated upload?)."
                )
            if len(chunk) <= 2 * len(delimiter) or (bytes(self._buf) + chunk[:keep]).find(delimiter) >= 0:
                self._buf += chunk  # small, or a delimiter begins in the held tail: the careful way
                continue
            if self._buf:  # no delimiter starts in the tail: it is data
                yield bytes(self._buf)
            view = memoryview(chunk)
            idx = chunk.find(delimiter)
            if idx >= 0:
                if idx:
                    yield view[:idx]
                self._buf = bytearray(view[idx + len(delimiter) :])
                self._in_body = False
                return
            yield view[: len(chunk) - keep]
            self._buf = bytearray(view[len(chunk) - keep :])

    def _buffered_body(self) -> bytes | None:
        if not self._in_body:
            return b""
        idx = self._buf.find(self._delimiter)
        if idx < 0:
            return None
        body = bytes(self._buf[:idx])
        del self._buf[: idx + len(self._delimiter)]
        self._in_body = False
        return body

    def __aiter__(self) -> MultipartReader:
        return self

    async def __anext__(self) -> Part:
        part = await self.next_part()
        if part is None:
            raise StopAsyncIteration
        return part

    async def next_part(self) -> Part | None:
        """The next part (its body unread), or None after the closing delimiter."""
        if not self._started:
            self._started = True
            await self._skip_preamble()
        elif self._in_body:  # the caller did not read the previous part: skip it
            async for _ in self._body():
                pass
        if self._ended or not await self._after_delimiter():
            self._ended = True
            return None
        self._parts += 1
        if self._parts > self._max_parts:
            raise InvalidRequest(f"The multipart body has more than {self._max_parts} parts.")
        part = await self._read_headers()
        self._in_body = True
        return part
