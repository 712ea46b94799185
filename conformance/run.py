#!/usr/bin/env python3
"""Cross-language conformance: every official Anthropic SDK against a live filesapi server.

    .venv/bin/python conformance/run.py [--only GLOB] [--jobs N] [--out FILE] [--json FILE]

Installs the pinned SDKs (npm ci, go build, mvn, a venv for the beta-era Python SDK), then runs each
SDK program against its own fresh server (`python -m filesapi serve` on a free 127.0.0.1 port) and
the raw-wire replays of the SDKs that cannot be installed here (tests/test_sdk_replays.py, mapped to
operations by conformance/replays.toml). Each program prints `RESULT <operation> PASS|FAIL <detail>`
lines; conformance/known_issues.toml turns the cells of known SDK bugs into "known SDK issue".
Prints the SDK x version x operation matrix and writes it to docs/compatibility.md (full runs only,
unless --out is given). Exit status 0 when nothing failed outside the known issues.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
SERVER_PYTHON = str(PYTHON) if PYTHON.exists() else sys.executable
DOCS = ROOT / "docs" / "compatibility.md"

# The beta-era Python SDK: the same pin and venv as tests/test_python_sdk.py and scripts/test.sh.
PY_BETA_ERA = "1.1.0"
PY_BETA_ERA_VENV = ROOT / f".venv-sdk-{PY_BETA_ERA}"

PROGRAM_TIMEOUT = 300
INSTALL_TIMEOUT = 1800

# (operation, column header, what it proves)
OPERATIONS = [
    ("upload_bytes", "upload bytes", "upload of raw bytes with no name"),
    ("upload_path", "upload path", "upload of a path on disk (basename and type kept)"),
    (
        "upload_named",
        "upload name+type",
        "upload with an explicit filename and content type (and a 1.5 MB file)",
    ),
    ("metadata", "metadata", "retrieve metadata equals the upload response"),
    ("download", "download", "download is byte-identical, with the file's content type"),
    (
        "list_autopage",
        "auto-paging",
        "the SDK's auto-pagination over 25 files, limit 10: every file once, newest first",
    ),
    (
        "list_manual",
        "manual cursors",
        "manual paging with the dialect's cursors (after_id/before_id or page=next_page)",
    ),
    ("list_ids", "ids", "GA list(ids=[...]): known ids once each, unknown ones left out, one page"),
    (
        "expires_in_seconds",
        "expires",
        "GA upload with expires_in_seconds: expires_at = created_at + N; out of range is 400",
    ),
    ("list_scope", "scope_id", "beta list(scope_id=...) filter and the scope field"),
    ("error_404", "404", "the SDK's typed not-found error for unknown ids (metadata, download, delete)"),
    ("error_400", "400", "the SDK's typed bad-request error (limit out of range, bad cursor)"),
    ("error_401", "401", "the SDK's typed authentication error (unknown or missing key)"),
    ("delete", "delete", "delete answers {id, type: file_deleted}; the file is then 404 and unlisted"),
    (
        "wire",
        "wire quirks",
        "replays only: SDK-specific framing (boundaries, header forms, filename encodings)",
    ),
]
OP_NAMES = [name for name, _, _ in OPERATIONS]
BASE_OPS = [
    "upload_bytes",
    "upload_path",
    "upload_named",
    "metadata",
    "download",
    "list_autopage",
    "list_manual",
    "error_404",
    "error_400",
    "error_401",
    "delete",
]
GA_OPS = [*BASE_OPS, "list_ids", "expires_in_seconds"]
SDK_ORDER = ["python", "typescript", "go", "java", "ruby", "csharp"]
SDK_NAMES = {
    "python": "Python `anthropic`",
    "typescript": "TypeScript `@anthropic-ai/sdk`",
    "go": "Go `anthropic-sdk-go`",
    "java": "Java `com.anthropic:anthropic-java`",
    "ruby": "Ruby `anthropic` (wire replay)",
    "csharp": "C# `Anthropic` (wire replay)",
}

_print_lock = threading.Lock()


def log(message: str) -> None:
    with _print_lock:
        print(message, file=sys.stderr, flush=True)


class SetupError(Exception):
    """A toolchain or install step failed; the rows that need it cannot run."""


# -- results


@dataclass
class Cell:
    status: str  # pass | fail | known | stale
    detail: str
    issue: str | None = None  # title of the known issue


@dataclass
class Row:
    sdk: str
    version: str
    dialect: str
    source: str  # the program (or replay test file) that produced the row
    kind: str  # program | replay
    run: Callable[[Row, Context], None] | None = None
    expected: list[str] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)
    error: str | None = None  # the row could not run at all
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    tag: str = ""  # "newest": a --newest row (the registry's newest release, staged by newest.py)

    @property
    def key(self) -> str:
        base = f"{self.sdk}-{self.version}-{self.dialect}"
        return f"{base}~{self.tag}" if self.tag else base


@dataclass
class Context:
    tmp: Path
    key_template: Path | None = None
    api_key: str | None = None
    server_args: tuple[str, ...] = ()  # storage flags for every server (instead of --memory)


def run_cmd(
    cmd: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = INSTALL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SetupError(f"{cmd[0]} not found: {exc}") from None
    except subprocess.TimeoutExpired:
        raise SetupError(f"{' '.join(cmd)} timed out after {timeout:.0f} s") from None


def must(cmd: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = run_cmd(cmd, **kwargs)
    if result.returncode != 0:
        raise SetupError(
            f"{what}: `{' '.join(cmd)}` exited {result.returncode}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def clean_env() -> dict[str, str]:
    """The environment for SDK programs and tools: no SDK credentials or settings, no foreign venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__", "NODE_OPTIONS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_") and k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def need_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SetupError(f"`{name}` is not installed or not on PATH; {hint}")
    return path


