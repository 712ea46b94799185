"""`conformance/run.py --newest`: each registry's newest SDK release, installed beside the pins.

Asks PyPI (`pip index versions`), npm (`npm view`), the Go module proxy (`go list -m -versions`) and
Maven Central (the artifact's maven-metadata.xml) for the newest release of the newest-era SDK of each
language, and stages a copy of that language's conformance program pinned to it under
`conformance/.newest/` (a venv for Python): the pinned manifests are never touched, so the test
command stays on the pins. run.py runs those rows next to the pinned ones and prints what differs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGE = HERE / ".newest"
PY_VENV = HERE.parent / ".venv-sdk-newest"
MAVEN_METADATA = "https://repo.maven.apache.org/maven2/com/anthropic/anthropic-java/maven-metadata.xml"
GO_MODULE = "github.com/anthropics/anthropic-sdk-go/v2"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _key(version: str) -> list[int]:
    return [int(p) for p in re.findall(r"\d+", version)]


def _stable(versions: list[str]) -> list[str]:
    return sorted((v for v in versions if re.fullmatch(r"v?\d+\.\d+\.\d+", v)), key=_key)


def newest_python(must: Runner, python: str) -> str:
    out = must([python, "-m", "pip", "index", "versions", "anthropic"], "pip index versions").stdout
    match = re.search(r"Available versions: (.+)", out)
    assert match, f"pip index versions printed no versions:\n{out}"
    return _stable([v.strip() for v in match.group(1).split(",")])[-1]


def newest_typescript(must: Runner) -> str:
    out = must(["npm", "view", "@anthropic-ai/sdk", "version"], "npm view").stdout.strip()
    return str(json.loads(out)) if out.startswith('"') else out


def newest_go(must: Runner, env: dict[str, str]) -> str:
    cwd = HERE / "go"
    out = must(["go", "list", "-m", "-versions", GO_MODULE], "go list -m -versions", cwd=cwd, env=env).stdout
    return _stable(out.split()[1:])[-1].lstrip("v")


def newest_java() -> str:
    with urllib.request.urlopen(MAVEN_METADATA, timeout=60) as response:
        root = ET.fromstring(response.read())  # noqa: S314 - Maven Central's metadata
    return _stable([v.text or "" for v in root.iter("version")])[-1]


def stage_python(must: Runner, python: str, version: str) -> str:
    """A venv with anthropic==version (.venv-sdk-newest); returns its interpreter."""
    venv_python = PY_VENV / "bin" / "python"
    if not venv_python.exists():
        must([python, "-m", "venv", str(PY_VENV)], "python -m venv")
    probe = subprocess.run(  # noqa: S603 - fixed argv
        [str(venv_python), "-c", "import anthropic; print(anthropic.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != version:
        must(
            [
                str(venv_python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"anthropic=={version}",
            ],
            "pip install",
        )
    return str(venv_python)


def stage_typescript(must: Runner, version: str) -> tuple[Path, str]:
    """conformance/.newest/typescript with flow.mjs and one alias sdk-<version>; returns (dir, alias)."""
    where = STAGE / "typescript"
    where.mkdir(parents=True, exist_ok=True)
    alias = f"sdk-{version}"
    manifest = {
        "name": "filesapi-conformance-typescript-newest",
        "private": True,
        "type": "module",
        "dependencies": {alias: f"npm:@anthropic-ai/sdk@{version}"},
    }
    (where / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.copy2(HERE / "typescript" / "flow.mjs", where / "flow.mjs")
    installed = where / "node_modules" / alias / "package.json"
    if not installed.exists() or json.loads(installed.read_text()).get("version") != version:
        must(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], "npm install", cwd=where)
    return where, alias


def stage_go(must: Runner, version: str, env: dict[str, str]) -> Path:
    """A copy of conformance/go requiring GO_MODULE@v<version>, with bin/ga_v2 built; returns the dir."""
    where = STAGE / "go"
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(HERE / "go", where, ignore=shutil.ignore_patterns("bin"))
    must(["go", "get", f"{GO_MODULE}@v{version}"], "go get", cwd=where, env=env)
    must(["go", "build", "-o", "bin/", "./ga_v2"], "go build", cwd=where, env=env)
    return where


def stage_java(version: str) -> Path:
    """A copy of conformance/java/ga whose pom pins anthropic-java <version>; returns the dir."""
    where = STAGE / "java" / "ga"
    where.mkdir(parents=True, exist_ok=True)
    pom = (HERE / "java" / "ga" / "pom.xml").read_text()
    pom = re.sub(
        r"<anthropic.version>[^<]+</anthropic.version>",
        f"<anthropic.version>{version}</anthropic.version>",
        pom,
    )
    target = where / "pom.xml"
    if not target.exists() or target.read_text() != pom:
        target.write_text(pom)
    shutil.copy2(HERE / "java" / "ga" / "Flow.java", where / "Flow.java")
    return where
