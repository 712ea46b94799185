"""Medians, percentiles, samples per round, and the table's rows (a figure, its anchor, their ratio)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Samples:
    """Values per round, by who (a benchmark, a server) and what was measured."""

    data: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, who: str, what: str, value: float) -> None:
        self.data.setdefault(who, {}).setdefault(what, []).append(value)

    def values(self, who: str, what: str) -> list[float] | None:
        return self.data.get(who, {}).get(what)

    def med(self, who: str, what: str) -> float | None:
        return median(self.values(who, what))

    def spread(self, who: str, what: str) -> str:
        values = self.values(who, what)
        if not values:
            return "-"
        return f"{min(values):.0f}-{max(values):.0f}"


# The table's sections, in order: a row's ``section`` puts it in one; within a section rows follow
# the order of the benchmarks in benchmarks/__init__.py.
SECTIONS = ("local", "memory", "stores")


@dataclass
class Row:
    """One line of the table: a filesapi figure, its anchor, their ratio and the target."""

    bench: str
    label: str
    unit: str
    anchor_label: str
    target: str
    met_fn: Callable[[Row], bool | None]
    # chart: ("ratio", target ratio, higher_is_better) or ("limit", limit, higher_is_better)
    chart: tuple[str, float, bool] | None = None
    digits: int = 0
    anchor_unit: str | None = None  # when it differs from the figure's
    short: str = ""  # label in the chart
    section: str = "local"  # one of SECTIONS
    figure: list[float] = field(default_factory=list)
    anchor: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    status: str | None = None  # "not available: ..." / "failed: ..."

    def add(self, figure: float, anchor: float | None) -> None:
        self.figure.append(figure)
        if anchor is not None:
            self.anchor.append(anchor)
            if anchor:
                self.ratio.append(figure / anchor)

    @property
    def f(self) -> float | None:
        return median(self.figure)

    @property
    def a(self) -> float | None:
        return median(self.anchor)

    @property
    def r(self) -> float | None:
        return median(self.ratio)

    @property
    def met(self) -> bool | None:
        if self.status or self.f is None:
            return None
        return self.met_fn(self)

    def fmt(self, v: float | None, unit: str | None = None) -> str:
        if v is None:
            return "-"
        return f"{v:,.{self.digits}f} {unit or self.unit}"

    def cells(self) -> list[str]:
        if self.status:
            return [self.label, self.status, self.anchor_label, "-", self.target, "n/a"]
        met = self.met
        return [
            self.label,
            self.fmt(self.f),
            f"{self.fmt(self.a, self.anchor_unit)} ({self.anchor_label})"
            if self.a is not None
            else self.anchor_label,
            f"{self.r:.2f}x" if self.r is not None else "-",
            self.target,
            "-" if met is None else ("yes" if met else "NO"),
        ]


def ratio_at_least(target: float) -> Callable[[Row], bool | None]:
    return lambda r: r.r is not None and r.r >= target


def ratio_at_most(target: float) -> Callable[[Row], bool | None]:
    return lambda r: r.r is not None and r.r <= target


def figure_below(limit: float) -> Callable[[Row], bool | None]:
    return lambda r: r.f is not None and r.f < limit


def flat_below(limit: float) -> Callable[[Row], bool | None]:
    """Under ``limit`` and flat: at most 1.1x the anchor (the smaller transfer)."""
    return lambda r: r.f is not None and r.f < limit and r.r is not None and r.r <= 1.1
