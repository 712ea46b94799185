"""The two wire dialects of the Files API and how each shows a file.

Beta: any ``anthropic-beta`` value names ``files-api-2025-04-14`` (values come comma-separated,
with or without spaces, as repeated header lines, or duplicated). GA: everything else.
"""

from __future__ import annotations

import enum
import functools
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

import orjson

from filesapi.models import FilePage, FileRecord

__all__ = [
    "BETA_FLAG",
    "Dialect",
    "dump",
    "file_json",
    "file_json_bytes",
    "files_page_bytes",
    "format_time",
    "is_beta",
]

BETA_FLAG = "files-api-2025-04-14"
_K = TypeVar("_K")
_V = TypeVar("_V")


class Dialect(enum.Enum):
    BETA = "beta"
    GA = "ga"


def is_beta(beta_header_values: Iterable[str]) -> bool:
    return any(token.strip() == BETA_FLAG for value in beta_header_values for token in value.split(","))


@functools.lru_cache(maxsize=4096)  # files uploaded in the same second share it
def _second(seconds: int) -> str:
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def format_time(us: int) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``, e.g. ``2025-04-15T18:37:24.100435Z``."""
    seconds, micros = divmod(us, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z"


def file_json(record: FileRecord, dialect: Dialect) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "type": "file",
        "filename": record.filename,
        "mime_type": record.mime_type,
        "size_bytes": record.size_bytes,
        "created_at": format_time(record.created_at_us),
        "downloadable": record.downloadable,
    }
    # The newest SDK's beta.files speaks GA on the wire yet reads ``scope``, so GA shows both.
    body["scope"] = None if record.scope_id is None else {"type": "session", "id": record.scope_id}
    if dialect is Dialect.GA:
        body["expires_at"] = None if record.expires_at_us is None else format_time(record.expires_at_us)
    return body


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dump(body: Any) -> bytes:
    """Compact JSON, UTF-8, nothing escaped that need not be: orjson (several times faster), and
    the standard library for what orjson refuses (an integer past 64 bits); the two agree byte
    for byte on everything else (tests/test_hot_path.py)."""
    try:
        return orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        return _encode(body).encode("utf-8")


class _KeptByIdentity(Generic[_K, _V]):
    """Values kept per object, found by identity: an entry holds its object, so while it is here
    no other object can have its id. The objects are never changed, so a value never goes stale.
    Past ``budget`` (the sum of the entries' costs) everything kept is forgotten."""

    __slots__ = ("_budget", "_kept", "_spent")

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._kept: dict[int, tuple[_K, _V]] = {}
        self._spent = 0

    def get(self, key: _K) -> _V | None:
        kept = self._kept.get(id(key))
        return kept[1] if kept is not None and kept[0] is key else None

    def put(self, key: _K, value: _V, cost: int = 1) -> None:
        if self._spent + cost > self._budget:
            self._kept.clear()
            self._spent = 0
        self._kept[id(key)] = (key, value)
        self._spent += cost

    def values(self) -> list[_V]:
        return [value for _, value in self._kept.values()]


# Per dialect: each record's JSON, and each page's files' JSON joined (the metadata store hands out
# the same record for an equal row, and the same page while the workspace's files are unchanged).
_KEPT_JSON = 8192  # records
_KEPT_PAGE_BYTES = 8 << 20
_json: dict[Dialect, _KeptByIdentity[FileRecord, bytes]] = {d: _KeptByIdentity(_KEPT_JSON) for d in Dialect}
_page_json: dict[Dialect, _KeptByIdentity[list[FileRecord], bytes]] = {
    d: _KeptByIdentity(_KEPT_PAGE_BYTES) for d in Dialect
}


def file_json_bytes(record: FileRecord, dialect: Dialect) -> bytes:
    """``dump(file_json(record, dialect))``, kept per record object: the files read again and again
    cost a dictionary lookup by identity, not a hash of every field."""
    kept = _json[dialect]
    body = kept.get(record)
    if body is None:
        body = dump(file_json(record, dialect))
        kept.put(record, body)
    return body


def _page_data(records: list[FileRecord], dialect: Dialect) -> bytes:
    kept = _page_json[dialect]
    data = kept.get(records)
    if data is None:
        data = b",".join([file_json_bytes(r, dialect) for r in records])
        kept.put(records, data, len(data))
    return data


def files_page_bytes(
    records: Sequence[FileRecord], dialect: Dialect, rest: dict[str, Any], *, page: FilePage | None = None
) -> bytes:
    """``dump({"data": [file_json(r, dialect) ...], **rest})``, from the files' kept JSON. The
    records of a ``page`` from the metadata store are joined once per page."""
    if page is not None and page.files is records:
        data = _page_data(page.files, dialect)
    else:
        data = b",".join([file_json_bytes(r, dialect) for r in records])
    tail = dump(rest)[1:] if rest else b"}"
    return b'{"data":[' + data + b"]" + (b"," + tail if rest else tail)
