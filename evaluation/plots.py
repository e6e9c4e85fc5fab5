"""Figures of the report (matplotlib, Agg backend, written atomically as PNG)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.fileio import write_bytes

__all__ = ["svd_projection", "svd_scatter", "isotropy_bars", "coverage_bars", "alpha_curve"]

_COLOURS = {"frequent": "#1f77b4", "medium": "#2ca02c", "rare": "#d62728", "special": "#7f7f7f"}
_ORDER = ("frequent", "medium", "rare")


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=size, squeeze=False)


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    p = Path(path)
    write_bytes(p, buf.getvalue())
    return p


def svd_projection(w: np.ndarray) -> np.ndarray:
    """Rows projected on the top two right singular vectors of the (uncentred) matrix."""
    a = np.asarray(w, dtype=np.float64)
    _, vecs = np.linalg.eigh(a.T @ a)
    return a @ vecs[:, ::-1][:, :2]


def svd_scatter(
    matrices: Mapping[str, np.ndarray],
    buckets: np.ndarray,
    path: str | os.PathLike[str],
    max_points: int = 6000,
    seed: int = 0,
) -> Path:
    """Side-by-side 2-D SVD scatter of each matrix, points coloured by frequency bucket (special rows left out)."""
    labels = np.asarray(buckets)
    rows = np.flatnonzero(np.isin(labels, _ORDER))
    rng = np.random.default_rng(seed)
    if rows.size > max_points:
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))
    fig, axes = _figure(1, len(matrices), (4.6 * len(matrices), 4.4))
    for ax, (name, m) in zip(axes[0], matrices.items(), strict=True):
        xy = svd_projection(np.asarray(m)[rows])
        for b in _ORDER:  # rare last, so the tail is drawn on top
            sel = labels[rows] == b
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=4,
                alpha=0.5,
                c=_COLOURS[b],
                label=f"{b} ({int(sel.sum())})",
                linewidths=0,
            )
        ax.set_title(name)
        ax.set_xlabel("singular direction 1")
        ax.set_ylabel("singular direction 2")
    axes[0][0].legend(loc="best", markerscale=3, fontsize=8)
    fig.suptitle(f"2-D SVD of the embedding rows ({rows.size} sampled)")
    fig.tight_layout()
    return _save(fig, path)


def isotropy_bars(
    isotropy: Mapping[str, Mapping[str, Mapping[str, Any] | None]], path: str | os.PathLike[str]
) -> Path:
    """Grouped bars per bucket: I(W) (log scale) and IsoScore, one bar per matrix."""
    groups = ["all", *_ORDER]
    names = list(isotropy)
    fig, axes = _figure(1, 2, (11, 4))
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(groups))
    for k, (metric, title, log) in enumerate(
        (("isotropy", "I(W) (log scale)", True), ("isoscore", "IsoScore", False))
    ):
        ax = axes[0][k]
        lowest = 1.0
        for j, name in enumerate(names):
            raw = [(isotropy[name].get(g) or {}).get(metric) for g in groups]
            vals: list[float] = [np.nan if v is None else float(v) for v in raw]
            bars = ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width, label=name)
            ax.bar_label(bars, fmt="%.2g", fontsize=7, padding=1)
            finite = [v for v in vals if np.isfinite(v) and v > 0]
            lowest = min([lowest, *finite])
        ax.set_xticks(x, groups)
        ax.set_title(title)
        if log:
            # I(W) spans orders of magnitude between matrices; the floor keeps the smallest bar visible.
            ax.set_yscale("log")
            ax.set_ylim(lowest / 3, 1.5)
        else:
            ax.set_ylim(0, 1.08)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Isotropy by frequency bucket (special rows excluded)")
    fig.tight_layout()
    return _save(fig, path)


def coverage_bars(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Stacked bars: for each bucket, the share of tokens whose first definition came by each rule.

    `rows` are `{"bucket", "rule", "tokens"}`; rule `uncovered` counts tokens with no definition.
    """
    buckets = [b for b in _ORDER if any(r["bucket"] == b for r in rows)]
    rules = sorted({str(r["rule"]) for r in rows} - {"uncovered"}) + ["uncovered"]
    totals = {b: sum(int(r["tokens"]) for r in rows if r["bucket"] == b) for b in buckets}
    fig, axes = _figure(1, 1, (7, 4))
    ax = axes[0][0]
    bottom = np.zeros(len(buckets))
    cmap = __import__("matplotlib").colormaps["tab10"]
    for i, rule in enumerate(rules):
        share = np.array(
            [
                sum(int(r["tokens"]) for r in rows if r["bucket"] == b and r["rule"] == rule)
                / max(totals[b], 1)
                for b in buckets
            ]
        )
        colour = "#dddddd" if rule == "uncovered" else cmap(i % 10)
        ax.bar(buckets, share, bottom=bottom, label=rule, color=colour, edgecolor="white")
        bottom += share
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of the bucket's tokens")
    ax.set_xticks(range(len(buckets)), [f"{b}\n({totals[b]} tokens)" for b in buckets])
    ax.legend(title="rule of the first definition", fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.set_title("Lexicon coverage by frequency bucket and alignment rule")
    return _save(fig, path)


def alpha_curve(knobs: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Spearman of every set (test part) against α, one panel per method, with the development-part mean
    that chose α, the chosen point, and the share of original neighbours kept (right axis)."""
    methods = list(knobs["methods"])
    alphas = [float(a) for a in knobs["alphas"]]
    fig, axes = _figure(1, len(methods), (5.6 * len(methods), 4.2))
    sets = list(knobs["pairs"])
    cmap = __import__("matplotlib").colormaps["tab10"]

    def how(m: str, a: float) -> str:
        return f"{m}:{a:g}"

    for ax, m in zip(axes[0], methods, strict=True):
        for i, ds in enumerate(sets):
            ys = [knobs["test"][how(m, a)].get(ds) for a in alphas]
            ax.plot(alphas, [np.nan if y is None else y for y in ys], color=cmap(i % 10), lw=1, label=ds)
        for part, style in (("test", "-"), ("dev", "--")):
            means = [
                np.nanmean([np.nan if v is None else v for v in knobs[part][how(m, a)].values()])
                for a in alphas
            ]
            ax.plot(alphas, means, "k" + style, lw=2, label=f"mean ({part} part)")
        if knobs["chosen"].startswith(m + ":"):
            ax.axvline(float(knobs["chosen"].split(":")[1]), color="k", lw=0.8, ls=":")
        ax.set_xlabel("α (weight of the generated row)")
        ax.set_ylabel("Spearman")
        ax.set_title(m)
        kept = knobs.get("neighbours_kept") or {}
        if kept:
            ax2 = ax.twinx()
            ax2.plot(alphas, [kept.get(how(m, a), np.nan) for a in alphas], color="grey", ls=":", lw=1.5)
            ax2.set_ylim(0, 1.02)
            ax2.set_ylabel("original top-10 neighbours kept (grey)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Row policy weight α; chosen {knobs['chosen']} on the development parts")
    fig.tight_layout()
    return _save(fig, path)
