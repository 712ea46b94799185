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
from typing import Any

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


class Dialect(enum.Enum):
    BETA = "beta"
    GA = "ga"


def is_beta(beta_header_values: Iterable[str]) -> bool:
    return any(token.strip() == BETA_FLAG for value in beta_header_values for token in value.split(","))


@functools.lru_cache(maxsize=4096)  # the same files are read again and again
def format_time(us: int) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``, e.g. ``2025-04-15T18:37:24.100435Z``."""
    seconds, micros = divmod(us, 1_000_000)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f".{micros:06d}Z"
    )


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


_KEPT_JSON = 8192
_KEPT_PAGE_BYTES = 8 << 20  # the pages' joined JSON kept, per dialect
# Per dialect, id(record) -> (record, its JSON). The entry holds the record, so while it is here no
# other object can have its id; records are frozen, so the JSON can never go stale.
_json_ga: dict[int, tuple[FileRecord, bytes]] = {}
_json_beta: dict[int, tuple[FileRecord, bytes]] = {}


def file_json_bytes(record: FileRecord, dialect: Dialect) -> bytes:
    """``dump(file_json(record, dialect))``, kept per record object: the metadata store hands out
    the same record for the same row (every column equal), so the files read again and again
    cost a dictionary lookup by identity, not a hash of every field."""
    kept_by_id = _json_ga if dialect is Dialect.GA else _json_beta
    kept = kept_by_id.get(id(record))
    if kept is not None and kept[0] is record:
        return kept[1]
    body = dump(file_json(record, dialect))
    if len(kept_by_id) >= _KEPT_JSON:
        kept_by_id.clear()
    kept_by_id[id(record)] = (record, body)
    return body


# Per dialect, id(list of records) -> (that list, its files' JSON joined): the metadata store hands
# out the same page while the workspace's files are unchanged, and its list is never changed.
_data_ga: dict[int, tuple[list[FileRecord], bytes]] = {}
_data_beta: dict[int, tuple[list[FileRecord], bytes]] = {}
_data_sizes = {Dialect.GA: [0], Dialect.BETA: [0]}  # the bytes each holds, counted as kept


def _page_data(records: list[FileRecord], dialect: Dialect) -> bytes:
    kept_by_id = _data_ga if dialect is Dialect.GA else _data_beta
    kept = kept_by_id.get(id(records))
    if kept is not None and kept[0] is records:
        return kept[1]
    data = b",".join([file_json_bytes(r, dialect) for r in records])
    sizes = _data_sizes[dialect]
    sizes[0] += len(data)
    if sizes[0] > _KEPT_PAGE_BYTES:
        kept_by_id.clear()
        sizes[0] = len(data)
    kept_by_id[id(records)] = (records, data)
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
