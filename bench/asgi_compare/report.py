"""The ASGI-server comparison's report: Markdown tables of medians against the anchors, the spread over
rounds, and what each server's probe saw."""

from __future__ import annotations

import argparse
import os
import shutil

from asgi_compare.measure import Results
from asgi_compare.servers import ServerSpec


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def report(res: Results, specs: list[ServerSpec], args: argparse.Namespace, elapsed: float) -> str:
    A = "anchors"
    dd_w, dd_r = res.med(A, "dd_write"), res.med(A, "dd_read")
    lo_up, lo_down = res.med(A, "loop_up"), res.med(A, "loop_down")
    lines = []
    lines.append(
        f"size {args.size} MiB, rounds {args.rounds} (medians), small requests: "
        f"{f'wrk -t{args.wrk_threads}' if shutil.which('wrk') and not args.no_wrk else 'python client'} "
        f"-c{args.connections} -d{args.duration}s; {os.cpu_count()} CPUs; {elapsed:.0f}s total; "
        f"load average at start {res.info.get('load_start', '?')}, at end {os.getloadavg()[0]:.2f}"
    )
    lines.append("")
    lo_par = res.med(A, "loop_down_par")
    lines.append("Large bodies, MiB/s (ratios against the anchors below):")
    lines.append("")
    lines.append(
        "| server | upload (disk) | vs dd write | upload (tmpfs) | raw ASGI body | vs loopback | download | "
        f"vs loopback | {args.parallel} downloads at once | vs loopback | pathsend |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for spec in specs:
        n = spec.name
        up, upt, raw = (res.med(n, k) for k in ("upload", "upload_tmpfs", "raw_body"))
        down, dpar = res.med(n, "download"), res.med(n, "download_par")
        probe = res.info.get(n, {}).get("probe", {})
        lines.append(
            f"| {n} | {fmt(up)} | {ratio(up, dd_w)} | {fmt(upt)} | {fmt(raw)} | {ratio(raw, lo_up)} | "
            f"{fmt(down)} | {ratio(down, lo_down)} | {fmt(dpar)} | {ratio(dpar, lo_par)} | "
            f"{'yes' if 'http.response.pathsend' in probe.get('extensions', []) else 'no'} |"
        )
    lines.append(f"| anchor: dd write conv=fsync | {fmt(dd_w)} | 1.00x | | | | | | | | |")
    lines.append(f"| anchor: dd read (page cache) | | | | | | {fmt(dd_r)} | | | | |")
    lines.append(
        f"| anchor: curl <-> raw socket (loopback) | | | | {fmt(lo_up)} | 1.00x | "
        f"{fmt(lo_down)} | 1.00x | {fmt(lo_par)} | 1.00x | |"
    )
    lines.append("")
    lines.append(
        "Server CPU seconds per GiB moved (utime+stime of the server's processes, all threads; "
        "less sensitive to a busy machine than MiB/s):"
    )
    lines.append("")
    lines.append("| server | upload (disk) | upload (tmpfs) | raw ASGI body | download |")
    lines.append("|---|---:|---:|---:|---:|")
    for spec in specs:
        n = spec.name
        lines.append(
            f"| {n} | {fmt(res.med(n, 'cpu_upload'), 2)} | {fmt(res.med(n, 'cpu_upload_tmpfs'), 2)} | "
            f"{fmt(res.med(n, 'cpu_raw_body'), 2)} | {fmt(res.med(n, 'cpu_download'), 2)} |"
        )
    lines.append("")
    lines.append(f"Small requests ({args.connections} connections) and memory:")
    lines.append("")
    lines.append(
        "| server | GET /v1/files/ID req/s | GET /healthz req/s | meta/healthz | body chunk (median) | "
        "worker RSS MiB idle / upload / download / parallel downloads |"
    )
    lines.append("|---|---:|---:|---:|---:|---|")
    for spec in specs:
        n = spec.name
        meta, hz = res.med(n, "meta"), res.med(n, "healthz")
        probe = res.info.get(n, {}).get("probe", {})
        rss = " / ".join(
            fmt(res.med(n, k)) for k in ("rss_idle", "rss_upload", "rss_download", "rss_download_par")
        )
        chunk = probe.get("median", 0) / 1024
        lines.append(f"| {n} | {fmt(meta)} | {fmt(hz)} | {ratio(meta, hz)} | {chunk:.0f} KiB | {rss} |")
    lines.append("")
    lines.append("spread over rounds (min-max):")
    for spec in specs:
        n = spec.name
        lines.append(
            f"  {n:<25} upload {res.spread(n, 'upload')}  tmpfs {res.spread(n, 'upload_tmpfs')}  "
            f"raw body {res.spread(n, 'raw_body')}  download {res.spread(n, 'download')}  "
            f"x{args.parallel} {res.spread(n, 'download_par')}  "
            f"meta {res.spread(n, 'meta')}  healthz {res.spread(n, 'healthz')}"
        )
    lines.append(
        f"  {'anchors':<25} dd write {res.spread(A, 'dd_write')}  dd read {res.spread(A, 'dd_read')}  "
        f"loopback up {res.spread(A, 'loop_up')}  down {res.spread(A, 'loop_down')}  "
        f"x{args.parallel} {res.spread(A, 'loop_down_par')}"
    )
    lines.append("")
    lines.append("servers:")
    for spec in specs:
        info = res.info.get(spec.name, {})
        probe = info.get("probe", {})
        lines.append(f"  {spec.name}: {spec.note}")
        lines.append(
            f"    probe: {probe.get('chunks')} body chunks, min {probe.get('min')} / median "
            f"{probe.get('median')} / max {probe.get('max')} bytes; extensions {probe.get('extensions')}"
        )
        lines.append(
            f"    worker VmHWM {info.get('worker_vmhwm_mib', 0):.0f} MiB; p99 latency meta "
            f"{info.get('meta_p99')} healthz {info.get('healthz_p99')}"
        )
    return "\n".join(lines)
