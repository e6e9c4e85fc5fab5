"""Builders for the evaluation tests: run folders over a tiny fixture model's rows and a lexicon with a
bucket for every token, both written by tests/fabricate.py (no tests here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from definitionemb.embedder.rundir import RunDir
from fabricate import write_lexicon, write_run

DATA = Path(__file__).parent / "data" / "eval"
RULES = ("exact", "casefold", "lemma", "affix")


def model_family(model_dir: Path) -> str:
    """The family the embedder gives the model in `model_dir` (embedder.models.detect_family)."""
    from definitionemb.embedder.models import detect_family
    from transformers import AutoConfig

    return detect_family(AutoConfig.from_pretrained(str(model_dir)))


def input_matrix(model_dir: Path) -> np.ndarray:
    """The model's input-embedding rows, as the embedder stores them in original_vectors.npy."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir))
    return model.get_input_embeddings().weight.detach().numpy().astype(np.float32).copy()


def make_run(
    path: Path,
    model_dir: Path,
    seed: int = 0,
    covered_share: float = 0.6,
    db: Path | None = None,
    original: np.ndarray | None = None,
) -> RunDir:
    """A run of the model in `model_dir` (its family as the embedder detects it) whose covered rows are
    'generated': a seeded, more isotropic re-draw of the original rows."""
    rng = np.random.default_rng(seed)
    orig = input_matrix(model_dir) if original is None else original
    v, d = orig.shape
    covered = rng.random(v) < covered_share
    covered[:4] = False
    generated = orig.copy()
    scale = float(np.linalg.norm(orig, axis=1).mean()) / np.sqrt(d)
    generated[covered] = (rng.standard_normal((int(covered.sum()), d)) * scale).astype(np.float32)
    return write_run(
        path,
        orig,
        generated,
        covered,
        model=str(model_dir),
        family=model_family(model_dir),
        db=db,
        seed=seed,
        config={"fabricated": True},
        versions={},
        timings={},
    )


def make_lexicon(db: Path, vocab_size: int, special: tuple[int, ...], covered: np.ndarray) -> None:
    """A lexicon with one tokenizer (id 1): every token with a bucket by id order, covered tokens aligned."""
    import polars as pl
    from definitionemb.evaluation.rows import buckets_by_order

    labels = buckets_by_order(vocab_size, special)
    ids = np.arange(vocab_size)
    rank = np.full(vocab_size, -1)
    rank[labels != "special"] = np.arange(int((labels != "special").sum()))
    tokens = pl.DataFrame(
        {
            "tokenizer_id": np.ones(vocab_size, dtype=np.int32),
            "token_id": ids.astype(np.int32),
            "piece": [f"p{i}" for i in ids],
            "surface": [f"p{i}" for i in ids],
            "word_initial": np.ones(vocab_size, dtype=bool),
            "special": labels == "special",
            "frequency": (vocab_size - ids).astype(np.int64),
            "freq_rank": rank.astype(np.int32),
            "bucket": labels.tolist(),
        }
    )
    cov = np.flatnonzero(covered & (labels != "special"))
    align = pl.DataFrame(
        {
            "tokenizer_id": np.ones(cov.size, dtype=np.int32),
            "token_id": cov.astype(np.int32),
            "sense_id": cov.astype(np.int64),
            "rule": [RULES[i % len(RULES)] for i in range(cov.size)],
            "rank": np.ones(cov.size, dtype=np.int32),
        }
    )
    write_lexicon(db, tokens, alignment=align)
