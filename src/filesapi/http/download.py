"""Download responses: Range (one range, RFC 9110), conditional requests, safe Content-Disposition,
and local files handed to the ASGI server by path (pathsend), so their bytes never pass through
Python (granian 2.8 reads and writes them in 128 KiB chunks in Rust; it does not use sendfile)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from filesapi.blobs import ByteRange
from filesapi.numbers import decimal

__all__ = ["BlobResponse", "RangeNotSatisfiable", "content_disposition", "parse_range", "supports_pathsend"]

# ASCII digits only (``\d`` would take any script's digits). Positions longer than any file can be
# are read as "beyond the end", never converted digit by digit.
_RANGE = re.compile(r"bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.IGNORECASE)
_BEYOND_ANY_FILE = 1 << 63
_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\%]')
_RFC5987_SAFE = "!#$&+-.^_`|~"


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range asked for, or None for the whole file (no header, several ranges, or a
    header we do not understand: RFC 9110 lets a server ignore those). Raises
    ``RangeNotSatisfiable`` when the one range lies wholly outside the file."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = (_position(text) for text in match.groups())
    if first is not None:
        start = first
        if last is not None and last < start:
            return None  # invalid: ignore the header
        if start >= size:
            raise RangeNotSatisfiable
        return ByteRange(start, min(last, size - 1) if last is not None else size - 1)
    if last is None:
        return None
    suffix = last
    if suffix == 0 or size == 0:
        raise RangeNotSatisfiable
    return ByteRange(max(0, size - suffix), size - 1)


def _position(digits: str) -> int | None:
    if not digits:
        return None
    value = decimal(digits)
    return _BEYOND_ANY_FILE if value is None else value


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name in RFC 5987 form. The fallback keeps
    printable ASCII only and never a quote or backslash, so no filename can break the header."""
    fallback = _FALLBACK_UNSAFE.sub("_", filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe=_RFC5987_SAFE)}"


def supports_pathsend(scope: Scope) -> bool:
    return "http.response.pathsend" in scope.get("extensions", {})


class BlobResponse:
    """Sends headers, then the body: from an async iterator, or by path when the ASGI server has the
    pathsend extension (the server then streams the file itself), or nothing (HEAD, 304)."""

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        *,
        chunks: AsyncIterator[bytes] | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        self.chunks = chunks
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.chunks is None:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            if self.path is not None:
                await send({"type": "http.response.pathsend", "path": self.path})
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        try:
            # The first chunk before the headers: an error that shows up at once (a missing blob,
            # or a small file failing its checksum) still gets a proper error response.
            chunk = await anext(self.chunks, None)
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            while chunk is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await anext(self.chunks, None)
        finally:
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
