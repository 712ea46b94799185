"""The shared token buckets behind ``--rate-limit``: one row per client in ``rate_buckets``.

A bucket holds up to ``rate`` tokens and refills at ``rate`` a minute. Processes do not take a
token per request: they lease a few at a time (``lease``) and spend them locally, so the
database sees at most a couple of writes a second per client and process, whatever the rate.
A missing row is a full bucket (rows quiet for longer than a refill are deleted).

The writes are not made durable before the commit returns (PostgreSQL: ``synchronous_commit``
off for the transaction; SQLite commits through the metadata writer): a bucket lost in a crash
only forgives a few requests.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from filesapi.metadata.schema import rate_buckets

__all__ = ["FORGET_AFTER_US", "lease", "prune"]

FORGET_AFTER_US = 120_000_000  # a bucket quiet this long is full again: its row can go

_GET = (
    select(rate_buckets.c.tokens, rate_buckets.c.stamp_us)
    .where(rate_buckets.c.client == bindparam("client"))
    .with_for_update()  # PostgreSQL: replicas leasing from one bucket queue here (SQLite: BEGIN IMMEDIATE)
)
_SET = (
    update(rate_buckets)
    .where(rate_buckets.c.client == bindparam("which"))
    .values(tokens=bindparam("left"), stamp_us=bindparam("now_us"))
)
_PRUNE = delete(rate_buckets).where(rate_buckets.c.stamp_us < bindparam("before_us"))


def _insert_missing(conn: Connection, client: str, rate: int, now_us: int) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(rate_buckets)
        .values(client=client, tokens=float(rate), stamp_us=now_us)
        .on_conflict_do_nothing(index_elements=["client"])
    )


def lease(conn: Connection, client: str, rate: int, want: int, now_us: int) -> tuple[int, float]:
    """Take up to ``want`` whole tokens from ``client``'s bucket. Returns how many were granted
    and, when none were, the seconds until the bucket holds one again."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    _insert_missing(conn, client, rate, now_us)
    row = conn.execute(_GET, {"client": client}).one()
    # A clock behind the one that wrote the row refills nothing (never a negative refill).
    elapsed_us = max(0, now_us - row.stamp_us)
    tokens = min(float(rate), row.tokens + elapsed_us * rate / 60_000_000)
    granted = min(want, int(tokens))
    tokens -= granted
    conn.execute(_SET, {"which": client, "left": tokens, "now_us": max(now_us, row.stamp_us)})
    return granted, 0.0 if granted else (1 - tokens) * 60 / rate


def prune(conn: Connection, now_us: int) -> int:
    """Delete the rows of clients quiet long enough for their buckets to be full."""
    return int(conn.execute(_PRUNE, {"before_us": now_us - FORGET_AFTER_US}).rowcount)
