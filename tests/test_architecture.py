"""The rooms of docs/architecture.md and what each may import, checked on the source.

A module's imports of other filesapi modules (at module level or inside functions) must stay
within its room's allowance, so the layers keep running one way: http -> service -> stores.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "filesapi"

# Room -> the rooms it may import (besides itself). Keep this and docs/architecture.md in step.
FOUNDATION = {"errors", "models", "ids", "numbers", "mime", "cursors", "config", "logs", "records"}
ALLOWED: dict[str, set[str]] = {
    "foundation": set(),
    "stores": {"foundation"},
    "domain": {"foundation", "stores"},
    "gateway": {"foundation", "domain"},
    "controls": {"foundation", "stores", "domain"},
    "http": {"foundation", "domain", "gateway", "controls", "blobs-types"},
    "app": {"foundation", "stores", "domain", "gateway", "controls", "http"},
    "client": {"foundation"},
    "cli": {"foundation", "stores", "domain", "controls", "app", "client"},
    "testing": {"foundation", "stores", "domain", "controls", "app", "client", "http"},
}


def room_of(module: str) -> str:
    """``filesapi.http.files`` -> ``http``; the package's top-level modules by name."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    if head in FOUNDATION:
        return "foundation"
    if head in ("metadata", "blobs"):
        return "stores"
    if head in ("service", "auth"):
        return "domain"
    if head in ("gateway", "controls", "http", "app", "client", "cli", "testing"):
        return head
    if head in ("__init__", "__main__", ""):
        return "package"
    raise AssertionError(f"{module}: not in any room of docs/architecture.md; add it there and here")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        if "migrations" in rel.parts:
            continue
        found.append((".".join(rel.parts), path))
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("filesapi"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("filesapi"))
    return names


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_stay_within_the_room(module: str, path: Path) -> None:
    room = room_of(module)
    if room == "package":
        return
    allowed = ALLOWED[room] | {room}
    for imported in sorted(_imports(path)):
        target = room_of(imported)
        if target == "package":
            continue
        if room == "http" and imported in ("filesapi.blobs", "filesapi.blobs.base"):
            target = "blobs-types"  # ByteRange, a value type for Range; no store is touched
        assert target in allowed, f"{module} ({room}) imports {imported} ({target})"


def test_every_room_is_documented() -> None:
    text = (SRC.parent.parent / "docs" / "architecture.md").read_text()
    for room in ALLOWED:
        assert f"`{room}`" in text, f"docs/architecture.md does not describe the {room} room"


def test_no_python_file_is_over_600_lines() -> None:
    root = SRC.parent.parent
    for path in [*SRC.rglob("*.py"), *(root / "bench").rglob("*.py")]:
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text().splitlines())
        assert lines <= 600, f"{path.relative_to(root)} has {lines} lines"
