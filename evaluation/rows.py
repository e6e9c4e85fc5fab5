"""Which row is which: frequency buckets, special rows, and the matrices a run is evaluated on.

Buckets come from the lexicon's `token` table when a database is given (the frequency signal the
aligner used). Without one they follow row order — the first 30 % of the non-special rows frequent, the
next 50 % medium, the last 20 % rare — which is frequency order for RoBERTa/BART (fairseq's dict.txt
order) and the reference's own convention; for WordPiece vocabularies it is only an approximation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedder.rundir import RunDir
from evaluation.errors import EvaluationError, MissingStage

__all__ = [
    "DEFAULT_SPLIT",
    "buckets_by_order",
    "buckets_from_lexicon",
    "special_ids_of",
    "run_buckets",
    "run_tokenizer_id",
    "run_matrices",
    "swap_mask",
    "describe",
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
    from lexicon.db import connect

    con = connect(db)
    try:
        rows = con.execute(
            "SELECT token_id, CASE WHEN special THEN 'special' ELSE coalesce(bucket, 'unknown') END "
            "FROM token WHERE tokenizer_id = ?",
            [tokenizer_id],
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise MissingStage(
            f"{db} has no tokens for tokenizer_id {tokenizer_id}. Align it first: "
            f"defemb lexicon align --db {db} --tokenizer MODEL_DIR"
        )
    labels = np.full(n_rows, "unknown", dtype=object)
    for tid, bucket in rows:
        if 0 <= tid < n_rows:
            labels[tid] = bucket
    return labels.astype(str)


def special_ids_of(model: str | os.PathLike[str]) -> list[int]:
    """The special-token ids of a model's tokenizer (`<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>`, `[CLS]`, ...)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot load the tokenizer of {model}: {exc}") from exc
    return sorted(set(tok.all_special_ids))


def run_tokenizer_id(run: RunDir, db: str | os.PathLike[str]) -> int:
    """The lexicon's tokenizer_id of the run's vocabulary (from the manifest, else by tokenizer sha256)."""
    m = run.manifest()
    if m.get("tokenizer_id") is not None:
        return int(m["tokenizer_id"])
    sha = m.get("tokenizer_sha256")
    if sha:
        import lexicon
        from lexicon.db import connect

        con = connect(db)
        try:
            tid = lexicon.tokenizer_id(con, sha)
        finally:
            con.close()
        if tid is not None:
            return int(tid)
    raise MissingStage(
        f"run {run.path} names no tokenizer_id and its tokenizer is not in {db}; "
        f"align it with: defemb lexicon align --db {db} --tokenizer {m.get('model', 'MODEL_DIR')}"
    )


def run_buckets(run: RunDir, db: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, str]:
    """(labels per row, where they came from). Uses `db`, else the manifest's `lexicon_db` if it exists."""
    m = run.manifest()
    n = int(m.get("vocab_size") or run.original_vectors().shape[0])
    path = db if db is not None else m.get("lexicon_db")
    if path and Path(path).is_file():
        from lexicon.db import connect, fingerprint

        con = connect(path)
        try:
            run.check_lexicon(fingerprint(con))  # buckets of another lexicon would mislabel rows
        finally:
            con.close()
        return buckets_from_lexicon(path, run_tokenizer_id(run, path), n), f"lexicon:{path}"
    if db is not None:
        raise EvaluationError(f"no lexicon database at {db}")
    specials: list[int] = list(range(4))
    if m.get("model"):
        with contextlib.suppress(EvaluationError):
            specials = special_ids_of(m["model"])
    return buckets_by_order(n, specials), "row-order"


def swap_mask(run: RunDir, db: str | os.PathLike[str] | None, select: str | None) -> np.ndarray:
    """Which rows to replace: the run's covered mask, or `index.select.select_rows(run, db, select)`."""
    if select in (None, "covered"):
        return np.asarray(run.covered_mask(), dtype=bool)
    try:
        from index.select import select_rows
    except ImportError as exc:
        raise MissingStage(
            f"selection {select!r} needs index.select.select_rows, which is not available: {exc}"
        ) from exc
    m = run.manifest()
    path = db if db is not None else m.get("lexicon_db")
    return np.asarray(select_rows(run, path, select), dtype=bool)


def run_matrices(
    run: RunDir,
    db: str | os.PathLike[str] | None = None,
    select: str | None = None,
    abtt_dims: int = 10,
    buckets: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`{"original", "definitionemb", "abtt"}`: the PLM's rows, the rows after the swap, and the
    all-but-the-top baseline of the original rows (special rows excluded from its fit)."""
    from evaluation.isotropy import all_but_the_top

    original = np.asarray(run.original_vectors(), dtype=np.float32)
    generated = np.asarray(run.token_vectors(), dtype=np.float32)
    if original.shape != generated.shape:
        raise EvaluationError(
            f"{run.path}: original_vectors {original.shape} and token_vectors {generated.shape} differ"
        )
    mask = swap_mask(run, db, select)
    if mask.shape != (original.shape[0],):
        raise EvaluationError(f"selection mask has shape {mask.shape}, expected ({original.shape[0]},)")
    swapped = np.where(mask[:, None], generated, original).astype(np.float32)
    exclude = None if buckets is None else np.asarray(buckets) == "special"
    return {
        "original": original,
        "definitionemb": swapped,
        "abtt": all_but_the_top(original, abtt_dims, exclude),
    }


def describe(labels: np.ndarray) -> dict[str, Any]:
    """Row counts per bucket label."""
    vals, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(vals, counts, strict=True)}
