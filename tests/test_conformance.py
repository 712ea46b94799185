"""The cross-language conformance suite: every official SDK (Python, TypeScript, Go, Java; Ruby and C# by
wire replay) against a live server, through ``conformance/run.py``.

The runner installs what it needs itself (a venv for the beta-era Python SDK, ``npm ci``, ``go build``,
``mvn``), runs every SDK program against its own fresh server, prints the SDK x version x operation
matrix and regenerates ``docs/compatibility.md``. It runs once per session; each row of the matrix is
then one test here, which fails when an operation fails outside ``conformance/known_issues.toml``, when
a known issue no longer reproduces, or when the row could not run (a missing toolchain included: the
message says which and how to install it). Nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from servers_s3 import SeaweedS3

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "conformance" / "run.py"


def _load_runner() -> Any:
    spec = importlib.util.spec_from_file_location("conformance_run", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["conformance_run"] = module
    spec.loader.exec_module(module)
    return module


ROW_KEYS = [row.key for row in _load_runner().plan({})]


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs the whole suite once; returns the runner's JSON results."""
    out = tmp_path_factory.mktemp("conformance") / "results.json"
    result = subprocess.run(
        [sys.executable, str(RUNNER), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    print(result.stdout)
    print(result.stderr[-20000:], file=sys.stderr)
    assert out.exists(), (
        f"conformance/run.py wrote no results (exit {result.returncode}):\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    )
    data: dict[str, Any] = json.loads(out.read_text())
    data["exit_code"] = result.returncode
    data["matrix"] = result.stdout
    return data


def test_rows_cover_every_sdk() -> None:
    sdks = {key.split("-")[0] for key in ROW_KEYS}
    assert sdks == {"python", "typescript", "go", "java", "ruby", "csharp"}, sdks
    for sdk in ("python", "typescript", "go", "java"):
        assert len({k.split("-")[1] for k in ROW_KEYS if k.startswith(sdk + "-")}) >= 2, f"{sdk}: one version"


@pytest.mark.slow
@pytest.mark.parametrize("key", ROW_KEYS)
def test_sdk_row(conformance: dict[str, Any], key: str) -> None:
    rows = {row["key"]: row for row in conformance["rows"]}
    assert key in rows, f"{key} is missing from the results"
    row = rows[key]
    assert row["error"] is None, f"{key} did not run: {row['error']}"
    bad = {op: cell["detail"] for op, cell in row["cells"].items() if cell["status"] in ("fail", "stale")}
    known = {op: cell["issue"] for op, cell in row["cells"].items() if cell["status"] == "known"}
    print(f"{key}: {len(row['cells'])} operations, known SDK issues: {known or 'none'}")
    assert not bad, (
        f"{key}: {len(bad)} operation(s) failed outside conformance/known_issues.toml:\n"
        + "\n".join(f"  {op}: {detail}" for op, detail in bad.items())
        + f"\n--- program output ---\n{row['stdout'][-3000:]}\n--- stderr ---\n{row['stderr'][-2000:]}"
        + f"\n--- server log (tail) ---\n{row['server_log_tail'][-2000:]}"
    )
    assert row["cells"], f"{key} reported no operation"


@pytest.mark.slow
def test_every_sdk_follows_redirected_downloads(s3_server: SeaweedS3, tmp_path: Path) -> None:
    """The same programs against servers on S3 with ``download_redirect``: every SDK gets its
    downloads as a 307 to a presigned URL (the server counts them) and still passes every operation."""
    out = tmp_path / "redirect.json"
    blob_url = s3_server.url() + "&download_redirect=60"
    result = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--no-replays",
            "--out",
            str(tmp_path / "redirect.md"),
            "--json",
            str(out),
            f"--server-arg=--blob-url={blob_url}",
            "--server-arg=--inline-max-size=0",
        ],
        cwd=ROOT,
        env={**os.environ, **s3_server.env},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    print(result.stdout)
    assert out.exists(), result.stderr[-5000:]
    rows = json.loads(out.read_text())["rows"]
    assert {row["sdk"] for row in rows} == {"python", "typescript", "go", "java"}
    for row in rows:
        bad = {op: c["detail"] for op, c in row["cells"].items() if c["status"] in ("fail", "stale")}
        assert row["error"] is None and not bad, (
            row["key"],
            row["error"],
            bad,
            row["server_log_tail"][-2000:],
        )
        assert row["redirects"] > 0, f"{row['key']}: no download was redirected"
    assert result.returncode == 0, result.stdout[-5000:]


@pytest.mark.slow
def test_runner_exit_status_and_matrix(conformance: dict[str, Any]) -> None:
    assert "conformance:" in conformance["matrix"]
    assert (ROOT / "docs" / "compatibility.md").exists()
    assert conformance["exit_code"] == 0, conformance["matrix"][-5000:]


def _load_newest() -> Any:
    spec = importlib.util.spec_from_file_location("conformance_newest", RUNNER.parent / "newest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_newest_picks_the_highest_stable_release() -> None:
    """--newest reads registry listings in any order and never picks a pre-release."""
    newest = _load_newest()
    listing = ["2.9.0", "2.16.0", "2.10.1", "3.0.0-beta.1", "v2.17.0-rc1", "1.99.0"]
    assert newest._stable(listing)[-1] == "2.16.0"
    assert newest._stable(["v2.9.0", "v2.17.0", "v2.13.0"])[-1] == "v2.17.0"


def test_drift_report_names_each_difference_from_the_pinned_row() -> None:
    runner = sys.modules.get("conformance_run") or _load_runner()
    pinned = runner.Row("go", "2.17.0", "ga", "pinned", "program")
    pinned.cells = {"upload_bytes": runner.Cell("pass", ""), "list_ids": runner.Cell("pass", "")}
    same = runner.Row("java", "3.16.0", "ga", "pinned", "program")
    same.cells = {"upload_bytes": runner.Cell("pass", "")}
    newer = runner.Row("go", "2.18.0", "ga", "staged", "program", tag="newest")
    newer.cells = {"upload_bytes": runner.Cell("pass", ""), "list_ids": runner.Cell("fail", "ids lost")}
    current = runner.Row("java", "3.16.0", "ga", "staged", "program", tag="newest")
    current.cells = {"upload_bytes": runner.Cell("pass", "")}
    broken = runner.Row("typescript", "0.0.0", "ga", "npm", "program", tag="newest")
    broken.error = "asking the registry failed"
    report = runner.drift_report([pinned, same, newer, current, broken])
    assert "go ga: pinned 2.17.0, registry newest 2.18.0 (the pin is behind)" in report
    assert "list_ids: pinned pass -> newest fail: ids lost" in report
    assert "upload_bytes" not in report
    assert "java ga: pinned 3.16.0, registry newest 3.16.0 (the pin is current): no differences" in report
    assert "typescript ga: did not run: asking the registry failed" in report
    assert newer.key == "go-2.18.0-ga~newest" and pinned.key == "go-2.17.0-ga"
