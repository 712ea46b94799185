"""The chart of docs/benchmarks.png: each row's ratio (or figure / limit) next to its target."""

from __future__ import annotations

from pathlib import Path

from harness.stats import Row


def chart(rows: list[Row], path: Path, title: str) -> str | None:
    """Grouped bars: each row's measured ratio (or figure / limit) next to its target."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart written"
    # (label, measured, target, higher_is_better)
    ratios: list[tuple[str, float, float, bool]] = []
    limits: list[tuple[str, float, float, bool]] = []
    for r in rows:
        if r.status or r.chart is None or r.f is None:
            continue
        kind, target, higher = r.chart
        if kind == "ratio" and r.r is not None:
            ratios.append((r.short, r.r, target, higher))
        elif kind == "limit":
            limits.append((r.short, r.f / target, 1.0, higher))
        if "flat" in r.target and r.r is not None:
            ratios.append((r.short.replace("RSS ", "RSS flatness\n"), r.r, 1.1, False))
    panels = [
        ("filesapi / its anchor (ratio), next to the target ratio", ratios),
        ("filesapi figure / the absolute target, next to the target (= 1)", limits),
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        return "nothing to chart"
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4.6 * len(panels)), squeeze=False)
    good, bad, grey = "#2e8b57", "#c0392b", "#9aa5b1"
    for ax, (panel_title, items) in zip(axes[:, 0], panels, strict=True):
        width = 0.38
        top = min(max(max(m for _l, m, _t, _h in items), max(t for _l, _m, t, _h in items)) * 1.18, 3.0)
        for x, (_label, measured, target, higher) in enumerate(items):
            ok = measured >= target if higher else measured <= target
            shown = min(measured, top / 1.08)
            ax.bar(x - width / 2, shown, width, color=good if ok else bad)
            ax.bar(x + width / 2, target, width, color=grey)
            clipped = " (off scale)" if shown < measured else ""
            ax.annotate(
                f"{measured:.2f}{clipped}", (x - width / 2, shown), ha="center", va="bottom", fontsize=8
            )
            ax.annotate(
                "min" if higher else "max", (x + width / 2, target), ha="center", va="bottom", fontsize=7
            )
        ax.set_ylim(0, top)
        ax.set_xlim(-0.7, max(len(items), 4) - 0.3)
        ax.set_xticks(range(len(items)))
        ax.set_xticklabels([label for label, _m, _t, _h in items], fontsize=8)
        ax.set_title(panel_title, fontsize=10)
        ax.axhline(1.0, color="#888", linewidth=0.6, linestyle=":")
        ax.legend(
            handles=[
                Patch(color=good, label="filesapi, target met"),
                Patch(color=bad, label="filesapi, missed"),
                Patch(color=grey, label="target (min or max)"),
            ],
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
