"""Neighbour rows: a definition's prediction moved toward the rows of the tokens defined most like it.

The regressor maps a definition to a row in one linear step from its pooled features; what it cannot
place, the dictionary often can: the tokens whose definitions land nearest are usually its synonyms,
its co-hyponyms or pieces of the same kind, and their rows are known. So a definition's row becomes

    (1 − β) · prediction + β · Σⱼ softmax(simⱼ / τ) · row(token of neighbour j)

over its k nearest *other* definitions, by cosine between centred predictions. A definition never reads
a row of its own token (the neighbours of token t are definitions of tokens ≠ t), so a generated row
stays a function of the definitions and of other tokens' rows.

(k, τ, β) are chosen per run on development tokens — half of the run's held-out tokens, the other half
reported — with β = 0 (the plain regressor) always on the grid, so the step is only taken where it wins.

numpy in, numpy out; the similarity search is an exact blocked product (tested against brute force).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from definitionemb.core.records import Record
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.inference import mean_by_token

__all__ = [
    "NearestDefinitions",
    "SmoothingChoice",
    "nearest_other",
    "smoothed_rows",
    "choose",
    "KS",
    "TAUS",
    "BETAS",
]

KS = (10, 20, 50)
TAUS = (0.02, 0.05, 0.1)
BETAS = tuple(round(0.1 * i, 1) for i in range(11))
_BLOCK = 2048


@dataclass(frozen=True)
class NearestDefinitions:
    """For each query definition, its nearest reference definitions of other tokens, best first."""

    index: np.ndarray  # (n, k) int64 into the references
    sim: np.ndarray  # (n, k) float32 cosine


def _unit_centred(x: np.ndarray, centre: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) - torch.from_numpy(centre)
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest_other(
    query: np.ndarray,
    query_token: np.ndarray,
    ref: np.ndarray,
    ref_token: np.ndarray,
    k: int,
) -> NearestDefinitions:
    """The `k` references nearest each query by cosine of centred vectors, skipping the query's own token.

    Vectors are centred on the references' mean first: predictions share a large common direction that
    would otherwise make every pair look alike.
    """
    query_token = np.asarray(query_token, dtype=np.int64)
    ref_token = np.asarray(ref_token, dtype=np.int64)
    if len(query) != len(query_token) or len(ref) != len(ref_token):
        raise EmbedderError("neighbours: one token id per vector is needed")
    if k < 1:
        raise EmbedderError("neighbours: k must be >= 1")
    # a token has at most `own` references; take that many more, then drop them
    own = int(np.bincount(ref_token - ref_token.min()).max()) if len(ref_token) else 0
    kk = min(k + own, len(ref))
    if kk < 1:
        raise EmbedderError("neighbours: no reference definitions")
    centre = np.asarray(ref, dtype=np.float64).mean(0).astype(np.float32)
    r = _unit_centred(ref, centre)
    rt = torch.from_numpy(ref_token)
    index = np.empty((len(query), k), dtype=np.int64)
    sim = np.empty((len(query), k), dtype=np.float32)
    for s in range(0, len(query), _BLOCK):
        q = _unit_centred(query[s : s + _BLOCK], centre)
        v, i = (q @ r.T).topk(kk, dim=1)
        v = v.masked_fill(rt[i] == torch.from_numpy(query_token[s : s + _BLOCK])[:, None], -np.inf)
        v, o = v.sort(dim=1, descending=True)
        i = i.gather(1, o)
        if not torch.isfinite(v[:, :k]).all():
            raise EmbedderError(f"neighbours: fewer than {k} reference definitions of other tokens")
        index[s : s + _BLOCK] = i[:, :k].numpy()
        sim[s : s + _BLOCK] = v[:, :k].numpy()
    return NearestDefinitions(index, sim)


def smoothed_rows(nb: NearestDefinitions, ref_rows: np.ndarray, k: int, tau: float) -> np.ndarray:
    """Σⱼ softmax(simⱼ / τ) · ref_rows[j] over each query's first `k` neighbours (n×d float32)."""
    if not 1 <= k <= nb.index.shape[1]:
        raise EmbedderError(f"neighbours: k must be in 1..{nb.index.shape[1]}")
    if tau <= 0:
        raise EmbedderError("neighbours: tau must be > 0")
    w = torch.softmax(torch.from_numpy(nb.sim[:, :k]).double() / tau, dim=1)
    rows = torch.from_numpy(np.asarray(ref_rows, dtype=np.float32))
    out = torch.empty((len(w), rows.shape[1]), dtype=torch.float32)
    for s in range(0, len(w), _BLOCK):
        idx = torch.from_numpy(nb.index[s : s + _BLOCK, :k])
        out[s : s + _BLOCK] = (w[s : s + _BLOCK, :, None] * rows[idx].double()).sum(1).float()
    return out.numpy()