# -- pinned versions (read from each toolchain's own manifest, so each is pinned in one place)


def pinned_python_newest() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"anthropic==([^"]+)"', text)
    assert match, "pyproject.toml pins no anthropic==X in the test extras"
    return match.group(1)


def pinned_typescript() -> list[tuple[str, str]]:
    """(package alias, version) from conformance/typescript/package.json."""
    deps = json.loads((HERE / "typescript" / "package.json").read_text())["dependencies"]
    out = []
    for alias, spec in deps.items():
        match = re.fullmatch(r"npm:@anthropic-ai/sdk@(\d+\.\d+\.\d+)", spec)
        assert match, f"{alias}: {spec} is not an exact npm:@anthropic-ai/sdk@X.Y.Z pin"
        out.append((alias, match.group(1)))
    return sorted(out, key=lambda item: [int(p) for p in item[1].split(".")])


def pinned_go() -> dict[str, str]:
    text = (HERE / "go" / "go.mod").read_text()
    out = {}
    for module, program in [
        ("github.com/anthropics/anthropic-sdk-go", "beta_v1"),
        ("github.com/anthropics/anthropic-sdk-go/v2", "ga_v2"),
    ]:
        match = re.search(rf"^\s*{re.escape(module)} v(\S+)", text, re.M)
        assert match, f"go.mod does not require {module}"
        out[program] = match.group(1)
    return out


def pinned_java(project: str) -> str:
    text = (HERE / "java" / project / "pom.xml").read_text()
    match = re.search(r"<anthropic.version>([^<]+)</anthropic.version>", text)
    assert match, f"java/{project}/pom.xml has no <anthropic.version>"
    return match.group(1)


# -- installs (each idempotent and quick when its cache is warm)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_python() -> dict[str, str]:
    """The interpreters for the Python rows: {version: python}."""
    newest = pinned_python_newest()
    pythons = {newest: SERVER_PYTHON}
    override = os.environ.get("FILESAPI_OLD_SDK_PYTHON")
    old = Path(override) if override else PY_BETA_ERA_VENV / "bin" / "python"
    if not override and not old.exists():
        log(f"==> creating {PY_BETA_ERA_VENV.name} (anthropic=={PY_BETA_ERA})")
        must([SERVER_PYTHON, "-m", "venv", str(PY_BETA_ERA_VENV)], "python -m venv")
    probe = run_cmd([str(old), "-c", "import anthropic; print(anthropic.__version__)"], timeout=120)
    if probe.stdout.strip() != PY_BETA_ERA:
        if override:
            raise SetupError(
                f"FILESAPI_OLD_SDK_PYTHON={override} has anthropic {probe.stdout.strip() or 'none'}"
            )
        log(f"==> pip install anthropic=={PY_BETA_ERA} into {PY_BETA_ERA_VENV.name}")
        must(
            [
                str(old),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                f"anthropic=={PY_BETA_ERA}",
            ],
            "pip install",
        )
    pythons[PY_BETA_ERA] = str(old)
    for version, python in pythons.items():
        probe = run_cmd([python, "-c", "import anthropic; print(anthropic.__version__)"], timeout=120)
        if probe.stdout.strip() != version:
            raise SetupError(f"{python} has anthropic {probe.stdout.strip() or 'none'}, expected {version}")
    return pythons


