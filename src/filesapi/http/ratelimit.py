"""``--rate-limit``: one token bucket per client shared by every worker and replica on a metadata
database, spent through small local leases.

- Each process keeps, per client, a lease of tokens taken from the shared bucket
  (``MetadataStore.lease_tokens``) and answers from it without touching the database. A lease
  starts at one token and doubles while the client spends it within a second, up to
  ``rate // 120`` (half a second of the rate): a busy key costs about two database writes a second
  per process, a quiet one a write per request. Unspent tokens lapse after ``LEASE_SECONDS``.
- A refused request answers from the process's memory until the bucket will hold a token again
  (``retry-after``), so a client hammering past its limit costs the database nothing either.
- Every token spent was taken from the shared bucket, so the fleet accepts no more than one bucket
  would, plus the tokens leased but not yet spent when a burst begins: at most
  ``processes * (rate // 120 - 1)`` (0 for rates up to 239 a minute).
- When the database cannot be reached the limiter fails open to a bucket per process (what
  ``--rate-limit`` was before it was shared): a key may then get its rate from each process, and the
  limit never becomes the reason an API that is otherwise up refuses everyone. It retries the
  database a second later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from filesapi.errors import BackendUnavailable

__all__ = ["LEASE_SECONDS", "LocalBuckets", "SharedRateLimiter", "TokenSource"]

log = logging.getLogger("filesapi.http")

LEASE_SECONDS = 5.0
_RETRY_STORE_SECONDS = 1.0
_PRUNE_SECONDS = 60.0


class TokenSource(Protocol):
    """Where the shared buckets live: the metadata store (``MetadataStore.lease_tokens``)."""

    async def lease_tokens(
        self, client: str, rate: int, want: int, now_us: int, *, prune: bool = False
    ) -> tuple[int, float]: ...


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class LocalBuckets:
    """A token bucket per client in this process alone (the fallback while the database is down)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._buckets: dict[bytes, _Bucket] = {}
        self._last_prune = time.monotonic()

    def wait_seconds(self, client: bytes) -> float:
        """0 when the request may go now (and takes a token), else the seconds until it may."""
        rate = self.rate
        now = time.monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(rate), now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.stamp) * rate / 60)
        bucket.stamp = now
        if now - self._last_prune > 60:  # forget clients that have been quiet long enough to be full
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < 60}
            self._last_prune = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) * 60 / rate


class _Lease:
    __slots__ = ("expires", "granted_at", "pending", "refused_until", "size", "tokens")

    def __init__(self) -> None:
        self.tokens = 0
        self.size = 1
        self.expires = 0.0
        self.granted_at = 0.0
        self.refused_until = 0.0
        self.pending: asyncio.Future[None] | None = None


class SharedRateLimiter:
    """One per process. ``store`` returns the metadata store (opened in the app's lifespan)."""

    def __init__(self, rate: int, store: Callable[[], TokenSource]) -> None:
        self.rate = rate
        self.max_lease = max(1, rate // 120)
        self._store = store
        self._leases: dict[bytes, _Lease] = {}
        self._local = LocalBuckets(rate)
        self._store_down_until = 0.0
        self._last_prune = 0.0

    async def wait_seconds(self, client: bytes) -> float:
        """0 when the request may go now (and has spent a token), else the seconds until it may."""
        while True:
            now = time.monotonic()
            if now < self._store_down_until:
                return self._local.wait_seconds(client)
            lease = self._leases.get(client)
            if lease is None:
                lease = self._leases[client] = _Lease()
            if lease.tokens and now < lease.expires:
                lease.tokens -= 1
                return 0.0
            if now < lease.refused_until:
                return lease.refused_until - now
            if lease.pending is None:
                break
            await asyncio.shield(lease.pending)  # another request of this client is leasing: share it
        return await self._renew(client, lease, now)

    async def _renew(self, client: bytes, lease: _Lease, now: float) -> float:
        # Spent within a second: this process serves the client busily, so lease more next time.
        busy = bool(lease.granted_at) and now - lease.granted_at < 1.0 and not lease.tokens
        size = min(self.max_lease, lease.size * 2) if busy else 1
        pending = lease.pending = asyncio.get_running_loop().create_future()
        prune = now - self._last_prune > _PRUNE_SECONDS
        try:
            granted, wait = await self._store().lease_tokens(
                client.hex(), self.rate, size, time.time_ns() // 1000, prune=prune
            )
        except BackendUnavailable as exc:
            if now >= self._store_down_until + 60:  # once a minute is enough to say so
                log.warning("rate limits are per process until the database answers: %s", exc.message)
            self._store_down_until = time.monotonic() + _RETRY_STORE_SECONDS
            return self._local.wait_seconds(client)
        finally:
            lease.pending = None
            pending.set_result(None)
        if prune:
            self._last_prune = now
            self._forget_lapsed(now)
        now = time.monotonic()
        if not granted:
            lease.tokens, lease.refused_until = 0, now + wait
            return wait
        lease.size, lease.tokens = size, granted - 1
        lease.granted_at, lease.expires = now, now + LEASE_SECONDS
        return 0.0

    def _forget_lapsed(self, now: float) -> None:
        self._leases = {
            k: v
            for k, v in self._leases.items()
            if v.pending is not None or now < v.expires or now < v.refused_until
        }
