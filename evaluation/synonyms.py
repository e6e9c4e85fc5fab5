"""Synonym recall: the share of a word's dictionary synonyms among its k nearest neighbours.

The lexicon's `synonym` view (kaikki's synonyms, Open Dictionary's "Synonym of X" glosses) gives pairs
of words; a pair counts where both words are one whole-word token of the run's tokenizer. For each such
word and each matrix (the original rows, the rows under each row policy), recall@k is the share of its
synonyms among its k nearest rows by cosine (itself and the special rows excluded). The difference to
the original rows comes with a paired bootstrap 95 % interval over the words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from definitionemb.embedder.binding import LexiconRef, bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.evaluation.paired import resampled_mean_differences

__all__ = ["recall_at_k", "synonym_recall"]

_BLOCK = 512


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(n > 0, n, 1.0)


def recall_at_k(
    matrix: np.ndarray, synonyms: Mapping[int, set[int]], k: int, exclude: np.ndarray | None = None
) -> dict[int, float]:
    """Per query token: |synonyms ∩ its k nearest rows| / |synonyms| (cosine; itself and `exclude` rows
    are never neighbours)."""
    unit = _unit(matrix)
    queries = np.fromiter(synonyms, dtype=np.int64)
    out: dict[int, float] = {}
    for lo in range(0, queries.size, _BLOCK):
        q = queries[lo : lo + _BLOCK]
        sims = unit[q] @ unit.T
        sims[np.arange(q.size), q] = -np.inf
        if exclude is not None:
            sims[:, exclude] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        for tid, row in zip(q.tolist(), top, strict=True):
            syn = synonyms[tid]
            out[tid] = len(syn.intersection(row.tolist())) / len(syn)
    return out


def _paired_interval(a: np.ndarray, b: np.ndarray, samples: int, seed: int) -> tuple[float, float]:
    lo, hi = np.quantile(resampled_mean_differences(a, b, samples, seed), [0.025, 0.975])
    return float(lo), float(hi)


def synonym_recall(
    run: RunDir,
    matrices: Mapping[str, np.ndarray],
    db: LexiconRef = None,
    k: int = 10,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Recall@k of each matrix on the lexicon's synonym pairs, and each matrix's difference to
    `original` with a paired bootstrap 95 % interval (over words)."""
    from definitionemb.lexicon.queries import synonym_token_pairs

    if k < 1:
        raise EvaluationError(f"k must be at least 1, got {k}")
    with bound(run, db) as lex:
        pairs = synonym_token_pairs(lex.con, lex.tokenizer_id)
        special = lex.special_ids()
    synonyms: dict[int, set[int]] = {}
    for a, b in zip(pairs["token_id"].to_list(), pairs["synonym_id"].to_list(), strict=True):
        synonyms.setdefault(int(a), set()).add(int(b))
    if not synonyms:
        raise EvaluationError(
            "the run's lexicon holds no synonym pair whose words are both single tokens of its tokenizer; "
            "build it from kaikki (its synonyms) or Open Dictionary (its 'Synonym of' glosses) with "
            "`defemb lexicon build` (lexicon schema 2)"
        )
    exclude = np.zeros(next(iter(matrices.values())).shape[0], dtype=bool)
    exclude[special[special < exclude.size]] = True
    per = {name: recall_at_k(m, synonyms, k, exclude) for name, m in matrices.items()}
    words = sorted(synonyms)
    base = np.array([per["original"][w] for w in words]) if "original" in per else None
    result: dict[str, Any] = {
        "k": k,
        "words": len(words),
        "pairs": int(pairs.height),
        "recall": {name: float(np.mean(list(r.values()))) for name, r in per.items()},
        "delta": {},
    }
    if base is not None:
        for name, r in per.items():
            if name == "original":
                continue
            other = np.array([r[w] for w in words])
            lo, hi = _paired_interval(base, other, samples, seed)
            result["delta"][name] = {"mean": float((other - base).mean()), "ci95": [lo, hi]}
    return result
