"""The benchmark code in bench/ stays importable and its entry points start: a broken import or a
benchmark module left out of the registry shows here, without running any benchmark."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
PACKAGES = ("harness", "benchmarks", "asgi_compare")


@pytest.fixture
def bench_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.syspath_prepend(str(BENCH.parent / "tests"))


def bench_modules() -> list[str]:
    names = [p.stem for p in BENCH.glob("*.py")]
    for package in PACKAGES:
        names.append(package)
        names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(BENCH / package)])]
    return sorted(names)


def test_the_packages_hold_modules() -> None:
    names = bench_modules()
    assert {"run", "asgi_servers", "s3_blobs", "harness.servers", "benchmarks.upload"} <= set(names)


@pytest.mark.parametrize("name", bench_modules())
def test_every_bench_module_imports(bench_path: None, name: str) -> None:
    importlib.import_module(name)


def test_every_benchmark_module_is_registered(bench_path: None) -> None:
    benchmarks = importlib.import_module("benchmarks")
    stats = importlib.import_module("harness.stats")
    plan = importlib.import_module("harness.plan")
    modules = {m.name for m in pkgutil.iter_modules([str(BENCH / "benchmarks")])} - {"common"}
    registered = {b.run.__module__.removeprefix("benchmarks.") for b in benchmarks.REGISTRY}
    assert registered == modules
    assert len(set(benchmarks.NAMES)) == len(benchmarks.REGISTRY)
    for b in benchmarks.REGISTRY:
        rows = b.rows(plan.QUICK)
        assert rows, b.name
        for row in rows.values():
            assert row.bench == b.name
            assert row.section in stats.SECTIONS


def test_table_rows_are_grouped_by_section(bench_path: None) -> None:
    run = importlib.import_module("run")
    plan = importlib.import_module("harness.plan")
    stats = importlib.import_module("harness.stats")
    rows = list(run.make_rows(plan.FULL).values())
    sections = [stats.SECTIONS.index(r.section) for r in rows]
    assert sections == sorted(sections)
    assert rows[0].label.startswith("upload 1 GiB")


@pytest.mark.parametrize("script", ["run.py", "asgi_servers.py", "s3_blobs.py"])
def test_entry_points_print_help(script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_run_help_lists_every_benchmark(bench_path: None) -> None:
    benchmarks = importlib.import_module("benchmarks")
    out = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    for name in benchmarks.NAMES:
        assert f"\n  {name} " in out.stdout, name
    assert ",".join(benchmarks.NAMES) in out.stdout.replace("\n", "").replace(" ", "")


def test_the_capacity_sweep_script_runs(bench_path: None, tmp_path: Path) -> None:
    """The capacity benchmark runs this script in a child process, where a stale import shows
    only as a failed row at the end of a long run (it imported the CLI's helper from its old
    place): run it here on an empty SQLite store."""
    capacity = importlib.import_module("benchmarks.capacity")
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    done = subprocess.run(
        [sys.executable, "-c", capacity._SWEEP, url, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    purged, rounds, _seconds = done.stdout.split()
    assert (purged, rounds) == ("0", "1")
