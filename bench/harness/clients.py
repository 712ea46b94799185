"""The clients: curl (one transfer or many at once), wrk (with its output parsed), and a sequential
keep-alive client for latencies; plus the API calls a benchmark makes along the way."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from harness.context import Ctx
    from harness.servers import FilesapiServer

API_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BETA_HEADER = {"anthropic-beta": "files-api-2025-04-14"}
CURL_HEADERS = [arg for k, v in API_HEADERS.items() for arg in ("-H", f"{k}: {v}")]


def run(argv: list[str], timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, **kw)


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


class CurlResult(NamedTuple):
    code: int  # HTTP status
    seconds: float  # time_total
    downloaded: float  # bytes


def curl(args: list[str]) -> CurlResult:
    """Runs curl (never through a proxy); RuntimeError when curl itself fails."""
    out = run(["curl", "-sS", "--noproxy", "*", "-w", "\n%{http_code} %{time_total} %{size_download}", *args])
    if out.returncode != 0:
        raise RuntimeError(f"curl failed ({out.returncode}): {out.stderr.strip()}")
    code, total, down = out.stdout.split()[-3:]
    return CurlResult(int(code), float(total), float(down))


def curl_parallel(argvs: list[list[str]], what: str, timeout: float = 900) -> float:
    """Runs one curl per argument list, all at once; the seconds until the last one ends. RuntimeError
    unless every one answered 200."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["curl", "-sS", "--noproxy", "*", "-w", "%{http_code}", *a],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in argvs
    ]
    results = [p.communicate(timeout=timeout) for p in procs]
    seconds = time.perf_counter() - started
    failed = [r for p, r in zip(procs, results, strict=True) if p.returncode != 0 or r[0] != "200"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(argvs)} {what} failed: {failed[0]}")
    return seconds


def upload_argv(url: str, src: Path, out: Path | str) -> list[str]:
    return ["-o", str(out), "-F", f"file=@{src}", *CURL_HEADERS, f"{url}/v1/files"]


def upload(server: FilesapiServer, src: Path) -> tuple[str, float]:
    out = server.ctx.work / f"upload-{server.name}.json"
    code, seconds, _ = curl(upload_argv(server.url, src, out))
    if code != 200:
        raise RuntimeError(f"upload of {src.name}: HTTP {code}: {out.read_text(errors='replace')[:500]}")
    return json.loads(out.read_text())["id"], seconds


def download(url: str, size: int, headers: list[str]) -> float:
    code, seconds, down = curl(["-o", "/dev/null", *headers, url])
    if code != 200 or int(down) != size:
        raise RuntimeError(f"GET {url}: HTTP {code}, {int(down)} of {size} bytes")
    return seconds


def api(server_url: str, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    conn = http.client.HTTPConnection(server_url.removeprefix("http://"), timeout=120)
    try:
        conn.request(method, path, headers={**API_HEADERS, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {body[:300]!r}")
        return json.loads(body) if body else None
    finally:
        conn.close()


def delete_file(server_url: str, file_id: str) -> None:
    with contextlib.suppress(Exception):
        api(server_url, "DELETE", f"/v1/files/{file_id}")


def sequential_latencies(url: str, path: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    """n sequential GETs on one keep-alive connection; milliseconds each (request sent to body read)."""
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    hdrs = {**API_HEADERS, **(headers or {})}
    times: list[float] = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            conn.request("GET", path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            times.append((time.perf_counter() - started) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
    finally:
        conn.close()
    return times


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    p99_text: str  # as wrk printed it, e.g. "12.31ms"
    requests: int
    non2xx: int
    socket_errors: str
    text: str  # wrk's whole output


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[m.group(2)]


def wrk_argv(
    url: str,
    connections: int,
    seconds: int,
    *,
    threads: int = 2,
    script: Path | None = None,
    headers: dict[str, str] | None = None,
    script_args: tuple[str, ...] = (),
) -> list[str]:
    """wrk's command line; ``script_args`` go after ``--`` to the script's ``init(args)``."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    return argv


def run_wrk(argv: list[str], timeout: float) -> WrkResult:
    """Runs wrk (argv from wrk_argv) and parses its --latency report; RuntimeError if it failed."""
    out = run(argv, timeout=timeout)
    text = out.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE)
    if out.returncode != 0 or not (m and total and p50 and p99):
        raise RuntimeError(f"wrk failed ({out.returncode}): {text}\n{out.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return WrkResult(
        rps=float(m.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        p99_text=p99.group(1),
        requests=int(total.group(1)),
        non2xx=int(bad.group(1)) if bad else 0,
        socket_errors=errors.group(0) if errors else "",
        text=text,
    )


def wrk(
    ctx: Ctx,
    bench: str,
    url: str,
    connections: int,
    *,
    script: Path | None = None,
    headers: dict[str, str] | None = None,
    run_prefix: str | None = None,
) -> WrkResult:
    """wrk -t2 for the suite: the command recorded for the report, any non-2xx response an error.
    ``run_prefix`` goes to the script as ``args[1]`` (e.g. a prefix that makes this run's paths
    new); the recorded command shows it as PREFIX, so that the rounds record one command."""
    args = (run_prefix,) if run_prefix is not None else ()
    argv = wrk_argv(url, connections, ctx.plan.wrk_seconds, script=script, headers=headers, script_args=args)
    shown_argv = [*argv[: len(argv) - len(args)], *(["PREFIX"] if args else [])]
    shown = re.sub(
        r"file_01\w+", "ID", shell_join(shown_argv).replace(url.split("/", 3)[2], "127.0.0.1:PORT")
    )
    ctx.command(bench, shown.replace(str(ctx.work), "$WORK"))
    result = run_wrk(argv, timeout=ctx.plan.wrk_seconds + 60)
    if result.non2xx:
        raise RuntimeError(
            f"wrk {url}: {result.non2xx} of {result.requests} responses were not 2xx:\n{result.text}"
        )
    if ctx.verbose:
        print(result.text)
    return result
