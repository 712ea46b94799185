#!/usr/bin/env python3
"""filesapi benchmark suite: every benchmark against the real server process, each figure next to
an anchor measured in the same run, and the ratio between them.

    .venv/bin/python bench/run.py                 # full run (~10 min), writes docs/benchmarks.{md,png}
    .venv/bin/python bench/run.py --quick         # small sizes, 1 round (~1-2 min), writes bench/results/
    .venv/bin/python bench/run.py --only list,metadata --rounds 3

Client and server run on this machine and talk over 127.0.0.1 only. Each benchmark starts its own
``python -m filesapi serve`` (a fresh data folder under one temporary folder; the local-disk store
unless said otherwise), measures over --rounds rounds, and stops it. Within a round the anchor and
filesapi are measured back to back, in an order that alternates between rounds, so drift on a shared
machine hits both. The table shows medians over the rounds; the ratio column is the median of the
per-round ratios (figure / anchor of the same round).

Benchmarks (--only takes these names):

  (each benchmark's module docstring in bench/benchmarks/, in the order of its REGISTRY)

--quick uses 64 MiB files (16 MiB for the flatness probe and the parallel uploads), a store of
100,000 files, 3-second wrk runs and one round.

Nothing here asserts timings; the "met?" column only reports. The process exits 0 unless a
benchmark failed to run (a missed target is not a failure). It kills every process it starts (the
servers, nginx, PostgreSQL, SeaweedFS), also on errors and Ctrl+C, and removes its temporary files.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import BY_NAME, NAMES, REGISTRY, help_text
from harness.chart import chart
from harness.context import ROOT, Ctx, Unavailable
from harness.notes import general_notes
from harness.plan import FULL, QUICK, Plan
from harness.procs import Procs
from harness.report import machine, markdown, print_table, write_raw
from harness.stats import SECTIONS, Row

DOC = (__doc__ or "").strip()
# the docstring line that --help replaces with help_text()
ENTRIES = "  (each benchmark's module docstring in bench/benchmarks/, in the order of its REGISTRY)"


def make_rows(plan: Plan) -> dict[str, Row]:
    """Every benchmark's rows by key, in the table's order: by section, then as in REGISTRY."""
    rows = {key: row for b in REGISTRY for key, row in b.rows(plan).items()}
    return dict(sorted(rows.items(), key=lambda kv: SECTIONS.index(kv[1].section)))


def have_tool(tool: str) -> bool:
    return shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=DOC.split("\n\n", 1)[0],
        epilog=DOC.split("\n\n", 1)[1].replace(ENTRIES, help_text()) + "\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and one round (~1-2 minutes)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per benchmark (default 5, --quick 1)"
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated benchmarks to run (default all): {','.join(NAMES)}"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for benchmarks.md and benchmarks.png (default docs/ for a full run of every benchmark, "
        "bench/results/ for --quick or --only)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="run the server from this source folder (first on PYTHONPATH), not the installed filesapi",
    )
    parser.add_argument("--verbose", action="store_true", help="print wrk's full output")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    args.names = names or list(NAMES)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = dataclasses.replace(base, rounds=args.rounds or base.rounds)
    missing = [tool for tool in ("curl", "wrk", "dd") if shutil.which(tool) is None]
    for name in args.names:
        missing += [tool for tool in BY_NAME[name].tools if not have_tool(tool) and tool not in missing]
    if missing:
        print(f"missing tools: {', '.join(missing)} (apt-get install -y curl wrk nginx)", file=sys.stderr)
        return 2
    full = not args.quick and args.names == list(NAMES)
    out_dir = args.out or (ROOT / "docs" if full else ROOT / "bench" / "results")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILESAPI_", "AWS_"))}
    env["NO_PROXY"] = "*"
    if args.src:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"] = str(args.src.resolve())  # tests/servers_pg.py too
    python = (
        str(ROOT / ".venv" / "bin" / "python")
        if (ROOT / ".venv" / "bin" / "python").exists()
        else sys.executable
    )

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="filesapi-bench-"))
    procs = Procs()
    ctx = Ctx(
        plan=plan, work=work, procs=procs, python=python, env=env, rows=make_rows(plan), verbose=args.verbose
    )
    started = time.monotonic()
    load_start = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    failures = 0
    info: dict[str, str] = {}
    try:
        info = machine(ctx)
        print(
            f"filesapi benchmarks ({'quick' if args.quick else 'full'}, {plan.rounds} round(s)); "
            f"work folder {work}"
        )
        print(f"  {info['CPU']}, {info['cores']} cores, {info['RAM']}; load {load_start}")
        for name in args.names:
            print(f"[{name}]", flush=True)
            t0 = time.monotonic()
            try:
                BY_NAME[name].run(ctx)
            except Unavailable as exc:
                for row in ctx.rows.values():
                    if row.bench == name:
                        row.status = f"not available: {exc}"
                ctx.note(name, f"not available: {exc}")
                print(f"  not available: {exc}", flush=True)
            except (Exception, subprocess.TimeoutExpired) as exc:
                failures += 1
                detail = traceback.format_exc()
                for row in ctx.rows.values():
                    if row.bench == name and not row.figure:
                        row.status = (
                            f"failed: {str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}"
                        )
                ctx.note(name, f"failed: {exc!s}".splitlines()[0][:300])
                print(f"  FAILED: {detail}", flush=True)
            print(f"  ({time.monotonic() - t0:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process this run started; no report written", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    rows = [r for r in ctx.rows.values() if r.bench in args.names]
    minutes = (time.monotonic() - started) / 60
    print()
    print_table(rows)
    print()
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "benchmarks.png"
    meta = {
        "command": " ".join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]).strip(),
        "date": date,
        "minutes": minutes,
        "load_start": load_start,
        "load_end": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
        "notes": general_notes(ctx),
    }
    title = (
        f"filesapi benchmarks, {date}: {info.get('cores', '?')} cores, client and server on one machine, "
        f"medians of {plan.rounds} round{'s' if plan.rounds != 1 else ''}"
    )
    chart_note = chart(rows, png, title)
    if chart_note:
        print(chart_note)
    (out_dir / "benchmarks.md").write_text(markdown(ctx, list(NAMES), rows, info, meta, png, chart_note))
    raw_path = ROOT / "bench" / "results" / "benchmarks.json"
    write_raw(raw_path, ctx, rows, info, meta)
    written = [out_dir / "benchmarks.md", *([png] if not chart_note else []), raw_path]
    print("wrote " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written))
    print(f"{minutes:.1f} minutes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
