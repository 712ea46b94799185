"""Resolution: find every file reference in a Messages request, check it against the caller's
workspace, and produce the request with each file inlined, as a stream of JSON bytes.

The outgoing body is never built whole: the request is serialized once with a placeholder where
each file source goes, and the placeholders are filled by streaming the file's bytes through a
base64 encoder (PDFs, images) on the way to the upstream. Text files are read whole (they must be
checked to be UTF-8 and JSON-escaped before their size is known); they are bounded by the upstream's
request limit, checked against their stored size first.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from filesapi.errors import FileTooLarge, InvalidRequest
from filesapi.models import FileRecord, Principal
from filesapi.service import FileService

__all__ = [
    "IMAGE_TYPES",
    "FileRef",
    "Resolution",
    "ResolvedFile",
    "find_file_refs",
    "is_plain_text",
    "resolve",
]

PDF = "application/pdf"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Besides text/*: formats that are plain text in all but name, which a model reads as they are.
_TEXT_APPLICATION_TYPES = frozenset(
    {
        "application/json",
        "application/jsonl",
        "application/x-ndjson",
        "application/yaml",
        "application/x-yaml",
        "application/xml",
        "application/toml",
        "application/sql",
        "application/javascript",
        "application/typescript",
        "application/x-sh",
    }
)
_MAX_DEPTH = 8  # tool_result blocks nest content; nothing legitimate goes deeper


def is_plain_text(mime_type: str) -> bool:
    """A file the gateway sends as a ``text/plain`` document source."""
    base = mime_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in _TEXT_APPLICATION_TYPES


@dataclass
class FileRef:
    """A block whose source names a file: where it is, for messages, and the block to rewrite."""

    file_id: str
    kind: str  # "document" or "image"
    where: str  # e.g. messages[0].content[2]
    block: dict[str, Any]
    document_index: int | None


@dataclass
class ResolvedFile:
    ref: FileRef
    record: FileRecord
    media_type: str  # what the inlined source says
    text: bytes | None = None  # JSON-escaped text (no quotes) for plain-text documents
    raw: bytes | None = None  # the text file's bytes (for the mock's checksum)

    @property
    def source_prefix(self) -> bytes:
        kind = "text" if self.text is not None else "base64"
        return f'{{"type":"{kind}","media_type":"{self.media_type}","data":"'.encode()

    @property
    def data_length(self) -> int:
        if self.text is not None:
            return len(self.text)
        return 4 * ((self.record.size_bytes + 2) // 3)

    def summary(self) -> dict[str, Any]:
        """What logs and the console show: never the bytes."""
        return {
            "id": self.record.id,
            "filename": self.record.filename,
            "media_type": self.record.mime_type,
            "size_bytes": self.record.size_bytes,
            "block": self.ref.where,
        }


_SOURCE_SUFFIX = b'"}'


@dataclass
class Resolution:
    """The request after resolution. ``files`` in request order; ``documents`` maps each
    file-derived document's ``document_index`` to its file id (for citations)."""

    raw: bytes
    body: dict[str, Any]
    files: list[ResolvedFile] = field(default_factory=list)
    documents: dict[int, str] = field(default_factory=dict)
    _segments: list[bytes] = field(default_factory=list)

    @property
    def content_length(self) -> int:
        if not self.files:
            return len(self.raw)
        fixed = sum(len(s) for s in self._segments)
        return fixed + sum(len(f.source_prefix) + f.data_length + len(_SOURCE_SUFFIX) for f in self.files)

    @property
    def resolved_bytes(self) -> int:
        return sum(f.record.size_bytes for f in self.files)

    async def chunks(self, service: FileService) -> AsyncIterator[bytes]:
        """The outgoing body. Without files it is the client's body, byte for byte."""
        if not self.files:
            yield self.raw
            return
        for segment, resolved in zip(self._segments, self.files, strict=False):
            yield segment + resolved.source_prefix
            if resolved.text is not None:
                yield resolved.text
            else:
                async for encoded in _base64(await service.content(resolved.record)):
                    yield encoded
            yield _SOURCE_SUFFIX
        yield self._segments[-1]


