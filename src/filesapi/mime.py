"""Filename rules and MIME type detection for uploads.

Most SDKs label every part ``application/octet-stream`` (Java always, Ruby for files, TS for
streams), so the stored type comes from the first that answers: a specific declared type, the
content's magic number, the filename's extension, a UTF-8 text check, else octet-stream.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from filesapi.errors import InvalidRequest

__all__ = [
    "CONTROL_CHARACTERS",
    "MAX_FILENAME_LENGTH",
    "SNIFF_BYTES",
    "clean_filename",
    "default_filename",
    "detect_mime_type",
]

MAX_FILENAME_LENGTH = 255
SNIFF_BYTES = 4096
_GENERIC = {
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
}
_MIME_SHAPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A filename is shown to people: beside C0 controls, refuse C1 controls and the bidirectional
# embeddings, overrides and isolates that make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_FILENAME_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# Python's built-in table only (MimeTypes() ignores /etc/mime.types), so answers match on every machine.
_TYPES = mimetypes.MimeTypes()
for _type, _ext in [
    ("text/markdown", ".md"),
    ("text/markdown", ".markdown"),
    ("application/jsonl", ".jsonl"),
    ("application/yaml", ".yaml"),
    ("application/yaml", ".yml"),
    ("text/x-python", ".py"),
    ("application/typescript", ".ts"),
    ("image/webp", ".webp"),
    ("image/avif", ".avif"),
    ("image/heic", ".heic"),
    ("audio/mp4", ".m4a"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"),
]:
    _TYPES.add_type(_type, _ext)

_PREFERRED_EXTENSION = {
    "text/plain": ".txt",
    "image/jpeg": ".jpg",
    "application/json": ".json",
    "text/csv": ".csv",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "image/svg+xml": ".svg",
    "image/tiff": ".tiff",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
}

# (offset, signature, type); a container (zip) defers to a more specific extension.
_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"\x28\xb5\x2f\xfd", "application/zstd"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"\x00asm", "application/wasm"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftypM4A", "audio/mp4"),
    (4, b"ftypavif", "image/avif"),
    (4, b"ftypheic", "image/heic"),
    (4, b"ftyp", "video/mp4"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
]
_CONTAINERS = {"application/zip"}


def clean_filename(raw: str | None) -> str | None:
    """Keep only the final path component. None when nothing usable remains.

    Raises ``InvalidRequest`` for control or bidirectional-control characters or more than 255
    characters.
    """
    if raw is None:
        return None
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    if name.strip() in ("", ".", ".."):
        return None  # a blank name is no name: the file gets the default one
    forbidden = _FILENAME_FORBIDDEN.search(name)
    if forbidden:
        char = forbidden.group()
        what = unicodedata.name(char, "a control character")
        raise InvalidRequest(
            f"filename must not contain U+{ord(char):04X} ({what}): control characters (U+0000-U+001F, "
            "U+007F-U+009F) and bidirectional controls (U+202A-U+202E, U+2066-U+2069) are refused."
        )
    if len(name) > MAX_FILENAME_LENGTH:
        raise InvalidRequest(
            f"filename is too long: {len(name)} characters, at most {MAX_FILENAME_LENGTH} are allowed."
        )
    return name


def default_filename(mime_type: str) -> str:
    """``unnamed`` plus the extension of the type, when there is one."""
    if mime_type in _GENERIC:
        return "unnamed"
    ext = _PREFERRED_EXTENSION.get(mime_type) or _TYPES.guess_extension(mime_type, strict=False)
    return "unnamed" + (ext or "")


def _normalize(declared: str | None) -> str:
    if not declared:
        return ""
    value = declared.split(";", 1)[0].strip().lower()
    return value if _MIME_SHAPE.fullmatch(value) else ""


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"RIFF") and len(head) >= 12:
        kind = head[8:12]
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(kind)
    for offset, signature, mime in _MAGIC:
        if head[offset : offset + len(signature)] == signature:
            return mime
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the sniff window is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def detect_mime_type(declared: str | None, filename: str | None, head: bytes, *, complete: bool) -> str:
    """The type to store. ``head``: the file's first bytes; ``complete``: head is the whole file."""
    specific = _normalize(declared)
    if specific not in _GENERIC:
        return specific
    sniffed = _sniff(head)
    by_extension = _TYPES.guess_type(filename, strict=False)[0] if filename else None
    if sniffed and sniffed not in _CONTAINERS:
        return sniffed
    if by_extension:
        return by_extension
    if sniffed:
        return sniffed
    if _looks_like_text(head if complete else head[:SNIFF_BYTES]):
        return "text/plain"
    return "application/octet-stream"
