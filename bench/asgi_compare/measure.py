"""One round of the ASGI-server comparison: the anchors, then per server an upload (disk and tmpfs),
a download, parallel downloads, small requests and the probe's raw body delivery."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.anchors import LoopbackSink, dd_mib_s
from harness.clients import CURL_HEADERS, curl, curl_parallel, delete_file
from harness.plan import MiB
from harness.procfs import RssSampler, proc_status_kib, tree_cpu_seconds, worker_pid
from harness.stats import Samples

from asgi_compare.load import python_rps, wrk_rps
from asgi_compare.servers import Server


@dataclass
class Results(Samples):
    info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def samples(self) -> dict[str, dict[str, list[float]]]:
        return self.data


def multipart(src: Path) -> list[str]:
    return ["-F", f"file=@{src};type=application/octet-stream"]


def upload(srv: Server, src: Path, out: Path) -> tuple[str, float]:
    """POST the file as multipart, like the SDKs (without Expect: 100-continue, which they don't send
    either). Returns the file id and curl's time_total."""
    r = curl(["-o", str(out), "-H", "Expect:", *CURL_HEADERS, *multipart(src), f"{srv.url}/v1/files"])
    if r.code != 200:
        raise RuntimeError(f"{srv.spec.name} upload: HTTP {r.code} {out.read_text()[:500]}")
    return json.loads(out.read_text())["id"], r.seconds


def parallel_downloads(url: str, n: int) -> float:
    """Aggregate seconds for n simultaneous curl downloads of url."""
    return curl_parallel([["-o", "/dev/null", *CURL_HEADERS, url]] * n, "parallel downloads")


def measure_anchors(
    res: Results, work: Path, src: Path, sink: LoopbackSink, args: argparse.Namespace
) -> None:
    """dd write and read of a file as large as the test file, and curl against the raw-socket sink."""
    size = args.size * MiB
    dd_file = work / "dd.bin"
    res.add(
        "anchors",
        "dd_write",
        dd_mib_s(["if=/dev/zero", f"of={dd_file}", "bs=1M", f"count={args.size}", "conv=fsync"]),
    )
    res.add("anchors", "dd_read", dd_mib_s([f"if={dd_file}", "of=/dev/null", "bs=1M"]))
    dd_file.unlink()
    sink_url = f"http://127.0.0.1:{sink.port}/"
    r = curl(["-o", "/dev/null", "-H", "Expect:", *multipart(src), sink_url])
    res.add("anchors", "loop_up", size / r.seconds / MiB)
    r = curl(["-o", "/dev/null", sink_url])
    res.add("anchors", "loop_down", size / r.seconds / MiB)
    res.add(
        "anchors", "loop_down_par", args.parallel * size / parallel_downloads(sink_url, args.parallel) / MiB
    )


def measure_round(
    srv: Server,
    probe: Server,
    tmpfs: Server | None,
    src: Path,
    size: int,
    res: Results,
    args: argparse.Namespace,
) -> None:
    name = srv.spec.name
    assert srv.proc is not None
    wpid = worker_pid(srv.proc.pid)
    res.add(name, "rss_idle", proc_status_kib(wpid, "VmRSS") / 1024)

    gib = size / (1 << 30)

    # (1) upload, multipart
    cpu0 = tree_cpu_seconds(srv.proc.pid)
    with RssSampler(wpid) as rss:
        file_id, seconds = upload(srv, src, src.parent / f"upload-{name}.json")
    res.add(name, "cpu_upload", (tree_cpu_seconds(srv.proc.pid) - cpu0) / gib)
    res.add(name, "upload", size / seconds / MiB)
    res.add(name, "rss_upload", rss.peak_mib)

    # (1b) the same upload to a server whose data folder is on tmpfs: same code path, no disk
    if tmpfs is not None:
        assert tmpfs.proc is not None
        cpu0 = tree_cpu_seconds(tmpfs.proc.pid)
        tmp_id, seconds = upload(tmpfs, src, src.parent / f"upload-tmpfs-{name}.json")
        res.add(name, "cpu_upload_tmpfs", (tree_cpu_seconds(tmpfs.proc.pid) - cpu0) / gib)
        res.add(name, "upload_tmpfs", size / seconds / MiB)
        delete_file(tmpfs.url, tmp_id)

    # (2) download of that file
    content = f"{srv.url}/v1/files/{file_id}/content"
    cpu0 = tree_cpu_seconds(srv.proc.pid)
    with RssSampler(wpid) as rss:
        r = curl(["-o", "/dev/null", *CURL_HEADERS, content])
    res.add(name, "cpu_download", (tree_cpu_seconds(srv.proc.pid) - cpu0) / gib)
    if r.code != 200 or int(r.downloaded) != size:
        raise RuntimeError(f"{name} download: HTTP {r.code}, {r.downloaded} bytes")
    res.add(name, "download", size / r.seconds / MiB)
    res.add(name, "rss_download", rss.peak_mib)

    # (2b) several downloads at once: with curl as the ceiling for one stream, the server's own
    # CPU cost per byte shows up here
    with RssSampler(wpid) as rss:
        seconds = parallel_downloads(content, args.parallel)
    res.add(name, "download_par", args.parallel * size / seconds / MiB)
    res.add(name, "rss_download_par", rss.peak_mib)
    res.info.setdefault(name, {})["worker_vmhwm_mib"] = proc_status_kib(wpid, "VmHWM") / 1024

    # (3) small requests, 64 connections
    load = wrk_rps if shutil.which("wrk") and not args.no_wrk else None
    for what, path in (("meta", f"/v1/files/{file_id}"), ("healthz", "/healthz")):
        if load:
            rps, bad, p99 = wrk_rps(srv.url + path, args.connections, args.duration, args.wrk_threads)
        else:
            rps, bad, p99 = python_rps(srv.url + path, args.connections, args.duration)
        if bad:
            raise RuntimeError(f"{name} {path}: {bad} non-2xx responses under load")
        res.add(name, what, rps)
        res.info[name].setdefault(f"{what}_p99", []).append(p99)

    # (4) the probe: raw ASGI body delivery (chunk sizes, throughput before any app work)
    assert probe.proc is not None
    cpu0 = tree_cpu_seconds(probe.proc.pid)
    r = curl(
        ["-o", str(src.parent / f"probe-{name}.json"), "-H", "Expect:", *multipart(src), f"{probe.url}/"]
    )
    got = json.loads((src.parent / f"probe-{name}.json").read_text())
    res.add(name, "cpu_raw_body", (tree_cpu_seconds(probe.proc.pid) - cpu0) / gib)
    res.add(name, "raw_body", size / r.seconds / MiB)
    res.info[name]["probe"] = got

    delete_file(srv.url, file_id)