async def _base64(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Base64 of a byte stream, chunk by chunk (each cut at a multiple of 3 bytes)."""
    rest = b""
    async for chunk in chunks:
        data = rest + chunk if rest else chunk
        cut = len(data) - len(data) % 3
        rest = data[cut:]
        if cut:
            yield base64.b64encode(memoryview(data)[:cut])
    if rest:
        yield base64.b64encode(rest)


def _blocks(content: Any, where: str, depth: int = 0) -> Iterator[tuple[dict[str, Any], str]]:
    if not isinstance(content, list) or depth > _MAX_DEPTH:
        return
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        here = f"{where}[{i}]"
        yield block, here
        if block.get("type") == "tool_result":
            yield from _blocks(block.get("content"), here + ".content", depth + 1)


def find_file_refs(body: dict[str, Any]) -> tuple[list[FileRef], int]:
    """Every block with a file source, in request order, and how many documents there are.
    A ``container_upload`` block or a malformed file source is a 400."""
    refs: list[FileRef] = []
    documents = 0
    messages = body.get("messages")
    if not isinstance(messages, list):
        return refs, 0
    for m, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        for block, where in _blocks(message.get("content"), f"messages[{m}].content"):
            kind = block.get("type")
            if kind == "container_upload":
                raise InvalidRequest(
                    f"{where}: container_upload blocks cannot pass through the filesapi gateway: a code "
                    "execution container reads its files from the hosted Files API, which does not know "
                    "this server's file ids. Use a document or image block instead."
                )
            index = None
            if kind == "document":
                index = documents
                documents += 1
            source = block.get("source")
            if kind not in ("document", "image") or not isinstance(source, dict):
                continue
            if source.get("type") != "file":
                continue
            file_id = source.get("file_id")
            if not isinstance(file_id, str) or not file_id:
                raise InvalidRequest(f"{where}.source.file_id: a file source needs a file_id string.")
            refs.append(FileRef(file_id, kind, where, block, index))
    return refs, documents


def _inline_type(ref: FileRef, record: FileRecord) -> str:
    """The media type the inlined source carries, or a 400 naming the block and the file's type."""
    base = record.mime_type.split(";", 1)[0].strip().lower()
    if ref.kind == "image":
        if base in IMAGE_TYPES:
            return base
        wanted = "an image block takes JPEG, PNG, GIF or WebP images"
    else:
        if base == PDF:
            return PDF
        if is_plain_text(base):
            return "text/plain"
        wanted = "a document block takes PDF and plain-text files"
    raise InvalidRequest(
        f"{ref.where}: file {record.id} ({record.filename}) is {record.mime_type}, and {wanted}."
    )


async def _read_text(service: FileService, resolved: ResolvedFile) -> None:
    parts = [chunk async for chunk in await service.content(resolved.record)]
    raw = b"".join(parts)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(
            f"{resolved.ref.where}: file {resolved.record.id} ({resolved.record.mime_type}) is not UTF-8 "
            "text, so it cannot be sent as a plain-text document."
        ) from None
    resolved.raw = raw
    resolved.text = json.dumps(text.removeprefix("\ufeff"), ensure_ascii=False)[1:-1].encode()


def _too_large(size: int, limit: int) -> FileTooLarge:
    return FileTooLarge(
        f"With its files inlined the request would be {size} bytes, over the upstream's limit of "
        f"{limit} bytes (filesapi serve --upstream-max-request)."
    )


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


async def resolve(service: FileService, principal: Principal, raw: bytes, limit: int) -> Resolution:
    """Check every file reference of the request (404, 400, 413 before anything is sent) and
    prepare the outgoing body."""
    body = parse_body(raw)
    refs, _ = find_file_refs(body)
    resolution = Resolution(raw=raw, body=body)
    if not refs:
        return resolution
    for ref in refs:
        record = await service.readable(principal, ref.file_id)
        resolution.files.append(ResolvedFile(ref, record, _inline_type(ref, record)))
        if ref.document_index is not None:
            resolution.documents[ref.document_index] = record.id
    # A lower bound before reading anything: the body around the sources, base64 lengths, and at
    # least the stored size of each text file (its escaped length is known once it is read).
    least = len(raw) + sum(
        f.record.size_bytes if f.media_type == "text/plain" else f.data_length for f in resolution.files
    )
    if least > limit:
        raise _too_large(least, limit)
    for resolved in resolution.files:
        if resolved.media_type == "text/plain":
            await _read_text(service, resolved)
    nonce = secrets.token_hex(12)
    for i, resolved in enumerate(resolution.files):
        resolved.ref.block["source"] = f"filesapi-inline-{nonce}-{i}"
    serialized = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    for resolved in resolution.files:  # the parsed body keeps the client's sources (for the mock)
        resolved.ref.block["source"] = {"type": "file", "file_id": resolved.ref.file_id}
    resolution._segments = re.split(rb'"filesapi-inline-' + nonce.encode() + rb'-\d+"', serialized)
    assert len(resolution._segments) == len(resolution.files) + 1
    if resolution.content_length > limit:
        raise _too_large(resolution.content_length, limit)
    return resolution
