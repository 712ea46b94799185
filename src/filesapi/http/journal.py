"""``GET /v1/admin/requests`` and ``DELETE /v1/admin/requests``: the request journal, for the admin
key (anyone under ``--auth open``), with or without ``--test-controls``."""

from __future__ import annotations

import asyncio
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filesapi.controls.journal import Journal, JournalQuery, UnknownCursor
from filesapi.errors import InvalidRequest
from filesapi.http.calls import authorize_admin, by_method, json_response, query_int, query_one
from filesapi.http.dialect import format_time

__all__ = ["journal_routes"]

_PARAMETERS = {"limit", "before", "operation", "status", "method", "workspace", "request_id", "since"}
MAX_LIMIT = 1000


def _journal(request: Request) -> Journal:
    journal: Journal = request.app.state.journal
    return journal


def _since_us(raw: str | None) -> int | None:
    """RFC 3339 (``2026-01-01T00:00:00Z``) or seconds since the epoch."""
    if raw is None:
        return None
    try:
        if raw.replace(".", "", 1).isascii() and raw.replace(".", "", 1).isdigit() and len(raw) < 20:
            return int(float(raw) * 1_000_000)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"since must be an RFC 3339 time or epoch seconds, got {raw[:40]!r}.") from None
    if parsed.tzinfo is None:
        raise InvalidRequest("since needs a time zone (e.g. 2026-01-01T00:00:00Z).")
    return int(parsed.timestamp() * 1_000_000)


def _query(request: Request) -> JournalQuery:
    unknown = sorted(set(request.query_params) - _PARAMETERS)
    if unknown:
        raise InvalidRequest(
            f"Unknown parameters: {', '.join(unknown)[:200]} (known: {', '.join(sorted(_PARAMETERS))})."
        )
    limit = query_int(request, "limit")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    method = query_one(request, "method")
    return JournalQuery(
        limit=limit or 100,
        before=query_one(request, "before"),
        operation=query_one(request, "operation"),
        status=query_int(request, "status"),
        method=method.upper() if method else None,
        workspace=query_one(request, "workspace"),
        request_id=query_one(request, "request_id"),
        since_us=_since_us(query_one(request, "since")),
    )


async def list_requests(request: Request) -> Response:
    """Newest first; ``before=<request_id>`` pages to older entries (``last_id`` of a page)."""
    await authorize_admin(request)
    query = _query(request)
    journal = _journal(request)
    await journal.settle()
    try:
        entries, has_more = await asyncio.to_thread(journal.entries, query)
    except UnknownCursor:
        raise InvalidRequest(f"before: no request {query.before!r} in the journal.") from None
    # started_at is written out here, not on the hot path that records the entry.
    entries = [
        {"request_id": e["request_id"], "started_at": format_time(e["started_us"]), **e} for e in entries
    ]
    return json_response(
        {"data": entries, "has_more": has_more, "last_id": entries[-1]["request_id"] if entries else None}
    )


async def clear_requests(request: Request) -> Response:
    await authorize_admin(request)
    journal = _journal(request)
    await journal.settle()
    journal.clear()
    return json_response({"cleared": True})


journal_routes = [
    Route(
        "/v1/admin/requests", by_method(GET=list_requests, DELETE=clear_requests), methods=["GET", "DELETE"]
    ),
]