def install_typescript() -> None:
    need_tool("node", "install Node.js 18+ (e.g. apt-get install nodejs npm)")
    need_tool("npm", "install npm (e.g. apt-get install npm)")
    where = HERE / "typescript"
    stamp = where / "node_modules" / ".conformance-lock-sha256"
    lock = sha256(where / "package-lock.json")
    if stamp.exists() and stamp.read_text() == lock:
        return
    log("==> npm ci (conformance/typescript)")
    must(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], "npm ci", cwd=where)
    stamp.write_text(lock)


def install_go() -> None:
    need_tool("go", "install Go 1.25+ (https://go.dev/dl/ or apt-get install golang)")
    where = HERE / "go"
    env = {**clean_env(), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    log("==> go build (conformance/go)")
    must(["go", "build", "-o", "bin/", "./beta_v1", "./ga_v2"], "go build", cwd=where, env=env)


def install_java(project: str, where: Path | None = None) -> Path:
    """The classpath file of java/<project> (or of ``where``); compiles Flow.java into target/classes."""
    need_tool("mvn", "install Maven 3.6+ (e.g. apt-get install maven)")
    need_tool("javac", "install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)")
    where = where or HERE / "java" / project
    classpath = where / "target" / "classpath.txt"
    pom = where / "pom.xml"
    fresh = (
        classpath.exists()
        and classpath.stat().st_mtime >= pom.stat().st_mtime
        and all(Path(p).exists() for p in classpath.read_text().strip().split(os.pathsep) if p)
    )
    if not fresh:
        log(f"==> mvn dependency:build-classpath (conformance/java/{project})")
        cmd = ["mvn", "-q", "-B", "dependency:build-classpath", f"-Dmdep.outputFile={classpath}"]
        offline = run_cmd([cmd[0], "-o", *cmd[1:]], cwd=where)  # a warm ~/.m2 needs no network
        if offline.returncode != 0:
            must(cmd, f"mvn (java/{project})", cwd=where)
    classes = where / "target" / "classes"
    compiled = classes / "Flow.class"
    source = where / "Flow.java"
    if not compiled.exists() or compiled.stat().st_mtime < max(
        source.stat().st_mtime, classpath.stat().st_mtime
    ):
        log(f"==> javac (conformance/java/{project})")
        shutil.rmtree(classes, ignore_errors=True)
        classes.mkdir(parents=True)
        must(
            ["javac", "-cp", classpath.read_text().strip(), "-d", str(classes), str(source)],
            "javac",
            cwd=where,
        )
    return classpath


# -- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m filesapi serve` on a free loopback port, stopped by stop()."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                SERVER_PYTHON,
                "-m",
                "filesapi",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(f"server exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise SetupError(f"server did not start:\n{self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def make_key_template(ctx: Context) -> None:
    """One data dir with one API key (`filesapi keys create`), copied for every --auth keys server."""
    template = ctx.tmp / "keys-template"
    result = must(
        [
            SERVER_PYTHON,
            "-m",
            "filesapi",
            "keys",
            "create",
            "--workspace",
            "conformance",
            "--label",
            "conformance",
            "--data-dir",
            str(template),
        ],
        "filesapi keys create",
    )
    ctx.key_template = template
    ctx.api_key = result.stdout.strip().splitlines()[-1]


# -- running one program


RESULT_LINE = re.compile(r"^RESULT (\S+) (PASS|FAIL)(?: (.*))?$")


def run_program(row: Row, ctx: Context, cmd: list[str], cwd: Path, auth: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"{row.key}-", dir=ctx.tmp))
    if auth == "keys":
        assert ctx.key_template is not None and ctx.api_key is not None
        data = workdir / "data"
        shutil.copytree(ctx.key_template, data)
        server = Server(workdir, "--auth", "keys", "--data-dir", str(data), *ctx.server_args)
        api_key = ctx.api_key
    else:
        storage = (
            ("--data-dir", str(workdir / "data"), *ctx.server_args) if ctx.server_args else ("--memory",)
        )
        server = Server(workdir, *storage)
        api_key = "conformance-open-key"
    try:
        env = {**clean_env(), "FILESAPI_BASE_URL": server.base_url, "FILESAPI_API_KEY": api_key}
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=PROGRAM_TIMEOUT, check=False
            )
            stdout, stderr, code = result.stdout, result.stderr, result.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
            stdout, stderr, code = out or "", f"timed out after {PROGRAM_TIMEOUT} s", -1
    finally:
        server.stop()
    row.extra["stdout"] = stdout
    row.extra["stderr"] = stderr[-4000:]
    row.extra["exit_code"] = code
    server_log = server.log()
    row.extra["server_log_tail"] = server_log[-3000:]
    # Downloads the server answered with a redirect to the bucket (only with download_redirect):
    # the access log's message is "GET /v1/files/ID/content 307 1.2ms".
    row.extra["redirects"] = len(re.findall(r"/content 307 ", server_log))

    sdk_line = next((line for line in stdout.splitlines() if line.startswith("SDK ")), None)
    want = f"SDK {row.sdk} {row.version} {row.dialect}"
    if sdk_line is None or (not sdk_line.startswith(want + " ") and sdk_line != want):
        row.error = (
            f"expected the program to run {want!r}, it printed {sdk_line!r} (exit {code}): {stderr[-1500:]}"
        )
        return
    row.extra["sdk_line"] = sdk_line
    for line in stdout.splitlines():
        match = RESULT_LINE.match(line)
        if match:
            op, status, detail = match.groups()
            row.cells[op] = Cell("pass" if status == "PASS" else "fail", detail or "")
    setup = row.cells.pop("setup", None)
    if setup is not None and setup.status == "fail":
        row.error = f"the program's setup failed: {setup.detail}"
        return
    for op in row.expected:
        if op not in row.cells:
            row.cells[op] = Cell("fail", f"not reported: the program exited {code}: {stderr[-800:]}")


def python_row(version: str, dialect: str, pythons: dict[str, str], python_key: str = "") -> Row:
    def run(row: Row, ctx: Context) -> None:
        python = pythons[python_key or version]
        run_program(row, ctx, [python, str(HERE / "python" / "flow.py"), dialect], ROOT, "open")

    expected = [*GA_OPS] if dialect == "ga" else [*BASE_OPS]
    return Row(
        "python",
        version,
        dialect,
        "conformance/python/flow.py (runs tests/sdk_programs/python_flow.py)",
        "program",
        run,
        expected,
        extra={"setup": "python"},
    )


def typescript_row(alias: str, version: str, dialect: str, where: Path = HERE / "typescript") -> Row:
    def run(row: Row, ctx: Context) -> None:
        run_program(row, ctx, ["node", "flow.mjs", alias, dialect], where, "keys")

    expected = GA_OPS if dialect == "ga" else BASE_OPS
    return Row(
        "typescript",
        version,
        dialect,
        f"conformance/typescript/flow.mjs {alias} {dialect}",
        "program",
        run,
        list(expected),
        extra={"setup": "typescript"},
    )


def go_row(program: str, version: str, dialect: str, where: Path = HERE / "go") -> Row:
    def run(row: Row, ctx: Context) -> None:
        run_program(row, ctx, [str(where / "bin" / program)], where, "keys")

    expected = GA_OPS if dialect == "ga" else BASE_OPS
    return Row(
        "go",
        version,
        dialect,
        f"conformance/go/{program}/main.go",
        "program",
        run,
        list(expected),
        extra={"setup": "go"},
    )


def java_row(project: str, version: str, where: Path | None = None) -> Row:
    def run(row: Row, ctx: Context) -> None:
        base = where or HERE / "java" / project
        classpath = (base / "target" / "classpath.txt").read_text().strip()
        cp = os.pathsep.join([str(base / "target" / "classes"), classpath])
        run_program(row, ctx, ["java", "-cp", cp, "Flow"], base, "keys")

    expected = GA_OPS if project == "ga" else BASE_OPS
    return Row(
        "java",
        version,
        project,
        f"conformance/java/{project}/Flow.java",
        "program",
        run,
        list(expected),
        extra={"setup": f"java-{project}"},
    )


# -- the replays of Ruby and C#


def run_replays(rows: list[Row], ctx: Context) -> None:
    report = ctx.tmp / "replays.xml"
    result = run_cmd(
        [
            SERVER_PYTHON,
            "-m",
            "pytest",
            "tests/test_sdk_replays.py",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        timeout=900,
    )
    if not report.exists():
        for row in rows:
            row.error = (
                f"pytest tests/test_sdk_replays.py wrote no report (exit {result.returncode}):\n"
                f"{result.stdout[-2000:]}"
            )
        return
    outcomes: dict[str, tuple[bool, str]] = {}
    tree = ET.parse(report)  # noqa: S314 - the report pytest just wrote
    for case in tree.getroot().iter("testcase"):
        name = case.get("name", "")
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if problem is None:
            outcomes[name] = (True, "")
        else:
            message = (problem.get("message") or problem.text or problem.tag).strip()
            outcomes[name] = (False, f"{problem.tag}: {message}")
    for row in rows:
        mapping: dict[str, list[str]] = row.extra["ops"]
        for op, patterns in mapping.items():
            matched = {
                name: outcome
                for name, outcome in outcomes.items()
                for pattern in patterns
                if name == pattern or ("[" not in pattern and name.startswith(pattern + "["))
            }
            missing = [p for p in patterns if not any(n == p or n.startswith(p + "[") for n in matched)]
            failed = {n: o[1] for n, o in matched.items() if not o[0]}
            if missing:
                row.cells[op] = Cell(
                    "fail", f"replay test(s) not found in tests/test_sdk_replays.py: {missing}"
                )
            elif failed:
                row.cells[op] = Cell("fail", "; ".join(f"{n}: {m}" for n, m in failed.items()))
            else:
                row.cells[op] = Cell("pass", f"replayed by {', '.join(sorted(matched))}")


def replay_rows() -> list[Row]:
    config = tomllib.loads((HERE / "replays.toml").read_text())
    rows = []
    for entry in config["row"]:
        unknown = set(entry["ops"]) - set(OP_NAMES)
        assert not unknown, f"replays.toml names unknown operations {unknown}"
        rows.append(
            Row(
                entry["sdk"],
                entry["version"],
                entry["dialect"],
                "tests/test_sdk_replays.py",
                "replay",
                extra={"ops": entry["ops"]},
            )
        )
    return rows


# -- known issues


def apply_known_issues(rows: list[Row]) -> list[dict[str, Any]]:
    issues = tomllib.loads((HERE / "known_issues.toml").read_text()).get("issue", [])
    for issue in issues:
        assert issue["expect"] in ("fail", "pass"), issue
        issue["rows"] = []
        for row in rows:
            if (
                row.sdk != issue["sdk"]
                or row.version not in issue["versions"]
                or row.dialect != issue["dialect"]
            ):
                continue
            if row.error:
                continue
            issue["rows"].append(row.key)
            for op in issue["operations"]:
                cell = row.cells.get(op)
                if cell is None:
                    row.cells[op] = Cell(
                        "stale", f"known issue {issue['title']!r}: the operation was not run"
                    )
                    continue
                reproduced = (cell.status == "fail") if issue["expect"] == "fail" else (cell.status == "pass")
                if reproduced:
                    row.cells[op] = Cell("known", cell.detail, issue["title"])
                elif issue["expect"] == "fail":
                    row.cells[op] = Cell(
                        "stale",
                        f"known issue {issue['title']!r} did not reproduce (the operation passed): "
                        "update conformance/known_issues.toml",
                    )
    return issues


# -- output


SYMBOL = {"pass": "✅", "fail": "❌", "known": "⚠️", "stale": "❗"}
TERM = {"pass": "ok", "fail": "FAIL", "known": "known", "stale": "STALE"}


def row_label(row: Row) -> tuple[str, str, str]:
    return row.sdk, row.version, f"{row.dialect} ({row.tag})" if row.tag else row.dialect


def used_columns(rows: list[Row]) -> list[tuple[str, str, str]]:
    return [op for op in OPERATIONS if any(op[0] in row.cells for row in rows)]


def terminal_table(rows: list[Row]) -> str:
    columns = used_columns(rows)
    heads = ["sdk", "version", "dialect", *[c[1] for c in columns]]
    table = []
    for row in rows:
        cells = [TERM[row.cells[c[0]].status] if c[0] in row.cells else "-" for c in columns]
        if row.error:
            cells = ["ERROR"] * len(columns)
        table.append([*row_label(row), *cells])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(lines)


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[Row], issues: list[dict[str, Any]], tools: dict[str, str]) -> str:
    columns = used_columns(rows)
    out = [
        "# SDK compatibility matrix",
        "",
        "<!-- Generated by conformance/run.py; do not edit by hand. -->",
        "",
        "Every official Anthropic SDK against a live filesapi server, one fresh server per program. "
        "Generated by `conformance/run.py` (run by `tests/test_conformance.py`, so by `scripts/test.sh`); "
        "see [conformance/README.md](../conformance/README.md) for how it works and how to run it.",
        "",
        "✅ pass · ❌ fail · ⚠️ known SDK issue (below) · ❗ a known issue that no longer reproduces · "
        "— not covered. Dialect `ga` is `client.files`, `beta` is `client.beta.files` (for the newest "
        "SDKs that is the GA wire with `scope_id`). Ruby and C# cannot be installed here: their rows come "
        "from raw-wire replays of their captured requests (`tests/test_sdk_replays.py`).",
        "",
        "| SDK | version | dialect | " + " | ".join(c[1] for c in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for row in rows:
        if row.error:
            cells = ["❌ (did not run)"] * len(columns)
        else:
            cells = [SYMBOL[row.cells[c[0]].status] if c[0] in row.cells else "—" for c in columns]
        out.append(f"| {SDK_NAMES[row.sdk]} | {row.version} | {row.dialect} | " + " | ".join(cells) + " |")
    out += ["", "## Operations", ""]
    out += [f"- **{head}** (`{name}`): {what}" for name, head, what in columns]

    failures = [
        (row, op, cell) for row in rows for op, cell in row.cells.items() if cell.status in ("fail", "stale")
    ]
    errors = [row for row in rows if row.error]
    out += ["", "## Failures", ""]
    if not failures and not errors:
        out.append("None.")
    for row in errors:
        out.append(f"- `{row.key}` did not run: {md_escape(row.error or '')[:1500]}")
    for row, op, cell in failures:
        out.append(f"- `{row.key}` **{op}**: {md_escape(cell.detail)[:1500]}")

    out += ["", "## Known SDK issues", ""]
    for issue in issues:
        versions = ", ".join(issue["versions"])
        out += [
            f"### {SDK_NAMES[issue['sdk']]} {versions} ({issue['dialect']}): {issue['title']}",
            "",
            f"Operations: {', '.join(issue['operations'])}. Rows: {', '.join(issue['rows']) or 'none run'}.",
            "",
            "**Evidence.** " + " ".join(issue["evidence"].split()),
            "",
        ]
        observed = [
            (row.key, op, row.cells[op].detail)
            for row in rows
            if row.key in issue["rows"]
            for op in issue["operations"]
            if op in row.cells and row.cells[op].status == "known"
        ]
        if observed:
            out.append("Observed in this run:")
            out.append("")
            out += [f"- `{key}` {op}: {md_escape(detail)[:800]}" for key, op, detail in observed]
            out.append("")
        out += ["**Workaround.** " + " ".join(issue["workaround"].split()), ""]

    out += [(HERE / "sdk_changes.md").read_text().strip(), ""]
    out += ["## Rows", "", "| row | produced by | SDK as reported by the program |", "|---|---|---|"]
    for row in rows:
        reported = row.extra.get("sdk_line", "") if row.kind == "program" else "(wire replay)"
        out.append(f"| `{row.key}` | `{row.source}` | {md_escape(reported)} |")
    out += ["", "Details of every passing cell:", ""]
    for row in rows:
        if not row.cells:
            continue
        out += [f"<details><summary><code>{row.key}</code></summary>", ""]
        for op in OP_NAMES:
            if op in row.cells:
                cell = row.cells[op]
                out.append(f"- {SYMBOL[cell.status]} `{op}`: {md_escape(cell.detail)[:600]}")
        out += ["", "</details>", ""]
    out += ["## Toolchains", ""]
    out += [f"- {name}: {version}" for name, version in tools.items()]
    out.append("")
    return "\n".join(out)


def tool_versions() -> dict[str, str]:
    probes = {
        "Python": [SERVER_PYTHON, "--version"],
        "Node.js": ["node", "--version"],
        "Go": ["go", "version"],
        "Java": ["java", "-version"],
        "Maven": ["mvn", "-v"],
    }
    out = {}
    for name, cmd in probes.items():
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
            text = (result.stdout + result.stderr).strip().splitlines()
            out[name] = re.sub(r"\x1b\[[0-9;]*m", "", text[0]) if text else "unknown"
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "not installed"
    return out


# -- main


def plan(pythons: dict[str, str], *, replays: bool = True) -> list[Row]:
    """Every row, from the pinned versions. ``pythons`` is filled by install_python() before the Python
    rows run."""
    rows: list[Row] = []
    for version in (pinned_python_newest(), PY_BETA_ERA):
        for dialect in ("ga", "beta"):
            rows.append(python_row(version, dialect, pythons))
    for alias, version in pinned_typescript():
        for dialect in ("beta", "ga"):
            rows.append(typescript_row(alias, version, dialect))
    go_versions = pinned_go()
    rows.append(go_row("beta_v1", go_versions["beta_v1"], "beta"))
    rows.append(go_row("ga_v2", go_versions["ga_v2"], "ga"))
    for project in ("beta", "ga"):
        rows.append(java_row(project, pinned_java(project)))
    if replays:
        rows += replay_rows()
    return rows


def plan_newest(pythons: dict[str, str]) -> tuple[list[Row], dict[str, Callable[[], object]]]:
    """--newest: the rows of each registry's newest release and the setups that stage them."""
    import newest

    go_env = {**clean_env(), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    queries: dict[str, Callable[[], str]] = {
        "python": lambda: newest.newest_python(must, SERVER_PYTHON),
        "typescript": lambda: newest.newest_typescript(must),
        "go": lambda: newest.newest_go(must, go_env),
        "java": newest.newest_java,
    }
    versions: dict[str, str] = {}
    rows: list[Row] = []
    for sdk, query in queries.items():
        try:
            versions[sdk] = query()
            log(f"==> newest {sdk} release: {versions[sdk]}")
        except (SetupError, OSError, AssertionError, IndexError) as exc:
            row = Row(sdk, "0.0.0", "ga", f"the {sdk} registry", "program", tag="newest")
            row.error = f"asking the registry for the newest {sdk} SDK failed: {exc}"
            rows.append(row)
    if "python" in versions:
        for dialect in ("ga", "beta"):
            rows.append(python_row(versions["python"], dialect, pythons, python_key="newest"))
    if "typescript" in versions:
        ts_dir = newest.STAGE / "typescript"
        for dialect in ("beta", "ga"):
            rows.append(
                typescript_row(f"sdk-{versions['typescript']}", versions["typescript"], dialect, ts_dir)
            )
    if "go" in versions:
        rows.append(go_row("ga_v2", versions["go"], "ga", newest.STAGE / "go"))
    if "java" in versions:
        rows.append(java_row("ga", versions["java"], newest.STAGE / "java" / "ga"))
    for row in rows:
        row.tag = "newest"
        if row.run is not None:
            row.extra["setup"] = f"newest-{row.sdk}"
            row.source = f"{row.source} (staged under conformance/.newest)"

    def setup_java() -> None:
        install_java("ga", newest.stage_java(versions["java"]))

    setups: dict[str, Callable[[], object]] = {
        "newest-python": lambda: pythons.update(
            newest=newest.stage_python(must, SERVER_PYTHON, versions["python"])
        ),
        "newest-typescript": lambda: newest.stage_typescript(must, versions["typescript"]),
        "newest-go": lambda: newest.stage_go(must, versions["go"], go_env),
        "newest-java": setup_java,
    }
    return rows, setups


def drift_report(rows: list[Row]) -> str:
    """What the --newest rows do differently from the pinned rows of the same SDK and dialect."""
    lines = ["", "drift: the registries' newest releases against the pinned newest rows"]
    pinned = [row for row in rows if not row.tag and row.kind == "program"]
    for row in (r for r in rows if r.tag == "newest"):
        if row.error:
            lines.append(f"  {row.sdk} {row.dialect}: did not run: {row.error[:600]}")
            continue
        same = [r for r in pinned if r.sdk == row.sdk and r.dialect == row.dialect]
        if not same:
            lines.append(f"  {row.key}: no pinned row to compare with")
            continue
        base = max(same, key=lambda r: [int(p) for p in r.version.split(".")])
        head = f"  {row.sdk} {row.dialect}: pinned {base.version}, registry newest {row.version}"
        head += " (the pin is current)" if base.version == row.version else " (the pin is behind)"
        diffs = []
        for op in OP_NAMES:
            a, b = base.cells.get(op), row.cells.get(op)
            if a is None and b is None:
                continue
            was, now = (a.status if a else "-"), (b.status if b else "-")
            if was != now:
                diffs.append(f"    {op}: pinned {was} -> newest {now}: {(b.detail if b else '')[:400]}")
        if base.error:
            diffs.append(f"    the pinned row did not run: {base.error[:300]}")
        lines.append(head + (": no differences" if not diffs else ""))
        lines += diffs
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", help="run only rows whose sdk-version-dialect matches this glob"
    )
    parser.add_argument("--jobs", type=int, default=2, help="programs run at once (default 2)")
    parser.add_argument(
        "--out", type=Path, help=f"markdown file to write (default {DOCS.relative_to(ROOT)} on full runs)"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--no-replays", action="store_true", help="skip the Ruby/C# wire replays")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="a `filesapi serve` flag for every server, repeatable; with any, open-auth servers use a data "
        "folder of their own instead of --memory. E.g. --server-arg=--blob-url=s3://bucket/p?endpoint=URL"
        "&download_redirect=60 (credentials: AWS_* from the environment)",
    )
    parser.add_argument(
        "--newest",
        action="store_true",
        help="also ask each registry for its newest SDK release, stage it under conformance/.newest (the "
        "pins stay as they are), run its rows and print what differs from the pinned rows (no docs written)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    timings: dict[str, float] = {}

    def selected(key: str) -> bool:
        return not args.only or any(fnmatch.fnmatch(key, pattern) for pattern in args.only)

    pythons: dict[str, str] = {}
    planned = plan(pythons, replays=not args.no_replays)
    newest_setups: dict[str, Callable[[], object]] = {}
    if args.newest:
        newest_rows, newest_setups = plan_newest(pythons)
        planned += newest_rows
    rows = [row for row in planned if selected(row.key)]
    replays = [row for row in rows if row.kind == "replay"]
    setup_rows: dict[str, list[Row]] = {}
    for row in rows:
        if row.kind == "program" and "setup" in row.extra:
            setup_rows.setdefault(row.extra["setup"], []).append(row)

    setups = {
        "python": lambda: pythons.update(install_python()),
        "typescript": install_typescript,
        "go": install_go,
        "java-beta": lambda: install_java("beta"),
        "java-ga": lambda: install_java("ga"),
        **newest_setups,
    }

    with tempfile.TemporaryDirectory(prefix="filesapi-conformance-") as tmp:
        ctx = Context(Path(tmp), server_args=tuple(args.server_arg))

        def timed_setup(name: str) -> None:
            t0 = time.monotonic()
            try:
                setups[name]()
            except SetupError as exc:
                for row in setup_rows[name]:
                    row.error = f"setup ({name}) failed: {exc}"
                log(f"!! setup {name} failed: {exc}")
            timings[f"setup {name}"] = time.monotonic() - t0

        t0 = time.monotonic()
        try:
            make_key_template(ctx)
        except SetupError as exc:
            for row in rows:
                row.error = str(exc)
        timings["setup keys"] = time.monotonic() - t0
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(timed_setup, [name for name in setups if name in setup_rows]))
        timings["setup (wall)"] = time.monotonic() - started

        def run_row(row: Row) -> None:
            if row.error or row.run is None:
                return
            t0 = time.monotonic()
            try:
                row.run(row, ctx)
            except SetupError as exc:
                row.error = str(exc)
            except Exception as exc:  # the runner itself must not die on one row
                row.error = f"runner error: {exc!r}"
            row.seconds = time.monotonic() - t0
            status = (
                "error"
                if row.error
                else ("ok" if all(c.status == "pass" for c in row.cells.values()) else "see matrix")
            )
            log(f"--- {row.key}: {status} ({row.seconds:.1f} s)")

        def replay_task() -> None:
            t0 = time.monotonic()
            run_replays(replays, ctx)
            for row in replays:
                row.seconds = time.monotonic() - t0
            log(f"--- replays (ruby, csharp): {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = []
            if replays:
                futures.append(pool.submit(replay_task))
            futures += [pool.submit(run_row, row) for row in rows if row.kind == "program"]
            for future in futures:
                future.result()
        timings["programs (wall)"] = time.monotonic() - t0

    rows.sort(
        key=lambda r: (SDK_ORDER.index(r.sdk), r.tag, [int(p) for p in r.version.split(".")], r.dialect)
    )
    issues = apply_known_issues(rows)
    timings["total"] = time.monotonic() - started

    print(terminal_table(rows))
    bad = [
        (row.key, op, cell.detail)
        for row in rows
        for op, cell in row.cells.items()
        if cell.status in ("fail", "stale")
    ]
    errored = [(row.key, row.error) for row in rows if row.error]
    known = [
        (row.key, op, cell.issue) for row in rows for op, cell in row.cells.items() if cell.status == "known"
    ]
    for key, error in errored:
        print(f"\nERROR {key}: {error}")
    for key, op, detail in bad:
        print(f"\nFAIL {key} {op}: {detail}")
    for key, op, title in known:
        print(f"known SDK issue {key} {op}: {title}")
    passed = sum(1 for row in rows for cell in row.cells.values() if cell.status == "pass")
    print(
        f"\nconformance: {len(rows)} rows, {passed} passed, {len(bad)} failed, "
        f"{len(known)} known SDK issues, "
        f"{len(errored)} rows did not run; " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )

    if args.newest:
        print(drift_report(rows))
    out = args.out or (DOCS if not args.only and not args.no_replays and not args.newest else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(rows, issues, tool_versions()))
        print(f"wrote {out}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [
                        {
                            "key": row.key,
                            "sdk": row.sdk,
                            "version": row.version,
                            "dialect": row.dialect,
                            "kind": row.kind,
                            "source": row.source,
                            "error": row.error,
                            "seconds": row.seconds,
                            "cells": {op: vars(cell) for op, cell in row.cells.items()},
                            "stdout": row.extra.get("stdout", ""),
                            "stderr": row.extra.get("stderr", ""),
                            "server_log_tail": row.extra.get("server_log_tail", ""),
                            "redirects": row.extra.get("redirects", 0),
                        }
                        for row in rows
                    ],
                    "timings": timings,
                },
                indent=2,
            )
        )
    return 1 if bad or errored else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
