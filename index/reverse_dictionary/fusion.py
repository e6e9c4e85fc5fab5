"""The reverse dictionary's arithmetic: scorer names and weights, z-scores and their weighted fusion.

Pure functions over numpy arrays (torch only as a faster kernel on the same numbers), tested against
plain numpy in `tests/test_reverse_dictionary.py`, as faiss `contrib/` does for its fast paths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from definitionemb.index.errors import IndexStageError

__all__ = [
    "SCORERS",
    "SENSE_LEVEL",
    "DEFAULT_WEIGHTS",
    "NO_SENTENCE_WEIGHTS",
    "TOKEN_MISSING",
    "ZIPF_CAP",
    "RERANK",
    "SECOND_PASS",
    "zscore",
    "fuse",
    "sense_scales",
    "top_k",
    "fast_bfloat16",
]

SCORERS = ("tokens", "senses", "glosses", "headwords", "lexical", "frequency", "lemma")
SENSE_LEVEL = ("senses", "glosses", "lexical")  # scored per sense, then best sense per word
# Tuned on hill-seen-500 (its README: a development set) with all 262,869 Open Dictionary headwords as
# candidates, MiniLM quick run, by coordinate search on acc@10 and median rank (RESULTS.md, "Reverse
# dictionary, fourth pass"): the sentence embedding of the glosses leads; the frequency prior, the
# regressor's sense vectors, the headword embedding, BM25 and the lemma prior each add to it. Token
# rows add nothing on top (they score alone; weight 0 here).
DEFAULT_WEIGHTS: dict[str, float] = {
    "tokens": 0.0,
    "senses": 0.3,
    "glosses": 1.0,
    "headwords": 0.2,
    "lexical": 0.1,
    "frequency": 2.0,
    "lemma": 0.1,
}
# Runs whose base model is no sentence encoder (RoBERTa, BART) have no sentence scorers; tuned the
# same way with `glosses`/`headwords` left out.
NO_SENTENCE_WEIGHTS: dict[str, float] = {
    "tokens": 0.0,
    "senses": 1.0,
    "lexical": 0.2,
    "frequency": 1.5,
    "lemma": 0.1,
}
TOKEN_MISSING = 0.0
# Past ~30 uses per 10^9 words (Zipf 1.5) a word is plainly in use and more frequency says little about
# whether it answers a definition; the cap was the best of {1, 1.5, 2, 3, none} on half A (RESULTS.md).
ZIPF_CAP = 1.5
# The regressor's sense vectors and BM25 cost as much over every sense as the sentence scorers, and only
# reorder the words those already rank high: a second pass gives them the first pass's RERANK best words
# per query (benchmarks/HISTORY.md, "Reverse dictionary, fifth pass": on hill-seen-500 any cut from 200 up gives
# the acc@10 and median rank of scoring every word, 500 keeps acc@100 within 0.2). Their z-scores take
# each query's mean and spread over a fixed sample of _SAMPLE words, the sample every query shares.
RERANK = 500
SECOND_PASS = ("senses", "lexical", "headwords")
RERANK = 500
SECOND_PASS = ("senses", "lexical", "headwords")


def zscore(v: np.ndarray, missing: float) -> np.ndarray:
    """Per-row z-scores of word scores over their finite values; NaN (no score: a split word under
    `tokens`) becomes `missing`, -inf (filtered out) stays -inf."""
    v = np.asarray(v, dtype=np.float32)
    t = as_tensor(v)
    if _all_finite(t):  # the common case: torch's reductions use every core, numpy's one
        d, sd, _ = _centred(t)
        return (d / sd.clamp_min(1e-9)).numpy()
    finite = np.isfinite(v)
    vv = np.where(finite, v, np.nan)
    mu = np.nanmean(vv, axis=1, keepdims=True)
    sd = np.nanstd(vv, axis=1, keepdims=True)
    z = (vv - mu) / np.maximum(sd, 1e-9)
    return np.where(np.isnan(v), np.float32(missing), np.where(finite, z, -np.inf)).astype(np.float32)


def _centred(t: Any) -> tuple[Any, Any, Any]:
    """A finite n×W tensor less its row means, the population standard deviations and the means
    (n×1 each).

    Two plain reductions (the sum, then the norm of the deviations): torch's `std_mean` (Welford) took
    13 ms on 16×262k scores where these take 3-4 ms; the deviations are what the fusion adds up, so
    a near-constant scorer (σ ≪ μ) loses no precision to a large shift added at the end."""
    import torch

    mu = t.sum(dim=1, keepdim=True) / t.shape[1]
    d = t - mu
    return d, torch.linalg.vector_norm(d, dim=1, keepdim=True) / math.sqrt(t.shape[1]), mu


def _all_finite(t: Any) -> bool:
    """No NaN or ±inf anywhere (the scores are bounded, so their sum is finite exactly then)."""
    return math.isfinite(float(t.sum()))


def fast_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16/AMX), where they run 2-3×
    faster than float32; elsewhere bfloat16 would be emulated and slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def as_tensor(v: np.ndarray) -> Any:
    """A zero-copy torch view of a float32 array where possible, strided ones (the transposed word
    scores of `Headwords.word_max`) included; a read-only one, such as a broadcast prior row, is
    copied: torch tensors are writable."""
    import torch

    if v.flags.writeable and all(st >= 0 for st in v.strides):
        return torch.from_numpy(v)
    return torch.from_numpy(np.array(v))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores (any order; ties are ordered by the caller)."""

    return as_tensor(scores).topk(k, dim=1, sorted=False).indices.numpy()


