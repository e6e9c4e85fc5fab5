"""Which row is which: frequency buckets, special rows, and the matrices a run is evaluated on.

Buckets come from the lexicon's `token` table when a database is given (the frequency signal the
aligner used). Without one they follow row order — the first 30 % of the non-special rows frequent, the
next 50 % medium, the last 20 % rare — which is frequency order for RoBERTa/BART (fairseq's dict.txt
order) and the reference's own convention; for WordPiece vocabularies it is only an approximation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from definitionemb.embedder.binding import LexiconMissing, LexiconRef, bound, bucket_labels
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.index.select import select_rows

__all__ = [
    "DEFAULT_SPLIT",
    "buckets_by_order",
    "buckets_from_lexicon",
    "run_buckets",
    "run_matrices",
    "policy_swap",
    "describe",
    "changed_rare_rows",
    "rare_examples",
]

DEFAULT_SPLIT = (0.3, 0.5, 0.2)


def buckets_by_order(
    n_rows: int, special: Iterable[int] = range(4), split: Sequence[float] = DEFAULT_SPLIT
) -> np.ndarray:
    """Bucket labels by row order: `special` rows first removed, the rest cut 30/50/20 % in order."""
    if len(split) != 3 or abs(sum(split) - 1.0) > 1e-6 or min(split) < 0:
        raise EvaluationError(f"bucket split must be three non-negative shares summing to 1, got {split}")
    labels = np.empty(n_rows, dtype=object)
    is_special = np.zeros(n_rows, dtype=bool)
    sp = [i for i in special if 0 <= i < n_rows]
    is_special[sp] = True
    labels[is_special] = "special"
    rest = np.flatnonzero(~is_special)
    m = rest.size
    cut1 = int(round(split[0] * m))
    cut2 = int(round((split[0] + split[1]) * m))
    labels[rest[:cut1]] = "frequent"
    labels[rest[cut1:cut2]] = "medium"
    labels[rest[cut2:]] = "rare"
    return labels.astype(str)


def buckets_from_lexicon(db: str | os.PathLike[str], tokenizer_id: int, n_rows: int) -> np.ndarray:
    """Bucket labels from the lexicon's `token` table; rows the table lacks get the label `unknown`."""
    from definitionemb.lexicon.db import connect
    from definitionemb.lexicon.queries import token_table

    with connect(db) as con:
        return bucket_labels(token_table(con, tokenizer_id), n_rows)


def run_buckets(run: RunDir, db: LexiconRef = None) -> tuple[np.ndarray, str]:
    """(labels per row, where they came from): the run's lexicon (embedder.binding), else row order."""
    with bound(run, db) as lex:
        if lex.available:
            return lex.bucket_labels(), f"lexicon:{lex.path}"
        try:
            specials: Iterable[int] = lex.special_ids().tolist()
        except LexiconMissing:  # no lexicon, no model: the reference's convention of four special rows
            specials = range(4)
        return buckets_by_order(lex.vocab_size, specials), "row-order"


def policy_swap(
    run: RunDir, db: LexiconRef, rows: str | None = None, how: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(V×d matrix, V bool mask) of the row policy `rows` × `how` (None: the shipped default)."""
    from definitionemb.index.policy import as_policy, policy_matrix

    return policy_matrix(run, db, as_policy(rows, how, run))


def run_matrices(
    run: RunDir,
    db: LexiconRef = None,
    rows: str | None = None,
    how: Sequence[str] | str | None = None,
    abtt_dims: int = 10,
    buckets: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`{"original", <policy label>…, "abtt"}`: the PLM's rows, the rows under each policy `rows` × `how`
    (default: the shipped policy and the paper's `replace`), and the all-but-the-top baseline of the
    original rows (special rows excluded from its fit). Labels are `RowPolicy.label` (`dirmix:0.2`)."""
    from definitionemb.evaluation.geometry import all_but_the_top
    from definitionemb.index.policy import apply_how, as_policy

    original = np.asarray(run.original_vectors(), dtype=np.float32)
    generated = np.asarray(run.token_vectors(), dtype=np.float32)
    if original.shape != generated.shape:
        raise EvaluationError(
            f"{run.path}: original_vectors {original.shape} and token_vectors {generated.shape} differ"
        )
    hows = [how] if isinstance(how, str) else list(how or [as_policy(rows, None, run).how, "replace"])
    policies = list(dict.fromkeys(as_policy(rows, h, run) for h in hows))
    mask = np.asarray(select_rows(run, db, policies[0].rows), dtype=bool)  # one `rows` for all
    if mask.shape != (original.shape[0],):
        raise EvaluationError(f"selection mask has shape {mask.shape}, expected ({original.shape[0]},)")
    out: dict[str, np.ndarray] = {"original": original}
    for p in policies:
        out[p.label] = apply_how(original, generated, mask, p.how)
    exclude = None if buckets is None else np.asarray(buckets) == "special"
    out["abtt"] = all_but_the_top(original, abtt_dims, exclude)
    return out


def describe(labels: np.ndarray) -> dict[str, Any]:
    """Row counts per bucket label."""
    vals, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(vals, counts, strict=True)}


def changed_rare_rows(mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows a policy changed (`mask`) that lie in the rare bucket (`labels`, e.g. from `run_buckets`)."""
    m, lab = np.asarray(mask, dtype=bool), np.asarray(labels)
    if m.shape != lab.shape:
        raise EvaluationError(f"policy mask {m.shape} and bucket labels {lab.shape} differ in length")
    return m & (lab == "rare")


def rare_examples(token_ids: Sequence[Sequence[int]], rows: np.ndarray) -> np.ndarray:
    """Which examples hold at least one token of `rows` (a boolean row mask, e.g. `changed_rare_rows`):
    the rare-token subset of a downstream set. `token_ids` are each example's ids (all its sentences)."""
    r = np.asarray(rows, dtype=bool)
    out = np.zeros(len(token_ids), dtype=bool)
    for k, ids in enumerate(token_ids):
        a = np.asarray(ids, dtype=np.int64)
        a = a[(a >= 0) & (a < r.size)]
        out[k] = bool(r[a].any())
    return out
