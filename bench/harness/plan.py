"""Sizes: the full and the quick plan, human-readable sizes, and the source files uploaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
MB = 1_000_000


@dataclass(frozen=True)
class Plan:
    big: int  # bytes of the large file (upload, download, S3)
    probe: int  # the smaller upload/download whose peak RSS shows flatness
    wrk_seconds: int
    list_files: int
    list_requests: int
    parallel: int
    parallel_size: int
    small_size: int
    small_connections: int
    meta_connections: int
    capacity_files: int  # the PostgreSQL dataset of the capacity benchmark
    rounds: int


FULL = Plan(
    big=GiB,
    probe=256 * MiB,
    wrk_seconds=10,
    list_files=1_000_000,
    list_requests=200,
    parallel=32,
    parallel_size=64 * MiB,
    small_size=4096,
    small_connections=32,
    meta_connections=64,
    capacity_files=10_000_000,
    rounds=5,
)
QUICK = Plan(
    big=64 * MiB,
    probe=16 * MiB,
    wrk_seconds=3,
    list_files=100_000,
    list_requests=100,
    parallel=32,
    parallel_size=16 * MiB,
    small_size=4096,
    small_connections=32,
    meta_connections=64,
    capacity_files=20_000,
    rounds=1,
)


def human(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"


def count(n: int) -> str:
    return f"{n:,}"


def make_source(path: Path, size_mib: int) -> None:
    """A file of size_mib MiB: one random MiB, varied per MiB (no two alike, never zeros)."""
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size_mib):
            # cheap variation so no two MiB are identical
            f.write(i.to_bytes(8, "little") + block[8:])
