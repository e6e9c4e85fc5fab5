"""Neighbour-step speed (`embedder.neighbours`): the blocked search against brute-force numpy, and the choice.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_smoothing [--quick]

Data: seeded synthetic predictions at the standard run's shape — 20,608 tokens with 1-3 definitions each
(about 41k definitions), dimension 384 — built as token rows plus noise, 1,000 held-out tokens.
One JSON object per measurement:

* `nearest_other_<n>x384`: `nearest_other(k=50)` over every definition against every other token's
  definitions, baseline brute-force numpy (centred cosine matrix in blocks, own token masked,
  argpartition + sort) on the same vectors; `same` is the fraction of identical neighbour lists;
* `choose_<n>x384`: `choose` (the 99-point grid on the held-out half), no baseline (it is a one-off);
* `smoothed_rows_<n>x384`: the softmax-weighted rows at k = 50, baseline a numpy gather + einsum.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from definitionemb.embedder.smoothing import choose, nearest_other, smoothed_rows


def _numpy_nearest(pred: np.ndarray, token: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    c = pred.astype(np.float64).mean(0).astype(np.float32)
    x = pred - c
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = np.empty((len(x), k), dtype=np.int64)
    for s in range(0, len(x), block):
        sim = x[s : s + block] @ x.T
        sim[token[s : s + block, None] == token[None, :]] = -np.inf
        part = np.argpartition(-sim, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, part, 1), axis=1, kind="stable")
        out[s : s + block] = np.take_along_axis(part, order, 1)
    return out


def _emit(rec: dict[str, object]) -> None:
    print(json.dumps(rec), flush=True)


def main(argv: list[str]) -> None:
    n_tok = 4000 if "--quick" in argv else 20608
    rng = np.random.default_rng(0)
    per = rng.integers(1, 4, n_tok)
    token = np.repeat(np.arange(n_tok), per)
    rank = np.concatenate([np.arange(1, p + 1) for p in per]).astype(np.int32)
    orig = rng.standard_normal((n_tok, 384)).astype(np.float32)
    pred = (orig[token] + rng.standard_normal((len(token), 384))).astype(np.float32)
    held = rng.choice(n_tok, min(1000, n_tok // 4), replace=False)
    n = len(token)
    meta = {"threads": torch.get_num_threads()}

    t0 = time.perf_counter()
    base = _numpy_nearest(pred, token, 50)
    t1 = time.perf_counter()
    nb = nearest_other(pred, token, pred, token, 50)
    t2 = time.perf_counter()
    same = float(np.mean(np.all(base == nb.index, axis=1)))
    _emit(
        {
            "name": f"nearest_other_{n}x384",
            "seconds": t2 - t1,
            "baseline_seconds": t1 - t0,
            "speedup": (t1 - t0) / max(t2 - t1, 1e-9),
            "same": same,
            **meta,
        }
    )
    rows = orig[token]
    t0 = time.perf_counter()
    got = smoothed_rows(nb, rows, 50, 0.05)
    t1 = time.perf_counter()
    w = np.exp((nb.sim - nb.sim[:, :1]) / 0.05)
    w /= w.sum(1, keepdims=True)
    want = np.einsum("nk,nkd->nd", w, rows[nb.index])
    t2 = time.perf_counter()
    _emit(
        {
            "name": f"smoothed_rows_{n}x384",
            "seconds": t1 - t0,
            "baseline_seconds": t2 - t1,
            "speedup": (t2 - t1) / max(t1 - t0, 1e-9),
            "max_abs_diff": float(np.abs(got - want).max()),
            **meta,
        }
    )
    t0 = time.perf_counter()
    c = choose(pred, token, rank, orig, held, 3)
    _emit({"name": f"choose_{n}x384", "seconds": time.perf_counter() - t0, "grid": len(c.curve), **meta})


if __name__ == "__main__":
    main(sys.argv[1:])
