"""A bounded soak: mixed traffic at a fixed rate against a real server (SQLite + local disk).

Open-loop: request i is sent at ``start + i / rate`` whether or not earlier ones have been answered,
so a server that slows down builds a queue (and shows it in the latencies, measured from each
request's scheduled time) instead of quietly getting less traffic. The mix: 40% metadata reads,
25% list pages, 20% small uploads (1 B to 16 KiB), 10% downloads (bytes checked), 5% deletes.
The server's worker process RSS is sampled every second.

It asserts zero errors (every answer is the expected 2xx, downloads byte-identical), that the
server kept up with the rate, and that memory stays flat after warm-up. Figures go to
docs/reliability.md.

Duration: ``FILESAPI_SOAK_SECONDS`` (60 in the test suite); a 10-minute soak is
``FILESAPI_SOAK_SECONDS=600 scripts/test.sh tests/test_soak.py``. ``FILESAPI_SOAK_RATE`` sets the
rate (100 requests/s).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from conftest import GA_HEADERS, LiveServer, start_server, stop_server
from figures import record

KiB = 1 << 10
MB = 1_000_000

MIX = {"metadata": 40, "list": 25, "upload": 20, "download": 10, "delete": 5}
WARM_UP_SHARE = 0.15  # of the run, at least WARM_UP_MIN seconds, before memory is judged
WARM_UP_MIN = 8.0
RSS_GROWTH_LIMIT = 20 * MB  # last third's peak over the first third's peak (after warm-up)
CONNECTIONS = 64  # requests in flight at most; more wait their turn in the client


def _worker_pid(server: LiveServer) -> int:
    main = server.process.pid
    children = [
        int(c)
        for task in Path(f"/proc/{main}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]
    assert len(children) == 1, f"expected one granian worker under {main}, found {children}"
    return children[0]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def memory_growth(samples: list[tuple[float, int]], duration: float) -> tuple[int, float]:
    """(growth, slope): the peak RSS of the last third of the post-warm-up samples minus the peak
    of the first third, in bytes, and the least-squares slope over them, in bytes per minute.
    Peaks, not single samples: RSS moves in steps (arenas, caches) and a leak raises every peak."""
    warm = max(WARM_UP_MIN, WARM_UP_SHARE * duration)
    kept = [(t, rss) for t, rss in samples if t >= warm]
    assert len(kept) >= 6, f"too few RSS samples after warm-up: {samples}"
    third = len(kept) // 3
    growth = max(r for _, r in kept[-third:]) - max(r for _, r in kept[:third])
    mean_t = sum(t for t, _ in kept) / len(kept)
    mean_r = sum(r for _, r in kept) / len(kept)
    slope = sum((t - mean_t) * (r - mean_r) for t, r in kept) / sum((t - mean_t) ** 2 for t, _ in kept)
    return growth, slope * 60


def test_memory_criterion_catches_a_leak() -> None:
    """The flatness check itself: noise and a one-off step pass, a steady leak does not."""
    rng = random.Random(1)
    flat = [(t, 90 * MB + rng.randrange(3 * MB)) for t in range(60)]
    step = [(t, 90 * MB + (8 * MB if t > 20 else 0)) for t in range(60)]
    leak = [(t, 90 * MB + t * MB) for t in range(60)]  # 1 MB/s: 10 KB per request at 100/s
    slow_leak = [(t, 90 * MB + t * 60_000) for t in range(600)]  # 0.6 KB/request over 10 minutes
    assert memory_growth(flat, 60)[0] <= RSS_GROWTH_LIMIT
    assert memory_growth(step, 60)[0] <= RSS_GROWTH_LIMIT
    assert memory_growth(leak, 60)[0] > RSS_GROWTH_LIMIT
    assert memory_growth(slow_leak, 600)[0] > RSS_GROWTH_LIMIT


class Pool:
    """The files the client knows exist: random picks and removals in O(1)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.where: dict[str, int] = {}
        self.files: dict[str, tuple[int, str]] = {}  # id -> (size, sha256)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, file_id: str, size: int, sha: str) -> None:
        self.where[file_id] = len(self.ids)
        self.ids.append(file_id)
        self.files[file_id] = (size, sha)

    def remove(self, file_id: str) -> None:
        at, last = self.where.pop(file_id), self.ids.pop()
        if last != file_id:
            self.ids[at], self.where[last] = last, at
        del self.files[file_id]


