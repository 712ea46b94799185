"""Rows of the metadata database as the models the rest of filesapi reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy.engine import Row

from filesapi.models import ApiKey, FileRecord, Workspace

__all__ = ["api_key", "file_maker", "file_record"]


def file_record(row: Row[Any, Any] | Mapping[str, Any]) -> FileRecord:
    m = row._mapping if isinstance(row, Row) else row
    return file_maker(tuple(m))(tuple(m.values()))


_FILE_COLUMNS = (
    "id",
    "workspace_id",
    "filename",
    "mime_type",
    "size_bytes",
    "created_at_us",
    "downloadable",
    "checksum",
    "scope_id",
    "expires_at_us",
    "quarantined_at_us",
    "stored_inline",
)


_KEPT_RECORDS = 8192


@cache
def file_maker(columns: tuple[str, ...]) -> Callable[[Sequence[Any]], FileRecord]:
    """``file_record`` for rows given as tuples in ``columns``' order: positions found once."""
    at = {name: i for i, name in enumerate(columns)}
    i_id, i_ws, i_name, i_mime, i_size, i_created, i_dl, i_sum, i_scope, i_exp, i_quar, i_inline = (
        at[c] for c in _FILE_COLUMNS
    )

    # The same rows come back again and again (a file read or listed many times): the record
    # made of a row is kept, keyed by the whole row (every column, so a changed file is a new key).
    # The records' JSON is kept per record (``dialect.file_json_bytes``), so a row seen before
    # costs one dictionary lookup from the database to the answer's bytes.
    made: dict[Sequence[Any], FileRecord] = {}

    def make(row: Sequence[Any]) -> FileRecord:
        try:
            return made[row]
        except KeyError:
            pass
        except TypeError:  # a column value that cannot be a key (no such column today)
            return build(row)
        if len(made) >= _KEPT_RECORDS:
            made.clear()
        record = made[row] = build(row)
        return record

    def build(row: Sequence[Any]) -> FileRecord:
        return FileRecord(
            row[i_id],
            row[i_ws],
            row[i_name],
            row[i_mime],
            row[i_size],
            row[i_created],
            bool(row[i_dl]),
            row[i_sum],
            row[i_scope],
            row[i_exp],
            row[i_quar] is not None,
            bool(row[i_inline]),
        )

    return make


def api_key(row: Row[Any, Any] | Mapping[str, Any]) -> ApiKey:
    m = row._mapping if isinstance(row, Row) else row
    return ApiKey(
        key_id=m["key_id"],
        workspace=Workspace(id=m["workspace_id"], name=m["workspace_name"]),
        key_hash=m["key_hash"],
        created_at_us=m["created_at_us"],
        revoked_at_us=m["revoked_at_us"],
        label=m["label"],
    )
