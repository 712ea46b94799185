"""What several benchmarks share: the order of the anchor and filesapi within a round (alternating
between rounds, so that drift on a shared machine hits both), and the RSS flatness row."""

from __future__ import annotations

from harness.plan import Plan, human
from harness.stats import Row, flat_below


def anchor_first(round_no: int) -> bool:
    """True when the anchor goes first in this round (even rounds)."""
    return round_no % 2 == 0


def order(round_no: int) -> tuple[str, str]:
    """("anchor", "filesapi") or ("filesapi", "anchor"), as anchor_first says."""
    return ("anchor", "filesapi") if anchor_first(round_no) else ("filesapi", "anchor")


def rss_flat_row(bench: str, plan: Plan) -> Row:
    """The worker's peak RSS during the large transfer (``bench`` is upload or download) against
    its peak during the smaller probe transfer: under 200 MB and flat."""
    big = human(plan.big)
    return Row(
        bench,
        f"server RSS during {big} {bench}",
        "MB",
        f"during {human(plan.probe)} {bench}",
        "< 200 MB, flat (<= 1.1x)",
        flat_below(200),
        ("limit", 200, False),
        short=f"RSS {big}\n{bench}",
        section="memory",
    )
