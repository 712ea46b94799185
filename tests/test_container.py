"""The container image and the compose deployment, built and run with the engine found here.

scripts/image.sh builds the image (podman here: runc, explicit ulimits, a Debian base made with
mmdebstrap); the tests run it on 127.0.0.1 ports only and drive it with the official Python SDK.
Where neither podman nor a running docker engine exists they fail, saying what to install."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SH = ROOT / "scripts" / "image.sh"
FILES_BETA = "files-api-2025-04-14"


class Engine:
    def __init__(self) -> None:
        probe = subprocess.run([str(IMAGE_SH), "--engine-env"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.fail(
                "no container engine: install podman (apt-get install -y podman mmdebstrap runc; "
                f"scripts/test.sh does) or start docker.\n{probe.stderr}"
            )
        values = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
        self.name = values["ENGINE"]
        self.env = dict(os.environ)
        if values.get("CONTAINERS_CONF"):
            self.env["CONTAINERS_CONF"] = values["CONTAINERS_CONF"]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.name, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} -> {done.returncode}\n{done.stderr}")
        return done

    def build(self, *args: str) -> list[str]:
        started = time.monotonic()
        done = subprocess.run(
            [str(IMAGE_SH), *args], capture_output=True, text=True, env=self.env, timeout=1200
        )
        assert done.returncode == 0, done.stderr
        print(f"scripts/image.sh {' '.join(args)}: {time.monotonic() - started:.1f}s")
        return done.stdout.strip().splitlines()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    return engine.build()[-1]


def _wait_healthz(base: str, engine: Engine, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("no answer on /healthz:\n" + engine("logs", name, check=False).stderr)


@contextlib.contextmanager
def container(engine: Engine, image: str, volume: str, *extra: str) -> Iterator[tuple[str, str]]:
    name = "filesapi-test-" + uuid.uuid4().hex[:8]
    port = free_port()
    engine(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", "-v", f"{volume}:/data", *extra, image
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthz(base, engine, name)
        yield name, base
    finally:
        engine("rm", "-f", "-v", "-t", "2", name, check=False)  # -v: and its anonymous volumes


@pytest.fixture
def volume(engine: Engine) -> Iterator[str]:
    name = "filesapi-test-" + uuid.uuid4().hex[:8]
    engine("volume", "create", name)
    yield name
    engine("volume", "rm", "-f", name, check=False)


def _key(engine: Engine, name: str, workspace: str = "team-a") -> str:
    return engine("exec", name, "filesapi", "keys", "create", "--workspace", workspace).stdout.strip()


def _client(base: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=2, timeout=30)


def _files_on_volume(engine: Engine, image: str, volume: str) -> list[str]:
    out = engine(
        "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "find", image, "/data/blobs", "-type", "f"
    ).stdout
    return sorted(out.split())


def test_image_serves_the_sdk_keeps_data_runs_as_non_root_and_turns_healthy(
    engine: Engine, image: str, volume: str
) -> None:
    payload = os.urandom(300_000)
    with container(engine, image, volume) as (name, base):
        uid = engine("exec", name, "sh", "-c", "grep ^Uid: /proc/1/status").stdout.split()[1]
        assert uid == "10001"  # the filesapi user, not root, is PID 1
        user = engine("exec", name, "id", "-un").stdout.strip()
        assert user == "filesapi"
        if engine.name == "podman":
            engine("healthcheck", "run", name)
        health = engine("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        assert health == "healthy"

        client = _client(base, _key(engine, name))
        with pytest.raises(anthropic.AuthenticationError):  # keys mode: a made-up key is refused
            _client(base, "sk-made-up").beta.files.list(betas=[FILES_BETA])
        kept = client.beta.files.upload(file=("kept.bin", payload, "application/octet-stream"))
        gone = client.beta.files.upload(file=("gone.txt", b"short", "text/plain"))
        listed = {f.id: f.filename for f in client.beta.files.list(betas=[FILES_BETA])}
        assert listed == {kept.id: "kept.bin", gone.id: "gone.txt"}
        assert client.beta.files.download(kept.id, betas=[FILES_BETA]).read() == payload
        assert client.beta.files.delete(gone.id, betas=[FILES_BETA]).id == gone.id
        assert [f.id for f in client.beta.files.list(betas=[FILES_BETA])] == [kept.id]

        engine("stop", "-t", "20", name)
        assert engine("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        engine("start", name)
        port = base.rsplit(":", 1)[1]
        _wait_healthz(f"http://127.0.0.1:{port}", engine, name)
        assert client.beta.files.download(kept.id, betas=[FILES_BETA]).read() == payload
        key = client.api_key

    # A new container on the same volume: the store (files and keys) lives in /data.
    with container(engine, image, volume) as (_, base):
        client = _client(base, key)
        assert [f.id for f in client.beta.files.list(betas=[FILES_BETA])] == [kept.id]
        assert client.beta.files.download(kept.id, betas=[FILES_BETA]).read() == payload


def test_sigterm_lets_the_upload_in_flight_finish_and_exits_zero(
    engine: Engine, image: str, volume: str
) -> None:
    with container(engine, image, volume) as (name, base):
        key = _key(engine, name)
        result: dict[str, object] = {}
        started = threading.Event()

        def body() -> Iterator[bytes]:
            yield (
                b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n"
            )
            for _ in range(40):  # 4 MB over about 4 s
                yield b"x" * 100_000
                started.set()
                time.sleep(0.1)
            yield b"\r\n--bnd--\r\n"

        def upload() -> None:
            headers = {
                "x-api-key": key,
                "anthropic-version": "2023-06-01",
                "anthropic-beta": FILES_BETA,
                "content-type": "multipart/form-data; boundary=bnd",
            }
            try:
                response = httpx.post(base + "/v1/files", content=body(), headers=headers, timeout=60)
                result["status"], result["json"] = response.status_code, response.json()
            except httpx.TransportError as exc:
                result["error"] = exc

        sender = threading.Thread(target=upload)
        sender.start()
        assert started.wait(10)
        time.sleep(1)
        partial = engine("exec", name, "find", "/data/blobs/tmp", "-type", "f").stdout.split()
        assert len(partial) == 1  # the upload is being written while SIGTERM arrives
        engine("stop", "-t", "30", name)  # SIGTERM (the image's STOPSIGNAL), SIGKILL only after 30 s
        sender.join(30)
        assert engine("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        logs = engine("logs", name).stderr + engine("logs", name).stdout
        assert "Shutting down granian" in logs

        left = _files_on_volume(engine, image, volume)
        assert not [p for p in left if p.startswith("/data/blobs/tmp/")], left
        if result.get("status") == 200:  # finished: the whole file is there
            file_id = result["json"]["id"]  # type: ignore[index]
            assert [p.rsplit("/", 1)[1] for p in left] == [file_id]
            engine("start", name)
            # podman keeps the published port across a restart
            _wait_healthz(base, engine, name)
            data = _client(base, key).beta.files.download(file_id, betas=[FILES_BETA]).read()
            assert data == b"x" * 4_000_000
        else:  # aborted: nothing of it anywhere
            assert left == [], (result, left)


def test_open_auth_on_all_interfaces_is_refused_unless_allowed(engine: Engine, image: str) -> None:
    refused = engine("run", "--rm", "-e", "FILESAPI_AUTH=open", image, check=False)
    assert refused.returncode == 1
    assert "--allow-open-network" in refused.stderr + refused.stdout


def test_compose_nginx_config_is_the_tested_one_with_only_addresses_changed() -> None:
    tested = (ROOT / "docs" / "deploy" / "nginx.conf").read_text().splitlines()
    compose = (ROOT / "deploy" / "nginx.conf").read_text().splitlines()

    def body(lines: list[str]) -> list[str]:
        return [line for line in lines if not line.startswith("#")]

    changed = [(a, b) for a, b in zip(body(tested), body(compose), strict=True) if a != b]
    assert [b.split()[:2] for _, b in changed] == [
        ["server", "filesapi-1:8000"],
        ["server", "filesapi-2:8000"],
        ["server", "filesapi-3:8000"],
        ["listen", "8080;"],
    ]


def test_compose_deployment_reads_after_writes_across_replicas_through_nginx(engine: Engine) -> None:
    lines = engine.build("--compose-images")
    env = dict(engine.env)
    env |= dict(line.split("=", 1) for line in lines if "=" in line)
    port = free_port()
    env["FILESAPI_HTTP_PORT"] = str(port)
    project = "filesapi-test-" + uuid.uuid4().hex[:6]
    compose_file = str(ROOT / "deploy" / "compose.yaml")
    if engine.name == "podman":
        # podman-compose (PyPI); --no-deps: podman 4.3 cannot start a container `--requires` an
        # exited one (the migrate job). The replicas restart until the schema is there.
        compose = [str(Path(sys.executable).parent / "podman-compose"), "-p", project, "-f", compose_file]
        up = [*compose, "up", "-d", "--no-deps"]
    else:
        compose = ["docker", "compose", "-p", project, "-f", compose_file]
        up = [*compose, "up", "-d", "--wait"]

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)

    started = time.monotonic()
    try:
        done = run(up)
        assert done.returncode == 0, done.stdout + done.stderr
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        ready = 0
        while ready < 6:  # every replica ready (nginx round-robins over the three)
            assert time.monotonic() < deadline, run([*compose, "logs"]).stdout[-5000:]
            with contextlib.suppress(httpx.TransportError):
                ready = ready + 1 if httpx.get(base + "/readyz", timeout=2).status_code == 200 else 0
            time.sleep(0.3)
        print(f"compose up to ready: {time.monotonic() - started:.1f}s")
        sep = "_" if engine.name == "podman" else "-"
        replica = f"{project}{sep}filesapi-1{sep}1"
        replicas = [replica.replace("filesapi-1", f"filesapi-{n}") for n in (1, 2, 3)]

        def logs(name: str) -> str:
            return engine("logs", name).stdout + engine("logs", name).stderr

        # A replica still restarting (waiting for the schema) when nginx first tried it is left out
        # for fail_timeout (5 s): wait until nginx has sent a request to each of the three.
        while not all("/readyz" in logs(name) for name in replicas):
            assert time.monotonic() < deadline, run([*compose, "logs"]).stdout[-5000:]
            for _ in range(3):
                with contextlib.suppress(httpx.TransportError):
                    httpx.get(base + "/readyz", timeout=2)
            time.sleep(0.5)
        # Only nginx is published, on loopback only; the rest talk on an internal network.
        published = {
            name: engine("port", name).stdout.split()
            for name in engine("ps", "--format", "{{.Names}}").stdout.split()
            if name.startswith(project)
        }
        assert {n: p for n, p in published.items() if p} == {
            f"{project}{sep}nginx{sep}1": ["8080/tcp", "->", f"127.0.0.1:{port}"]
        }
        backend = engine("network", "inspect", "--format", "{{.Internal}}", f"{project}_backend")
        assert backend.stdout.strip() == "true"
        client = _client(base, _key(engine, replica))
        ids = []
        for i in range(6):  # each read right after its write, on whichever replica nginx picks
            payload = os.urandom(50_000 + i)
            made = client.beta.files.upload(file=(f"f{i}.bin", payload, "application/octet-stream"))
            ids.append(made.id)
            for _ in range(3):  # nginx round-robins: three reads in a row land on three replicas
                assert client.beta.files.download(made.id, betas=[FILES_BETA]).read() == payload
        assert {f.id for f in client.beta.files.list(betas=[FILES_BETA])} == set(ids)
        served = sum(
            any(f"/v1/files/{file_id}/content" in logs(name) for file_id in ids) for name in replicas
        )
        assert served == 3  # every replica served reads of files written through another
    finally:
        names = [
            n for n in engine("ps", "-a", "--format", "{{.Names}}").stdout.split() if n.startswith(project)
        ]
        mounts = engine("inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", *names, check=False)
        down = run([*compose, "down", "-v", "-t", "5"])
        # podman-compose's down -v leaves the replicas' anonymous /data volumes (docker's removes them)
        engine("volume", "rm", "-f", *mounts.stdout.split(), check=False)
        print(f"compose up + test + down: {time.monotonic() - started:.1f}s")
        assert down.returncode == 0, down.stderr
    left = engine("ps", "-a", "--format", "{{.Names}}").stdout
    assert project not in left


def test_every_wheel_layer_is_keyed_on_what_its_wheels_were_built_from() -> None:
    """podman's builder keys a RUN step on its text, not on what a bind mount holds: a RUN that
    installs bind-mounted wheels without naming their key reused the layer of an older filesapi
    wheel of the same file name (seen: an image serving the previous session's code). Each such
    step must name a build argument that scripts/image.sh fills with the wheels' cache key."""
    containerfile = (ROOT / "Containerfile").read_text()
    script = IMAGE_SH.read_text()
    steps = [s for s in containerfile.split("\nRUN ")[1:] if "--mount=type=bind" in s.split("\n")[0]]
    assert len(steps) == 2
    for step, (arg, key) in zip(steps, [("DEPS_KEY", "deps_key"), ("APP_KEY", "app_key")], strict=True):
        assert f"${arg}" in step, arg
        assert f"ARG {arg}" in containerfile
        assert f'--build-arg "{arg}=${key}"' in script