@dataclass(frozen=True)
class SmoothingChoice(Record):
    """The (k, τ, β) a run uses, why, and the held-out scores it was chosen and judged on."""

    k: int
    tau: float
    beta: float
    dev_tokens: int
    test_tokens: int
    scores: dict[str, float]  # dev/test/all × plain/neighbours, the run's top-k cosine
    curve: list[dict[str, float]]  # every grid point: k, tau, beta, dev

    @property
    def active(self) -> bool:
        return self.beta > 0


def _cosine(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    a = torch.from_numpy(rows).double()
    b = torch.from_numpy(target).double()
    return torch.nn.functional.cosine_similarity(a, b, dim=1).numpy()


def choose(
    preds: np.ndarray,
    token_id: np.ndarray,
    rank: np.ndarray,
    original: np.ndarray,
    heldout: np.ndarray,
    topk: int,
    seed: int = 0,
) -> SmoothingChoice:
    """Pick (k, τ, β) on half of the held-out tokens; score the other half, which the choice never reads.

    Queries are the held-out tokens' definitions, references the definitions of every other token (none
    held out), so no held-out row is read while predicting a held-out token. The score is the mean cosine
    of a token's row (its top-`topk` mean, as generated) to its original row. Ties go to the smaller β.
    """
    token_id = np.asarray(token_id, dtype=np.int64)
    held = np.isin(token_id, heldout)
    hq = np.flatnonzero(held)
    rf = np.flatnonzero(~held)
    if len(np.unique(token_id[hq])) < 2:
        raise EmbedderError("neighbours: the run has fewer than 2 held-out tokens with definitions")
    kmax = min(max(KS), len(rf) - 1)
    ks = sorted({min(k, kmax) for k in KS})
    nb = nearest_other(preds[hq], token_id[hq], preds[rf], token_id[rf], kmax)
    ref_rows = original[token_id[rf]]
    uniq, plain = mean_by_token(token_id[hq], rank[hq], preds[hq], topk)
    target = original[uniq]
    perm = np.random.default_rng([seed, 11]).permutation(len(uniq))
    dev = np.zeros(len(uniq), dtype=bool)
    dev[perm[: len(uniq) // 2]] = True
    base = _cosine(plain, target)
    curve: list[dict[str, float]] = []
    cache: dict[tuple[int, float], np.ndarray] = {}
    for k in ks:
        for tau in TAUS:
            _, nbr = mean_by_token(token_id[hq], rank[hq], smoothed_rows(nb, ref_rows, k, tau), topk)
            cache[(k, tau)] = nbr
            for beta in BETAS:
                score = float(_cosine((1 - beta) * plain + beta * nbr, target)[dev].mean())
                curve.append({"k": k, "tau": tau, "beta": beta, "dev": score})
    # max keeps the first of equals, and β = 0 scores the same at every (k, τ): ties go to the smaller β
    best = max(curve, key=lambda p: (round(p["dev"], 12), -p["beta"]))
    k, tau, beta = int(best["k"]), best["tau"], best["beta"]
    fused = _cosine((1 - beta) * plain + beta * cache[(k, tau)], target)
    scores = {
        "plain_dev": float(base[dev].mean()),
        "plain_test": float(base[~dev].mean()),
        "plain_all": float(base.mean()),
        "smoothed_dev": float(fused[dev].mean()),
        "smoothed_test": float(fused[~dev].mean()),
        "smoothed_all": float(fused.mean()),
    }
    return SmoothingChoice(k, tau, beta, int(dev.sum()), int((~dev).sum()), scores, curve)
