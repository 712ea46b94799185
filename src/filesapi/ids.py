"""Identifiers: file ids, request ids, workspace ids and key ids.

File ids look like the hosted service's (``file_01`` + 22 base58 characters) and sort by creation
time: the 22 characters encode a 128-bit number whose top 56 bits are the creation time in
microseconds and whose low 72 bits are random. Base58's alphabet is in ASCII order, so the string
order of ids is their numeric order, which is their creation order. ``created_at`` is read back from
the id, so paging by id alone is paging by (created_at, id).
"""

from __future__ import annotations

import os
import random
import re
import secrets
import threading
import time
from collections.abc import Callable

__all__ = [
    "BASE58_ALPHABET",
    "FILE_ID_PATTERN",
    "IdClock",
    "RandomPool",
    "b58encode_fixed",
    "file_id_timestamp_us",
    "is_file_id",
    "new_key_secret",
    "new_request_id",
    "new_workspace_id",
]

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
_FILE_BODY_CHARS = 22
_RANDOM_BITS = 72
FILE_ID_PATTERN = re.compile(r"file_01[1-9A-HJ-NP-Za-km-z]{22}")
_MAX_TIMESTAMP_US = (1 << 56) - 1


# Every two-digit base58 string, by value: encoding takes two digits per division (a request id
# is made for every request; one digit at a time cost a fifth of a /healthz answer's own time).
_PAIRS = tuple(a + b for a in BASE58_ALPHABET for b in BASE58_ALPHABET)


_QUAD = 58**4


def _b58encode_22(value: int) -> str:
    """``b58encode_fixed(value, 22)``, the width of file and request ids: four digits per division
    of the large number (each division of a 128-bit number costs about what four of a small one
    do), then two pairs from the table."""
    value, a = divmod(value, _QUAD)
    value, b = divmod(value, _QUAD)
    value, c = divmod(value, _QUAD)
    value, d = divmod(value, _QUAD)
    value, e = divmod(value, _QUAD)
    if not 0 <= value < 3364:
        raise ValueError("value does not fit in the requested width")
    p = _PAIRS
    return (
        p[value] + p[e // 3364] + p[e % 3364] + p[d // 3364] + p[d % 3364] + p[c // 3364] + p[c % 3364]
        + p[b // 3364] + p[b % 3364] + p[a // 3364] + p[a % 3364]
    )  # fmt: skip


def b58encode_fixed(value: int, width: int) -> str:
    """Encode ``value`` as exactly ``width`` base58 digits (most significant first)."""
    if width == 22:
        return _b58encode_22(value)
    out = []
    for _ in range(width // 2):
        value, pair = divmod(value, 3364)  # 58 ** 2
        out.append(_PAIRS[pair])
    if width % 2:
        value, digit = divmod(value, 58)
        out.append(BASE58_ALPHABET[digit])
    if value:
        raise ValueError("value does not fit in the requested width")
    return "".join(reversed(out))


def _b58decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 58 + _INDEX[ch]
    return value


def is_file_id(text: str) -> bool:
    """True when ``text`` has the exact shape of an id this server issues."""
    return FILE_ID_PATTERN.fullmatch(text) is not None


def file_id_timestamp_us(file_id: str) -> int:
    """The creation time (microseconds since the epoch) encoded in a file id."""
    return _b58decode(file_id[len("file_01") :]) >> _RANDOM_BITS


class IdClock:
    """Issues strictly increasing file ids, even when the wall clock stalls or steps back.

    ``now_us`` is injectable so tests can pin time (or move it: the test controls' clock). When
    ``epoch()`` changes (the clock was set back while no file existed) the floor drops, so new ids
    follow the clock again instead of holding at the last id's time.
    """

    def __init__(
        self, now_us: Callable[[], int] | None = None, epoch: Callable[[], int] | None = None
    ) -> None:
        self._now_us: Callable[[], int] = now_us or (lambda: time.time_ns() // 1000)
        self._epoch = epoch
        self._seen_epoch = epoch() if epoch else 0
        self._last = 0
        self._lock = threading.Lock()
        self._random = RandomPool()

    def now_us(self) -> int:
        return self._now_us()

    def _random_72(self) -> int:
        """72 random bits (``_RANDOM_BITS``)."""
        return int.from_bytes(self._random.take(9), "big")

    def new_file_id(self) -> tuple[str, int]:
        """Return a new id and the creation time (microseconds) it encodes."""
        with self._lock:
            if self._epoch is not None and self._epoch() != self._seen_epoch:
                self._seen_epoch = self._epoch()
                self._last = 0
            candidate = (self._now_us() << _RANDOM_BITS) | self._random_72()
            if candidate <= self._last:
                # Same microsecond (or the clock went back): stay ordered by stepping past the last.
                candidate = self._last + 1 + secrets.randbits(16)
            self._last = candidate
        timestamp = candidate >> _RANDOM_BITS
        if timestamp > _MAX_TIMESTAMP_US:
            raise OverflowError("clock beyond the id range")
        return "file_01" + b58encode_fixed(candidate, _FILE_BODY_CHARS), timestamp


class RandomPool:
    """Random bytes from the OS, drawn a few kilobytes at a time: one system call (which lets go
    of the GIL, and in a served worker waits to take it back) per ``size`` bytes, not one per
    draw. Drawn afresh in a forked child, so no two processes ever hand out the same bytes, and
    under a lock, so no two threads do (AES-GCM nonces come from here)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._pool = b""
        self._at = 0
        self._fork = -1
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._pool) or self._fork != _forks:
                self._pool, at, self._fork = os.urandom(max(self._size, n)), 0, _forks
            self._at = at + n
            return self._pool[at : at + n]


_fast_random = random.Random()
_forks = 0  # forks this process came out of: random bytes drawn before one are not used after it


def _forked() -> None:
    global _forks
    _forks += 1
    _fast_random.seed()


# A forked worker must not repeat its parent's (or a sibling's) sequence.
os.register_at_fork(after_in_child=_forked)


def _random_b58(length: int) -> str:
    return "".join(secrets.choice(BASE58_ALPHABET) for _ in range(length))


# Each byte value to a base58 digit (value mod 58: the first 24 digits come a little more often,
# 5 in 256 against 4, so 22 digits still carry over 128 bits).
_DIGIT_OF_BYTE = bytes(ord(BASE58_ALPHABET[b % 58]) for b in range(256))


def new_request_id() -> str:
    # One draw of random bytes, each made a digit by one table lookup (this runs for every request;
    # encoding a 128-bit number took five long divisions). A request id names a request in logs
    # and is no secret: the fast generator (seeded from the OS per process) is enough.
    return "req_01" + _fast_random.randbytes(22).translate(_DIGIT_OF_BYTE).decode("ascii")


def new_workspace_id() -> str:
    return "wrkspc_01" + _random_b58(22)


def new_key_secret() -> tuple[str, str]:
    """Return (key id, full key). The key id is public (shown by ``keys list``); the rest is secret."""
    key_id = _random_b58(12)
    return key_id, f"sk-fapi-{key_id}-{_random_b58(44)}"
