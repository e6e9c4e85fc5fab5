"""Builders for the evaluation tests: fabricated run folders and a small lexicon. No tests here.

The run folder is the contract between the embedder and evaluation, so a run written here with RunDir,
seeded arrays and a manifest whose `model` is a tiny fixture model is exactly what evaluation receives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedder.rundir import RunDir

DATA = Path(__file__).parent / "data" / "eval"
RULES = ("exact", "casefold", "lemma", "affix")


def input_matrix(model_dir: Path) -> np.ndarray:
    """The model's input-embedding rows, as the embedder stores them in original_vectors.npy."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir))
    return model.get_input_embeddings().weight.detach().numpy().astype(np.float32).copy()


def make_run(
    path: Path,
    model_dir: Path,
    family: str,
    seed: int = 0,
    covered_share: float = 0.6,
    db: Path | None = None,
    original: np.ndarray | None = None,
) -> RunDir:
    """A run whose covered rows are 'generated': a seeded, more isotropic re-draw of the original rows."""
    rng = np.random.default_rng(seed)
    orig = input_matrix(model_dir) if original is None else original
    v, d = orig.shape
    covered = rng.random(v) < covered_share
    covered[:4] = False
    generated = orig.copy()
    scale = float(np.linalg.norm(orig, axis=1).mean()) / np.sqrt(d)
    generated[covered] = (rng.standard_normal((int(covered.sum()), d)) * scale).astype(np.float32)
    run = RunDir(path)
    path.mkdir(parents=True, exist_ok=True)
    run.write_manifest(
        {
            "run_id": path.name,
            "model": str(model_dir),
            "model_family": family,
            "tokenizer_id": 1,
            "lexicon_db": str(db) if db is not None else None,
            "vocab_size": v,
            "dim": d,
            "seed": seed,
            "config": {"fabricated": True},
            "versions": {},
            "timings": {},
        }
    )
    run.save_array("original_vectors.npy", orig)
    run.save_array("token_vectors.npy", generated)
    run.save_array("token_covered.npy", covered)
    return RunDir.open(path)


def make_lexicon(db: Path, vocab_size: int, special: tuple[int, ...], covered: np.ndarray) -> None:
    """A lexicon with one tokenizer (id 1): every token with a bucket by id order, covered tokens aligned."""
    import polars as pl

    from evaluation.rows import buckets_by_order
    from lexicon.db import writing

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
    with writing(db) as con:
        con.execute(
            "INSERT INTO tokenizer (tokenizer_id, name, kind, vocab_size, sha256) "
            "VALUES (1, 'fixture', 'bpe', ?, 'fixture-sha')",
            [vocab_size],
        )
        con.register("tokens_df", tokens.to_arrow())
        con.execute("INSERT INTO token SELECT * FROM tokens_df")
        con.register("align_df", align.to_arrow())
        con.execute("INSERT INTO alignment SELECT * FROM align_df")
