#!/usr/bin/env python3
"""What does the S3 blob store's integrity header cost?  Measure it.

Starts a SeaweedFS (``weed mini`` from the test extras, on free 127.0.0.1 ports, as the tests do)
and streams the same body through ``S3BlobStore.put`` (64 KiB chunks, as a request body arrives,
CRC32C computed on the way) with each ``checksum_algorithm`` the store can ask the S3 server to
verify: none (the anchor), CRC64NVME and SHA256. Every round visits the variants in a rotated order
so drift on a shared machine spreads evenly; each figure is the median over --rounds, printed with
its ratio to the anchor, and with the CPU seconds the client process and the weed process spent.
A download of the same object (``S3BlobStore.open``) is measured once per round as well.

Run it from the repository root:  .venv/bin/python bench/s3_blobs.py [--size-mib 256 --rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from harness.plan import MiB  # noqa: E402
from harness.procfs import cpu_seconds  # noqa: E402

from filesapi.blobs.s3 import S3BlobStore, S3Location  # noqa: E402
from servers_s3 import SeaweedS3  # noqa: E402

VARIANTS: dict[str, str | None] = {"none (anchor)": None, "CRC64NVME": "CRC64NVME", "SHA256": "SHA256"}


async def body(size: int, block: bytes) -> AsyncIterator[bytes]:
    chunk = 64 * 1024
    for offset in range(0, size, chunk):
        start = offset % len(block)
        yield block[start : start + chunk]


async def run(size: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="filesapi-bench-s3-"))
    server = SeaweedS3(root)
    os.environ.update(server.env)
    server.start()
    try:
        assert server._proc is not None
        weed_pid = server._proc.pid
        block = os.urandom(MiB)
        stores = {
            name: S3BlobStore(S3Location.from_url(server.url()), checksum_algorithm=algo)
            for name, algo in VARIANTS.items()
        }
        await stores["none (anchor)"].put("file_warmup", body(size, block))  # SeaweedFS grows volumes
        up: dict[str, list[float]] = {name: [] for name in VARIANTS}
        cpu_client: dict[str, list[float]] = {name: [] for name in VARIANTS}
        cpu_server: dict[str, list[float]] = {name: [] for name in VARIANTS}
        down: list[float] = []
        names = list(VARIANTS)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                store = stores[name]
                client0, server0, t0 = time.process_time(), cpu_seconds(weed_pid), time.perf_counter()
                info = await store.put(f"file_r{r}", body(size, block))
                elapsed = time.perf_counter() - t0
                assert info.size == size
                up[name].append(size / MiB / elapsed)
                cpu_client[name].append(time.process_time() - client0)
                cpu_server[name].append(cpu_seconds(weed_pid) - server0)
                if name == names[0]:
                    t0 = time.perf_counter()
                    got = 0
                    async for chunk in await store.open(f"file_r{r}"):
                        got += len(chunk)
                    down.append(size / MiB / (time.perf_counter() - t0))
                    assert got == size
                await store.delete(f"file_r{r}")
        anchor = statistics.median(up[names[0]])
        print(f"S3BlobStore.put of {size // MiB} MiB on SeaweedFS (127.0.0.1), median of {rounds} rounds")
        print(f"{'checksum header':<16} {'MiB/s':>7} {'ratio':>6} {'client CPU s':>13} {'weed CPU s':>11}")
        for name in names:
            rate = statistics.median(up[name])
            print(
                f"{name:<16} {rate:7.1f} {rate / anchor:6.2f} "
                f"{statistics.median(cpu_client[name]):13.2f} {statistics.median(cpu_server[name]):11.2f}"
            )
        print(f"S3BlobStore.open (download): {statistics.median(down):.1f} MiB/s")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.size_mib * MiB, args.rounds))


if __name__ == "__main__":
    main()