def fuse(
    word_scores: dict[str, np.ndarray],
    weights: dict[str, float],
    token_missing: float = TOKEN_MISSING,
    sds: dict[str, np.ndarray] | None = None,
    raw_single: bool = True,
) -> np.ndarray:
    """Σ weight × z-score (per query, over every candidate) of the scorers with a non-zero weight.

    With a single scorer the raw cosine is returned (unless not `raw_single`), so its scores stay
    readable. `sds`, when given, receives each scorer's per-query standard deviation (the
    best-sense lookup reuses it).
    """
    import torch

    used = [s for s, w in weights.items() if w and s in word_scores]
    if not used:
        raise IndexStageError(f"no scorer with a non-zero weight among {sorted(word_scores)}")
    if len(used) == 1 and raw_single:
        v = word_scores[used[0]]
        return np.where(np.isnan(v), -np.inf, v)
    # Σ w (v − μ) / σ is accumulated in place from each scorer's deviations, the priors' one shared
    # row added once at the end.
    total: Any = None
    prior: Any = None
    for s in used:
        v = word_scores[s]
        w = float(weights[s])
        if v.ndim == 2 and v.shape[0] > 1 and v.strides[0] == 0:  # one row for every query (a prior)
            row = torch.from_numpy(zscore(v[:1], -np.inf)) * w
            prior = row if prior is None else prior + row
            continue
        t = as_tensor(v)
        if s != "tokens" and _all_finite(t):
            d, sd, _ = _centred(t)
            scale = w / sd.clamp_min(1e-9)
            if sds is not None:
                sds[s] = sd.squeeze(1).numpy()
            if total is None:
                total = d.mul_(scale)
            else:
                total.addcmul_(d, scale)
        else:
            z = torch.from_numpy(zscore(v, token_missing if s == "tokens" else -np.inf)) * w
            total = z if total is None else total.add_(z)
    if total is None:
        total = prior.expand(next(iter(word_scores.values())).shape[0], -1).clone()
    elif prior is not None:
        total.add_(prior)
    return np.asarray(total.numpy())


def sense_scales(
    words: dict[str, np.ndarray], weights: dict[str, float], sds: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Per sense-level scorer, weight / (per-query sd of its word scores): the factors that put the
    senses of one word on the fusion's z-scale (the mean drops out of an argmax within a word).
    `sds` are those the fusion computed; any missing is computed here."""
    out: dict[str, np.ndarray] = {}
    for s in SENSE_LEVEL:
        if weights.get(s) and s in words:
            v = words[s]
            if sds is not None and s in sds:
                sd = sds[s]
            else:
                sd = np.nanstd(np.where(np.isfinite(v), v, np.nan), axis=1)
            out[s] = np.float32(weights[s]) / np.maximum(np.nan_to_num(sd, nan=1.0), 1e-9)
    return out
