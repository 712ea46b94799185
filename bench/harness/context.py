"""What a benchmark of ``run.py`` gets (``Ctx``: the plan, the work folder, its rows and what it
records for the report) and what it is (``Benchmark``: a name, rows, a run function)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.plan import MiB, Plan, human, make_source
from harness.procs import Procs
from harness.stats import Row, Samples

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / "bench" / ".cache"


class Unavailable(Exception):
    """A benchmark that cannot run here (missing component), reported as such, not as a failure."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of ``run.py``, listed in ``benchmarks/__init__.py``.

    ``help`` is its entry in ``--help`` (the module docstring); ``rows(plan)`` returns its table rows by
    key (``ctx.rows[key]`` in ``run``); ``run(ctx)`` measures every round; ``tools`` are the programs it
    needs beyond curl, wrk and dd."""

    name: str
    help: str
    rows: Callable[[Plan], dict[str, Row]]
    run: Callable[[Ctx], None]
    tools: tuple[str, ...] = ()


@dataclass
class Ctx:
    plan: Plan
    work: Path  # the temporary folder: sources, data folders, logs
    procs: Procs
    python: str
    env: dict[str, str]  # for filesapi processes (PYTHONPATH when --src)
    rows: dict[str, Row]
    verbose: bool
    commands: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    extra: Samples = field(default_factory=Samples)

    def log(self, msg: str) -> None:
        print(f"  {msg}", flush=True)

    def command(self, bench: str, cmd: str) -> None:
        cmd = cmd.replace(str(self.work), "$WORK").replace(str(ROOT) + "/", "")
        self.commands.setdefault(bench, [])
        if cmd not in self.commands[bench]:
            self.commands[bench].append(cmd)

    def note(self, bench: str, text: str) -> None:
        self.notes.setdefault(bench, []).append(text)

    def sample(self, bench: str, what: str, value: float) -> None:
        self.extra.add(bench, what, value)

    def source(self, size: int) -> Path:
        """A file of ``size`` bytes (random-ish: a random MiB varied per MiB, never zeros), made once."""
        path = self.work / "src" / f"src-{human(size).replace(' ', '')}.bin"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            if size % MiB:
                path.write_bytes(os.urandom(size))
            else:
                make_source(path, size // MiB)
        return path
