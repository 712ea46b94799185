"""SIGKILL at random moments during mixed traffic, restart, and check what survived.

Each round starts the real server (granian main process + its worker) on the same storage, checks
the state against the client's ledger, runs a stream of uploads (a few bytes to a few MiB, some sent
slowly so that kills land mid-body), downloads (bytes checked) and deletes from three client threads,
and after a random delay SIGKILLs the whole server. After every restart:

- every upload that got a 200 is listed with its size and name and downloads byte-identical (sha256);
- every delete that got a 200 stays gone (never listed again, 404);
- an upload in flight at the kill (found by its unique filename) is either absent, and stays absent,
  or complete and byte-identical; a delete in flight either happened or not;
- nothing else is listed, and ``filesapi scrub`` (run beside the restarting server) finds nothing
  bad and checks exactly the listed files.

After the last round ``filesapi gc --grace 0`` (server stopped) must remove exactly the leftovers the
kills made (temp files, orphan blobs, unfinished S3 multipart uploads, interrupted deletes), after
which the storage holds exactly the live files, scrub is clean, quota accounting matches, and every
acknowledged file still downloads byte-identical.

The seed is random per run and printed (``FILESAPI_CRASH_SEED=N`` repeats a run's choices; the timing
of course differs); ``FILESAPI_CRASH_ROUNDS`` overrides the number of rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import GA_HEADERS, LiveServer, start_server, stop_server
from figures import record

KiB = 1 << 10
MiB = 1 << 20


@dataclass(frozen=True)
class Profile:
    """How one backend mix is exercised."""

    small: tuple[int, int]  # sizes of the mixed workers' uploads (log-uniform)
    large: tuple[tuple[int, int], ...]  # the large-upload worker picks one range, then log-uniform
    slow_seconds: tuple[float, float]  # how long a throttled upload takes to send its body
    slow_share: float  # share of large uploads that are throttled
    traffic_seconds: tuple[float, float]  # from the start of traffic to the kill
    scrub_every: int  # rounds; each scrub checks every stored file, so nothing goes unscrubbed
    live_bytes: int  # above this (or live_files), deletes become likelier
    live_files: int


DISK = Profile(
    small=(1, 256 * KiB),
    large=((256 * KiB, 4 * MiB),),
    slow_seconds=(0.2, 1.0),
    slow_share=0.6,
    traffic_seconds=(0.25, 1.0),
    scrub_every=5,
    live_bytes=24 * MiB,
    live_files=150,
)
# S3 uploads go as one PUT below 8 MiB and as a multipart upload above: both kinds are killed.
S3 = Profile(
    small=(1, 256 * KiB),
    large=((256 * KiB, 4 * MiB), (9 * MiB, 16 * MiB)),
    slow_seconds=(0.6, 1.8),
    slow_share=0.7,
    traffic_seconds=(0.6, 2.0),
    scrub_every=3,
    live_bytes=64 * MiB,
    live_files=120,
)


@dataclass(eq=False)
class Upload:
    name: str
    size: int
    sha256: str
    round: int
    sent: int = 0  # body bytes handed to the connection so far


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high))))))


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children before their own children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        children: list[int] = []
        try:
            for task in Path(f"/proc/{parent}/task").iterdir():
                children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
        found += children
        todo += children
    return found


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie holds nothing any more


def kill_server(server: LiveServer) -> None:
    """SIGKILL the whole server: freeze granian's main process (so it cannot spawn a new worker),
    SIGKILL its worker(s), then the main process; wait until all are dead."""
    main = server.process.pid
    if server.process.poll() is not None:
        return
    os.kill(main, signal.SIGSTOP)
    children = _descendants(main)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.kill(main, signal.SIGKILL)
    server.process.wait(timeout=20)
    deadline = time.monotonic() + 20
    while not all(_gone(pid) for pid in children):
        if time.monotonic() > deadline:
            raise RuntimeError(f"server processes {children} survived SIGKILL")
        time.sleep(0.005)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "filesapi", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


_SCRUBBED = re.compile(r"checked (\d+) files.*bad: (\d+)")


def parse_gc(out: str) -> dict[str, int]:
    """``filesapi gc`` output -> {"finished deletes": n, ...}."""
    report = {}
    for line in out.splitlines():
        name, _, value = line.rpartition(":")
        if name and value.strip().isdigit():
            report[name.strip()] = int(value)
    assert set(report) == {
        "finished deletes",
        "expired content purged",
        "orphan blobs removed",
        "unfinished uploads removed",
    }, out
    return report


class CrashRun:
    """The client side of the crash test: traffic, kills, restarts and the ledger it checks against."""

    def __init__(
        self,
        tmp_path: Path,
        profile: Profile,
        storage: tuple[str, ...],
        env: dict[str, str],
        seed: int,
        rounds: int,
    ) -> None:
        self.tmp_path = tmp_path
        self.profile = profile
        self.storage = storage
        self.env = env
        self.seed = seed
        self.rounds = rounds
        self.round = 0
        self.lock = threading.Lock()
        self.seq = 0
        # The ledger.
        self.live: dict[str, Upload] = {}  # acknowledged (or found complete), not deleted
        self.deleted: dict[str, Upload] = {}  # delete acknowledged (or found applied)
        self.maybe_deleted: dict[str, Upload] = {}  # delete in flight at a kill
        self.unknown: dict[str, Upload] = {}  # upload without an answer, by its unique filename
        self.vanished: set[str] = set()  # unanswered uploads found absent: must stay absent
        self.unverified: set[str] = set()  # live ids not downloaded since a restart yet
        self.busy: Counter[str] = Counter()  # live ids a download or metadata read is using
        self.checked_ids: set[str] = set()  # files downloaded byte-identical after some restart
        self.killed_at: float | None = None
        self.problems: list[str] = []
        self.stats: Counter[str] = Counter()
        self.leftovers: dict[str, int] = {}
        self.seconds: Counter[str] = Counter()  # where the time goes, printed at the end

    # -- bookkeeping

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(f"round {self.round} (seed {self.seed}): {text}")

    def check_problems(self) -> None:
        if self.problems:
            shown = "\n".join(self.problems[:40])
            more = f"\n... and {len(self.problems) - 40} more" if len(self.problems) > 40 else ""
            raise AssertionError(
                f"crash test failed (seed {self.seed}, round {self.round}; FILESAPI_CRASH_SEED={self.seed} "
                f"repeats its choices; server logs in {self.tmp_path}):\n{shown}{more}"
            )

    def _lost_connection(self, what: str, exc: Exception) -> None:
        """A request without an answer: expected only once the server has been killed."""
        if self.killed_at is None:
            self.problem(f"{what}: the connection failed before any kill: {exc!r}")

    def _answered(self, what: str, response: httpx.Response, expected: int = 200) -> bool:
        with self.lock:
            self.stats["requests acknowledged"] += 1
        if response.status_code != expected:
            self.problem(f"{what}: HTTP {response.status_code} {response.text[:300]}")
            return False
        return True

    @property
    def live_bytes(self) -> int:
        return sum(u.size for u in self.live.values())

    # -- the operations

    def upload(self, client: httpx.Client, rng: random.Random, w: int, size: int, slow: bool) -> None:
        data = rng.randbytes(size)
        with self.lock:
            self.seq += 1
            seq = self.seq
        up = Upload(f"r{self.round:03d}-w{w}-{seq:05d}-{size}.bin", size, _sha(data), self.round)
        boundary = f"crash{seq:x}x{rng.getrandbits(48):012x}"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{up.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        step = 64 * KiB
        pause = rng.uniform(*self.profile.slow_seconds) / math.ceil(size / step) if slow else 0.0

        def body():
            yield head
            view = memoryview(data)
            for start in range(0, size, step):
                piece = view[start : start + step]
                yield bytes(piece)
                up.sent = start + len(piece)  # the connection took the previous piece
                if pause:
                    time.sleep(pause)
            yield tail

        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        if rng.random() < 0.5:  # else chunked transfer encoding
            headers["content-length"] = str(len(head) + size + len(tail))
        try:
            response = client.post("/v1/files", content=body(), headers=headers)
        except httpx.TransportError as exc:
            self._lost_connection(f"upload {up.name}", exc)
            with self.lock:
                self.unknown[up.name] = up
            return
        if not self._answered(f"upload {up.name}", response):
            with self.lock:
                self.unknown[up.name] = up  # its fate is resolved (and checked) after the restart
            return
        meta = response.json()
        if meta.get("size_bytes") != size or meta.get("filename") != up.name:
            self.problem(f"upload {up.name} ({size} bytes) answered {meta}")
        with self.lock:
            self.live[meta["id"]] = up
            self.unverified.add(meta["id"])
            self.stats["uploads acknowledged"] += 1

    def _pick(self, rng: random.Random, *, for_delete: bool) -> tuple[str, Upload] | None:
        with self.lock:
            ids = [i for i in self.live if not (for_delete and self.busy[i])]
            if not ids:
                return None
            if for_delete and (
                self.live_bytes > self.profile.live_bytes or len(self.live) > self.profile.live_files
            ):
                file_id = max(rng.sample(ids, min(3, len(ids))), key=lambda i: self.live[i].size)
            else:
                file_id = rng.choice(ids)
            if for_delete:
                return file_id, self.live.pop(file_id)
            self.busy[file_id] += 1
            return file_id, self.live[file_id]

    def _release(self, file_id: str) -> None:
        with self.lock:
            self.busy[file_id] -= 1
            if not self.busy[file_id]:
                del self.busy[file_id]

    def download(self, client: httpx.Client, rng: random.Random) -> None:
        picked = self._pick(rng, for_delete=False)
        if picked is None:
            return
        file_id, up = picked
        try:
            response = client.get(f"/v1/files/{file_id}/content")
        except httpx.TransportError as exc:
            self._lost_connection(f"download {file_id}", exc)
            return
        finally:
            self._release(file_id)
        if self._answered(f"download {file_id} ({up.name})", response):
            if len(response.content) != up.size or _sha(response.content) != up.sha256:
                self.problem(f"download {file_id} ({up.name}): {len(response.content)} bytes, not as sent")
            else:
                with self.lock:
                    self.stats["downloads verified during traffic"] += 1

    def metadata(self, client: httpx.Client, rng: random.Random) -> None:
        picked = self._pick(rng, for_delete=False)
        if picked is None:
            return
        file_id, up = picked
        try:
            response = client.get(f"/v1/files/{file_id}")
        except httpx.TransportError as exc:
            self._lost_connection(f"metadata {file_id}", exc)
            return
        finally:
            self._release(file_id)
        if self._answered(f"metadata {file_id}", response) and response.json()["size_bytes"] != up.size:
            self.problem(f"metadata {file_id}: {response.json()} for an upload of {up.size} bytes")

    def delete(self, client: httpx.Client, rng: random.Random) -> None:
        picked = self._pick(rng, for_delete=True)
        if picked is None:
            return
        file_id, up = picked
        started = time.monotonic()
        try:
            response = client.delete(f"/v1/files/{file_id}")
        except httpx.TransportError as exc:
            self._lost_connection(f"delete {file_id}", exc)
            with self.lock:
                self.maybe_deleted[file_id] = up
                if self.killed_at is not None and started < self.killed_at:
                    self.stats["deletes in flight at kills"] += 1
            return
        if self._answered(f"delete {file_id}", response) and response.json().get("id") == file_id:
            with self.lock:
                self.deleted[file_id] = up
                self.unverified.discard(file_id)
                self.stats["deletes acknowledged"] += 1
        else:
            with self.lock:
                self.maybe_deleted[file_id] = up

    # -- traffic and kills

    def worker(self, base_url: str, w: int, rng: random.Random, stop: threading.Event) -> None:
        try:
            with httpx.Client(base_url=base_url, headers=GA_HEADERS, timeout=60) as client:
                while not stop.is_set() and self.killed_at is None:
                    if w == 0:
                        low, high = rng.choice(self.profile.large)
                        slow = rng.random() < self.profile.slow_share
                        self.upload(client, rng, w, _log_uniform(rng, low, high), slow)
                        continue
                    with self.lock:
                        n, crowded = (
                            len(self.live),
                            self.live_bytes > self.profile.live_bytes
                            or len(self.live) > self.profile.live_files,
                        )
                    weights = [0.4, 0.3, 0.72 if crowded else 0.22, 0.08] if n else [1, 0, 0, 0]
                    op = rng.choices(["upload", "download", "delete", "metadata"], weights)[0]
                    if op == "upload":
                        self.upload(client, rng, w, _log_uniform(rng, *self.profile.small), False)
                    else:
                        getattr(self, op)(client, rng)
                    time.sleep(rng.uniform(0, 0.004))
        except Exception as exc:
            self.problem(f"client thread {w} failed: {exc!r}")

    def traffic_then_kill(self, server: LiveServer) -> None:
        rng = random.Random(f"{self.seed}-{self.round}")
        stop = threading.Event()
        self.killed_at = None
        threads = [
            threading.Thread(
                target=self.worker,
                args=(server.base_url, w, random.Random(f"{self.seed}-{self.round}-{w}"), stop),
            )
            for w in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(*self.profile.traffic_seconds))
        with self.lock:
            self.killed_at = time.monotonic()  # no request starts after this
        kill_server(server)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
            if thread.is_alive():
                self.problem("a client thread hung after the kill")
                self.check_problems()
        unanswered = list(self.unknown.values())  # this round's: the last restart resolved the others
        mid_body = [u for u in unanswered if 0 < u.sent < u.size]
        self.stats["uploads in flight at kills"] += len(unanswered)
        self.stats["uploads killed mid-body"] += len(mid_body)
        self.stats["kills mid-upload"] += bool(mid_body)
        self.stats["largest body cut off (bytes sent)"] = max(
            [self.stats["largest body cut off (bytes sent)"], *(u.sent for u in mid_body)]
        )

    # -- checks

    def list_all(self, client: httpx.Client) -> dict[str, dict]:
        listed: dict[str, dict] = {}
        params: dict[str, str | int] = {"limit": 1000}
        while True:
            response = client.get("/v1/files", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            listed.update({f["id"]: f for f in page["data"]})
            if not page["next_page"]:
                return listed
            params = {"limit": 1000, "page": page["next_page"]}

    def check_content(self, client: httpx.Client, file_id: str, up: Upload) -> bool:
        response = client.get(f"/v1/files/{file_id}/content")
        ok = response.status_code == 200 and len(response.content) == up.size
        ok = ok and _sha(response.content) == up.sha256
        if ok:
            self.stats["downloads verified after restarts"] += 1
            self.checked_ids.add(file_id)
        else:
            self.problem(
                f"GET {file_id}/content ({up.name}, {up.size} bytes sent in round {up.round}): HTTP "
                f"{response.status_code}, {len(response.content)} bytes, not as sent "
                f"{response.text[:160] if response.status_code != 200 else ''}"
            )
        return ok

    def verify(self, server: LiveServer, *, full: bool) -> int:
        """Check the restarted server against the ledger, resolving what was in flight at the kill.
        Returns how many files are listed."""
        rng = random.Random(f"{self.seed}-{self.round}-verify")
        with httpx.Client(base_url=server.base_url, headers=GA_HEADERS, timeout=60) as client:
            listed = self.list_all(client)
            to_check = set(self.unverified)
            for file_id, meta in listed.items():
                name = meta["filename"]
                if file_id in self.live:
                    up = self.live[file_id]
                    if (meta["size_bytes"], name) != (up.size, up.name):
                        self.problem(f"{file_id} ({up.name}, {up.size} bytes) is listed as {meta}")
                elif file_id in self.maybe_deleted:
                    self.live[file_id] = self.maybe_deleted.pop(file_id)
                    self.stats["in-flight deletes not applied"] += 1
                    to_check.add(file_id)
                elif name in self.unknown:
                    up = self.unknown.pop(name)
                    self.stats["in-flight uploads found complete"] += 1
                    if meta["size_bytes"] != up.size or not self.check_content(client, file_id, up):
                        self.stats["corrupted"] += 1
                        self.problem(
                            f"unanswered upload {name} ({up.size} bytes, {up.sent} sent before the kill) "
                            f"is visible as {meta} but not as sent: half-written"
                        )
                    self.live[file_id] = up
                elif file_id in self.deleted:
                    self.stats["resurrected deletes"] += 1
                    self.problem(f"{file_id} ({name}) was deleted (200) but is listed again")
                elif name in self.vanished:
                    self.problem(f"upload {name} was absent after an earlier restart but is now {meta}")
                else:
                    self.problem(f"unexpected file {meta}")
            for file_id, up in list(self.live.items()):
                if file_id not in listed:
                    self.stats["lost"] += 1
                    self.problem(f"acknowledged upload {file_id} ({up.name}, round {up.round}) is not listed")
                    del self.live[file_id]
            for file_id in [i for i in self.maybe_deleted if i not in listed]:
                self.deleted[file_id] = self.maybe_deleted.pop(file_id)
                self.stats["in-flight deletes applied"] += 1
            self.stats["in-flight uploads found absent"] += len(self.unknown)
            self.vanished |= set(self.unknown)
            self.unknown.clear()
            # Bytes: everything new since the last restart, a sample of the rest (all when full).
            others = sorted(set(self.live) - to_check)
            to_check |= set(others if full else rng.sample(others, min(8, len(others))))
            for file_id in sorted(to_check & set(self.live)):
                up = self.live[file_id]
                if not self.check_content(client, file_id, up):
                    self.stats["corrupted"] += 1
            self.unverified.clear()
            gone = sorted(self.deleted)
            for file_id in gone if full else rng.sample(gone, min(8, len(gone))):
                for path in (f"/v1/files/{file_id}", f"/v1/files/{file_id}/content"):
                    status = client.get(path).status_code
                    if status != 404:
                        self.stats["resurrected deletes"] += 1
                        self.problem(f"GET {path} of a deleted file answered {status}")
        return len(listed)

    def start_scrub(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "filesapi", "scrub", *self.storage],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env},
        )

    def check_scrub(self, scrub: subprocess.Popen[str], listed: int) -> None:
        out, err = scrub.communicate(timeout=300)
        found = _SCRUBBED.search(err)
        if scrub.returncode != 0 or found is None or int(found.group(2)) != 0:
            self.problem(f"scrub exited {scrub.returncode}:\n{out}{err}")
        elif int(found.group(1)) != listed:
            self.problem(f"scrub checked {found.group(1)} files, the server lists {listed}")
        self.stats["scrubs"] += 1

    def start(self) -> LiveServer:
        return start_server(self.tmp_path, *self.storage, env=self.env)

    def run(self) -> None:
        print(f"crash test: seed {self.seed}, {self.rounds} rounds, storage {self.storage}")
        server: LiveServer | None = None
        scrub: subprocess.Popen[str] | None = None
        try:
            for number in range(self.rounds + 1):
                self.round = number
                # scrub reads the storage as it was left by the kill, while the server restarts
                scrubbing = self.round and (
                    self.round % self.profile.scrub_every == 0 or self.round == self.rounds
                )
                scrub = self.start_scrub() if scrubbing else None
                began = time.monotonic()
                server = self.start()
                self.seconds["starting servers"] += time.monotonic() - began
                if self.round:
                    began = time.monotonic()
                    listed = self.verify(server, full=False)
                    if scrub is not None:
                        self.check_scrub(scrub, listed)
                    self.seconds["checking after restarts"] += time.monotonic() - began
                self.check_problems()
                if self.round == self.rounds:
                    break
                began = time.monotonic()
                self.traffic_then_kill(server)
                self.seconds["traffic and kills"] += time.monotonic() - began
                server = None
            assert server is not None
            self.verify(server, full=True)
            self.check_problems()
            stop_server(server)
            server = None
        finally:
            if server is not None:
                kill_server(server)
            if scrub is not None and scrub.poll() is None:
                scrub.kill()
                scrub.wait()

    def final_checks(self, storage_listing) -> None:
        """With the server stopped: gc removes exactly the leftovers, then everything is clean.
        ``storage_listing()`` -> (blob keys, unfinished uploads) as the storage itself holds them."""
        live = set(self.live)
        keys, unfinished = storage_listing()
        assert live <= keys, f"blobs of live files missing from storage: {sorted(live - keys)}"
        extra = keys - live
        gc = run_cli("gc", "--grace", "0", *self.storage, env=self.env)
        assert gc.returncode == 0, gc.stdout + gc.stderr
        report = parse_gc(gc.stdout)
        # Exactly the unfinished uploads (temp files, S3 multipart uploads) the kills left.
        assert report["unfinished uploads removed"] == unfinished, (gc.stdout, unfinished)
        assert unfinished <= self.stats["uploads in flight at kills"], (unfinished, self.stats)
        # A blob no live file owns is an orphan (killed before its row committed) or belongs to an
        # interrupted delete (row hidden); rows of interrupted deletes may have lost their blob already.
        assert report["orphan blobs removed"] <= len(extra), (gc.stdout, extra)
        assert report["orphan blobs removed"] + report["finished deletes"] >= len(extra), (gc.stdout, extra)
        assert report["expired content purged"] == 0
        self.leftovers = {
            "unfinished uploads": report["unfinished uploads removed"],
            "orphan blobs": report["orphan blobs removed"],
            "interrupted deletes": report["finished deletes"],
        }
        keys, unfinished = storage_listing()
        assert keys == live and unfinished == 0, (sorted(keys ^ live), unfinished)
        again = run_cli("gc", "--grace", "0", *self.storage, env=self.env)
        assert again.returncode == 0 and set(parse_gc(again.stdout).values()) == {0}, again.stdout
        scrub = run_cli("scrub", *self.storage, env=self.env)
        found = _SCRUBBED.search(scrub.stderr)
        assert scrub.returncode == 0 and found is not None, scrub.stdout + scrub.stderr
        assert (int(found.group(1)), int(found.group(2))) == (len(live), 0), scrub.stderr
        stats = run_cli("stats", "--json", *self.storage, env=self.env)
        assert stats.returncode == 0, stats.stderr
        rows = [line for line in stats.stdout.splitlines() if line.strip()]
        totals = [(json.loads(r)["files"], json.loads(r)["bytes"]) for r in rows]
        assert [t for t in totals if t != (0, 0)] == [(len(live), self.live_bytes)], (
            f"quota accounting after crashes: {stats.stdout} vs {len(live)} files, {self.live_bytes} bytes"
        )
        # And after all that, every acknowledged file still downloads byte-identical.
        self.round = self.rounds + 1
        server = self.start()
        try:
            assert self.verify(server, full=True) == len(live)
            self.check_problems()
        finally:
            stop_server(server)

    def figures(self, seconds: float) -> dict[str, object]:
        s = self.stats
        return {
            "rounds (SIGKILLs)": self.rounds,
            "seed": self.seed,
            "requests acknowledged": s["requests acknowledged"],
            "uploads acknowledged": s["uploads acknowledged"],
            "deletes acknowledged": s["deletes acknowledged"],
            "downloads verified during traffic": s["downloads verified during traffic"],
            "kills mid-upload (a body cut off)": s["kills mid-upload"],
            "uploads in flight at kills": s["uploads in flight at kills"],
            "uploads killed mid-body": s["uploads killed mid-body"],
            "largest body cut off, bytes sent": s["largest body cut off (bytes sent)"],
            "in-flight uploads found complete / absent": [
                s["in-flight uploads found complete"],
                s["in-flight uploads found absent"],
            ],
            "deletes in flight at kills / applied / not applied": [
                s["deletes in flight at kills"],
                s["in-flight deletes applied"],
                s["in-flight deletes not applied"],
            ],
            "files checked (distinct, downloaded byte-identical after a restart)": len(self.checked_ids),
            "downloads verified after restarts": s["downloads verified after restarts"],
            "scrubs after kills, all clean": s["scrubs"],
            "files at the end": len(self.live),
            "lost": s["lost"],
            "corrupted": s["corrupted"],
            "resurrected deletes": s["resurrected deletes"],
            "leftovers removed by gc (unfinished uploads, orphan blobs, interrupted deletes)": [
                self.leftovers.get("unfinished uploads", 0),
                self.leftovers.get("orphan blobs", 0),
                self.leftovers.get("interrupted deletes", 0),
            ],
            "test seconds": round(seconds, 1),
        }


def _seed() -> int:
    return int(os.environ.get("FILESAPI_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))


def _rounds(default: int) -> int:
    return int(os.environ.get("FILESAPI_CRASH_ROUNDS") or default)


@pytest.mark.slow
def test_sigkill_during_traffic_sqlite_disk(tmp_path: Path) -> None:
    began = time.monotonic()
    data_dir = tmp_path / "data"
    run = CrashRun(tmp_path, DISK, ("--data-dir", str(data_dir)), {}, _seed(), _rounds(50))
    run.run()

    def on_disk() -> tuple[set[str], int]:
        blobs = {p.name for p in (data_dir / "blobs" / "blobs").rglob("*") if p.is_file()}
        with contextlib.closing(sqlite3.connect(data_dir / "metadata.db")) as db:
            inline = {row[0] for row in db.execute("SELECT file_id FROM inline_contents")}  # small files
        assert inline and blobs, "the traffic stores files both ways"
        return blobs | inline, len(list((data_dir / "blobs" / "tmp").iterdir()))

    run.final_checks(on_disk)
    assert run.stats["uploads acknowledged"] > 0 and run.stats["deletes acknowledged"] > 0
    figures = run.figures(time.monotonic() - began)
    print(figures, {k: round(v, 1) for k, v in run.seconds.items()})
    record("crash", "SQLite + local disk: SIGKILL during mixed traffic", **figures)


def _s3_listing(s3, prefix: str) -> tuple[set[str], int]:
    """Object keys under the prefix and unfinished multipart uploads, straight from the S3 server."""
    from aiobotocore.session import get_session

    async def list_both() -> tuple[set[str], int]:
        async with get_session().create_client(
            "s3",
            region_name=s3.region,
            endpoint_url=s3.endpoint,
            aws_access_key_id=s3.access_key,
            aws_secret_access_key=s3.secret_key,
        ) as client:
            keys: set[str] = set()
            async for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=s3.bucket, Prefix=prefix + "/"
            ):
                keys |= {o["Key"].removeprefix(prefix + "/") for o in page.get("Contents", [])}
            uploads = 0
            async for page in client.get_paginator("list_multipart_uploads").paginate(
                Bucket=s3.bucket, Prefix=prefix + "/"
            ):
                uploads += len(page.get("Uploads", []))
            return keys, uploads

    return asyncio.run(list_both())


@pytest.mark.slow
def test_sigkill_during_traffic_postgres_s3(tmp_path: Path, postgres_server, s3_server) -> None:
    began = time.monotonic()
    prefix = "crash" + uuid.uuid4().hex[:10]
    storage = (
        "--database-url",
        postgres_server.create_database(),
        "--blob-url",
        s3_server.url(prefix),
        "--data-dir",
        str(tmp_path / "unused"),
    )
    run = CrashRun(tmp_path, S3, storage, s3_server.env, _seed(), _rounds(10))
    run.run()
    run.final_checks(lambda: _s3_listing(s3_server, prefix))
    assert run.stats["uploads acknowledged"] > 0 and run.stats["deletes acknowledged"] > 0
    figures = run.figures(time.monotonic() - began)
    print(figures, {k: round(v, 1) for k, v in run.seconds.items()})
    record("crash", "PostgreSQL + S3 (SeaweedFS): SIGKILL during mixed traffic", **figures)
