"""The benchmarks of ``run.py``, one module each. To add one: write ``benchmarks/NAME.py`` with a
docstring (its ``--help`` entry), ``rows(plan)``, ``run(ctx)`` and ``BENCHMARK = Benchmark(...)``, and
add it to REGISTRY below (the order of ``--only``, of the table within a section, and of the report)."""

from __future__ import annotations

import textwrap

from harness.context import Benchmark

from benchmarks import capacity, download, listing, metadata, parallel, s3, small, upload

REGISTRY: list[Benchmark] = [
    upload.BENCHMARK,
    download.BENCHMARK,
    metadata.BENCHMARK,
    listing.BENCHMARK,
    small.BENCHMARK,
    parallel.BENCHMARK,
    s3.BENCHMARK,
    capacity.BENCHMARK,
]
BY_NAME = {b.name: b for b in REGISTRY}
NAMES = tuple(BY_NAME)


def help_text() -> str:
    """The benchmarks' entries of ``run.py --help``: the name, then its docstring indented (a name
    longer than 9 characters pushes its first line right; the others stay aligned)."""
    out = []
    for b in REGISTRY:
        first, *rest = textwrap.dedent(b.help).strip().splitlines()
        out.append(f"  {b.name:<9} {first}")
        out += [f"{' ' * 12}{line}" for line in rest]
    return "\n".join(out)