class Soak:
    def __init__(self, server: LiveServer, rate: float, duration: float, seed: int) -> None:
        self.server = server
        self.rate = rate
        self.duration = duration
        self.rng = random.Random(seed)
        self.pool = Pool()
        self.busy: Counter[str] = Counter()  # ids a read is using: not to be deleted meanwhile
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lateness: list[float] = []
        self.rss: list[tuple[float, int]] = []
        self.seq = 0
        # Requests beyond CONNECTIONS wait here, not in httpx's pool (whose bookkeeping grows with
        # the square of its queue and would make the client, not the server, the bottleneck).
        self.slots = asyncio.Semaphore(CONNECTIONS)
        self.waiting = 0
        self.most_waiting = 0

    def _borrow(self) -> str | None:
        if not self.pool:
            return None
        file_id = self.rng.choice(self.pool.ids)
        self.busy[file_id] += 1
        return file_id

    def _give_back(self, file_id: str) -> None:
        self.busy[file_id] -= 1
        if not self.busy[file_id]:
            del self.busy[file_id]

    async def _upload(self, client: httpx.AsyncClient) -> None:
        size = min(16 * KiB, max(1, round(math.exp(self.rng.uniform(0, math.log(16 * KiB))))))
        data = self.rng.randbytes(size)
        self.seq += 1
        response = await client.post("/v1/files", files={"file": (f"soak-{self.seq}.bin", data)})
        if self._expect(response, 200, "upload"):
            meta = response.json()
            if meta["size_bytes"] != size:
                self.errors.append(f"upload of {size} bytes answered {meta}")
            self.pool.add(meta["id"], size, hashlib.sha256(data).hexdigest())

    async def _op(self, op: str, client: httpx.AsyncClient) -> None:
        if op == "upload":
            await self._upload(client)
        elif op == "list":
            # Every file in the pool exists (deletes take theirs out before they are sent).
            at_least = min(20, len(self.pool))
            response = await client.get("/v1/files", params={"limit": 20})
            if self._expect(response, 200, op) and len(response.json()["data"]) < at_least:
                self.errors.append(f"list returned {len(response.json()['data'])} of >= {at_least} files")
        elif op == "delete":
            picks = [self.rng.choice(self.pool.ids) for _ in range(8)] if len(self.pool) > 20 else []
            idle = [i for i in picks if not self.busy[i]]
            if not idle:  # keep a population to read
                return await self._upload(client)
            file_id = idle[0]
            self.pool.remove(file_id)
            response = await client.delete(f"/v1/files/{file_id}")
            self._expect(response, 200, op)
        else:
            file_id = self._borrow()
            if file_id is None:
                return await self._upload(client)
            try:
                if op == "metadata":
                    response = await client.get(f"/v1/files/{file_id}")
                    if self._expect(response, 200, op) and response.json()["id"] != file_id:
                        self.errors.append(f"metadata of {file_id}: {response.text[:200]}")
                else:
                    response = await client.get(f"/v1/files/{file_id}/content")
                    size, sha = self.pool.files[file_id]
                    if self._expect(response, 200, op) and (
                        len(response.content) != size or hashlib.sha256(response.content).hexdigest() != sha
                    ):
                        self.errors.append(
                            f"download of {file_id}: {len(response.content)} bytes, not as sent"
                        )
            finally:
                self._give_back(file_id)

    def _expect(self, response: httpx.Response, status: int, op: str) -> bool:
        if response.status_code != status:
            self.errors.append(f"{op}: HTTP {response.status_code} {response.text[:200]}")
            return False
        return True

    async def _timed(self, op: str, client: httpx.AsyncClient, scheduled: float) -> None:
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        async with self.slots:
            self.waiting -= 1
            try:
                await self._op(op, client)
            except Exception as exc:
                self.errors.append(f"{op}: {exc!r}")
        # From the scheduled time: waiting for a slot is part of the latency (no coordinated omission).
        self.latency[op].append(time.monotonic() - scheduled)
        self.counts[op] += 1

    async def _sample_rss(self, pid: int, began: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.rss.append((time.monotonic() - began, _rss_bytes(pid)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def run(self) -> float:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(
            base_url=self.server.base_url, headers=GA_HEADERS, timeout=30, limits=limits
        ) as client:
            for _ in range(50):  # a population to read from the start
                await self._upload(client)
            self.counts.clear()
            ops, weights = list(MIX), list(MIX.values())
            total = round(self.duration * self.rate)
            stop = asyncio.Event()
            began = time.monotonic()
            sampler = asyncio.create_task(self._sample_rss(_worker_pid(self.server), began, stop))
            tasks = set()
            for i in range(total):
                scheduled = began + i / self.rate
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.lateness.append(time.monotonic() - scheduled)
                op = self.rng.choices(ops, weights)[0]
                task = asyncio.create_task(self._timed(op, client, scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*list(tasks))
            elapsed = time.monotonic() - began
            stop.set()
            await sampler
            return elapsed


@pytest.mark.slow
def test_soak_mixed_traffic_at_a_fixed_rate(tmp_path: Path) -> None:
    duration = float(os.environ.get("FILESAPI_SOAK_SECONDS") or 60)
    rate = float(os.environ.get("FILESAPI_SOAK_RATE") or 100)
    seed = random.SystemRandom().randrange(1 << 32)
    server = start_server(tmp_path, "--sweep-interval", "10", "--log-format", "json", "--workers", "1")
    try:
        soak = Soak(server, rate, duration, seed)
        elapsed = asyncio.run(soak.run())
        # The server must still be healthy and answer; then a clean stop.
        assert httpx.get(server.base_url + "/readyz", timeout=10).status_code == 200
    finally:
        stop_server(server)
    assert server.process.returncode == 0, server.log()[-2000:]

    requests = sum(soak.counts.values())
    achieved = requests / elapsed
    growth, slope = memory_growth(soak.rss, duration)
    rss = [r for _, r in soak.rss]
    figures: dict[str, object] = {
        "seconds": round(elapsed, 1),
        "target rate, requests/s": rate,
        "achieved rate, requests/s": round(achieved, 1),
        "requests": requests,
        "errors": len(soak.errors),
        "requests by kind": ", ".join(f"{op} {soak.counts[op]}" for op in MIX),
    }
    for op in MIX:
        values = soak.latency[op]
        figures[f"{op} latency ms p50 / p90 / p99 / max"] = " / ".join(
            f"{1000 * v:.1f}" for v in (*(_percentile(values, p) for p in (50, 90, 99)), max(values))
        )
    figures |= {
        "client lateness ms p99 / max": " / ".join(
            f"{1000 * v:.1f}" for v in (_percentile(soak.lateness, 99), max(soak.lateness))
        ),
        "worker RSS MB start / end / max": " / ".join(f"{v / MB:.1f}" for v in (rss[0], rss[-1], max(rss))),
        "RSS growth after warm-up, MB (last third's peak - first third's)": round(growth / MB, 1),
        "RSS slope after warm-up, MB/min": round(slope / MB, 2),
        "most requests waiting in the client": soak.most_waiting,
        "files at the end": len(soak.pool),
        "seed": seed,
        "10-minute run": "FILESAPI_SOAK_SECONDS=600 scripts/test.sh tests/test_soak.py",
    }
    print(figures)
    print("worker RSS MB by second:", [round(r / MB, 1) for _, r in soak.rss])
    record("soak", f"{duration:g}s at {rate:g} req/s", **figures)  # recorded whatever the verdict
    assert not soak.errors, f"{len(soak.errors)} errors (seed {seed}), first: {soak.errors[:20]}"
    # Open loop: a server that cannot keep up stretches the run (answers arrive late).
    assert achieved >= 0.9 * rate, figures
    assert growth <= RSS_GROWTH_LIMIT, (
        f"worker RSS grew {growth / MB:.1f} MB after warm-up: {[(round(t), r // MB) for t, r in soak.rss]}"
    )
