"""The deployment guide's nginx config, run as written (ports substituted) in front of replicas."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from conftest import GA_HEADERS, LiveServer, free_port, start_server, stop_server
from servers_pg import PostgresServer
from servers_s3 import SeaweedS3

CONFIG = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "nginx.conf"


def _render(prefix: Path, listen: int, upstreams: list[int]) -> str:
    text = CONFIG.read_text()
    lines = [f"        server 127.0.0.1:{port} max_fails=3 fail_timeout=5s;" for port in upstreams]
    start = text.index("        server 127.0.0.1:8001")
    end = text.index("        keepalive 64;")
    text = text[:start] + "\n".join(lines) + "\n" + text[end:]
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen};")
    text = text.replace("worker_processes auto;", "worker_processes 1;")
    own = f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n" + (
        "user root;\n" if os.geteuid() == 0 else ""
    )
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return own + text.replace("http {\n", f"http {{\n    access_log off;\n{temp}", 1)


@contextlib.contextmanager
def nginx_in_front(prefix: Path, replicas: list[LiveServer]) -> Iterator[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), (
        "nginx is not installed (scripts/test.sh installs it: apt-get install -y nginx)"
    )
    prefix.mkdir()
    listen = free_port()
    (prefix / "nginx.conf").write_text(
        _render(prefix, listen, [int(r.base_url.rsplit(":", 1)[1]) for r in replicas])
    )
    process = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    )
    base = f"http://127.0.0.1:{listen}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_uploads_stream_through_without_buffering(tmp_path: Path) -> None:
    """The replica starts writing the file while the client is still sending it: nginx does not
    spool the body first. The client waits for that before sending the rest, so a buffering
    proxy would make this test time out."""
    (tmp_path / "r").mkdir()
    replica = start_server(tmp_path / "r", "--data-dir", str(tmp_path / "data"))
    partial_dir = tmp_path / "data" / "blobs" / "tmp"
    try:
        with nginx_in_front(tmp_path / "nginx", [replica]) as base:
            block = os.urandom(1 << 20)
            sent = hashlib.sha256()
            seen_partial = []

            def body() -> Iterator[bytes]:  # chunked, as the Ruby SDK sends
                yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
                for i in range(40):
                    chunk = i.to_bytes(4, "big") + block[4:]
                    sent.update(chunk)
                    yield chunk
                    if i == 15:
                        deadline = time.monotonic() + 20
                        while time.monotonic() < deadline and not any(
                            p.stat().st_size for p in partial_dir.iterdir()
                        ):
                            time.sleep(0.05)
                        seen_partial.append(sum(p.stat().st_size for p in partial_dir.iterdir()))
                yield b"\r\n--b--\r\n"

            headers = GA_HEADERS | {"content-type": "multipart/form-data; boundary=b"}
            response = httpx.post(base + "/v1/files", content=body(), headers=headers, timeout=120)
            assert response.status_code == 200, response.text
            assert seen_partial and 0 < seen_partial[0] < 40 << 20, seen_partial
            received = hashlib.sha256()
            file_id = response.json()["id"]
            with httpx.stream(
                "GET", f"{base}/v1/files/{file_id}/content", headers=GA_HEADERS, timeout=120
            ) as down:
                assert down.headers["content-length"] == str(40 << 20)
                for chunk in down.iter_bytes():
                    received.update(chunk)
            assert received.digest() == sent.digest()
    finally:
        stop_server(replica)


def test_two_replicas_on_postgres_and_s3_behind_nginx(
    postgres_server: PostgresServer, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    args = ["--database-url", postgres_server.create_database(), "--blob-url", s3_server.url(),
            "--max-file-size", "100MiB"]  # fmt: skip
    replicas = []
    for i in range(2):
        (tmp_path / f"r{i}").mkdir()
        replicas.append(start_server(tmp_path / f"r{i}", *args, env=s3_server.env))
    try:
        with nginx_in_front(tmp_path / "nginx", replicas) as base:
            # Announce 200 MiB and send nothing: filesapi refuses from the header, through nginx.
            conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
            conn.putrequest("POST", "/v1/files")
            for name, value in (GA_HEADERS | {"content-type": "multipart/form-data; boundary=b"}).items():
                conn.putheader(name, value)
            conn.putheader("content-length", str(200 << 20))
            conn.endheaders()
            too_big = conn.getresponse()
            assert too_big.status == 413
            assert json.loads(too_big.read())["error"]["type"] == "request_too_large"
            conn.close()
            missing = httpx.get(base + "/v1/files/file_nope", headers=GA_HEADERS)
            assert missing.status_code == 404 and missing.headers["request-id"].startswith("req_")
            payloads = {httpx.post(base + "/v1/files", files={"file": ("a", os.urandom(5000))}, headers=GA_HEADERS)
                        .json()["id"] for _ in range(8)}  # fmt: skip
            listed = {f["id"] for f in httpx.get(base + "/v1/files", headers=GA_HEADERS).json()["data"]}
            assert payloads <= listed
        # Both replicas took requests.
        served = [r.log().count("POST /v1/files") for r in replicas]
        assert all(count > 0 for count in served), served
    finally:
        for replica in replicas:
            stop_server(replica)
