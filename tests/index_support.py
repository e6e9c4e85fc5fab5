"""Builders for the index tests: run folders with seeded arrays over RoBERTa's vocabulary and a small
lexicon with a few real-looking senses, both written by tests/fabricate.py (no tests here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from definitionemb.embedder.rundir import RunDir
from fabricate import lexicon_fingerprint, write_lexicon, write_run

DATA = Path(__file__).parent / "data"
SPECIAL = (0, 1, 2, 3, 50264)  # <s> <pad> </s> <unk> <mask>

# (word, pos, gloss) — real-looking glosses for a few words of the RoBERTa vocabulary.
SENSES = [
    ("cat", "noun", "A small domesticated carnivorous mammal with soft fur."),
    ("cat", "verb", "To hoist the anchor to the cathead."),
    ("dog", "noun", "A domesticated carnivorous mammal that barks."),
    ("bank", "noun", "An institution where one can deposit money."),
    ("bank", "noun", "The edge of land along a river."),
    ("river", "noun", "A large natural stream of water."),
    ("money", "noun", "A medium of exchange."),
    ("house", "noun", "A building where people live."),
]


def roberta_pieces(n: int | None = None) -> list[str]:
    vocab = json.loads((DATA / "roberta-bart" / "vocab.json").read_text(encoding="utf-8"))
    pieces = [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    return pieces if n is None else pieces[:n]


def token_frame(pieces: list[str], tokenizer_id: int = 1) -> pl.DataFrame:
    v = len(pieces)
    special = np.zeros(v, dtype=bool)
    special[[i for i in SPECIAL if i < v]] = True
    order = np.cumsum(~special) - 1  # freq_rank by id order among non-special tokens, as RoBERTa's dict.txt
    n_ns = int((~special).sum())
    bucket = np.where(order < 0.3 * n_ns, "frequent", np.where(order < 0.8 * n_ns, "medium", "rare"))
    bucket = np.where(special, "special", bucket)
    return pl.DataFrame(
        {
            "tokenizer_id": [tokenizer_id] * v,
            "token_id": list(range(v)),
            "piece": pieces,
            "surface": [p[1:] if p.startswith("Ġ") else p for p in pieces],
            "word_initial": [p.startswith("Ġ") for p in pieces],
            "special": special.tolist(),
            "frequency": [None] * v,
            "freq_rank": [None if s else int(o) for s, o in zip(special, order, strict=True)],
            "bucket": bucket.tolist(),
        },
        schema_overrides={"frequency": pl.Int64, "freq_rank": pl.Int32, "token_id": pl.Int32},
    )


def make_lexicon(path: Path, pieces: list[str], tokenizer_id: int = 1) -> dict[str, int]:
    """A lexicon with one tokenizer, its token table and SENSES aligned to their word-initial pieces.

    Returns {word: token_id} of the aligned words."""
    index = {p: i for i, p in enumerate(pieces)}
    aligned: dict[str, int] = {}
    rows: list[tuple[int, int, int, str, int]] = []
    for sid, (word, _, _) in enumerate(SENSES, start=1):
        tid = index.get("Ġ" + word)
        if tid is not None:
            rank = sum(1 for w, _, _ in SENSES[: sid - 1] if w == word) + 1
            rows.append((tokenizer_id, tid, sid, "exact", rank))
            aligned[word] = tid
    write_lexicon(
        path,
        token_frame(pieces, tokenizer_id),
        tokenizer_id=tokenizer_id,
        name="roberta-bart",
        sha256=f"sha-{len(pieces)}",
        frequency_source="vocab-order",
        senses=SENSES,
        alignment=pl.DataFrame(
            rows, schema=["tokenizer_id", "token_id", "sense_id", "rule", "rank"], orient="row"
        ),
    )
    return aligned


def random_covered(rng: np.random.Generator, v: int, share: float) -> np.ndarray:
    """A covered mask over `v` tokens drawn from `rng`: each token covered with probability `share`, the
    first four specials (<s> <pad> </s> <unk>) never."""
    covered = rng.random(v) < share
    covered[list(SPECIAL[:4])] = False
    return covered


def random_run(
    tmp: Path, v: int, d: int, rng: np.random.Generator, share: float, name: str = "run", **kw: Any
) -> RunDir:
    """`tmp`/lex.duckdb over RoBERTa's first `v` pieces (make_lexicon) and the run `tmp`/`name` on it:
    `rng` draws the covered mask (random_covered), then the v × d original rows; `kw` goes to make_run."""
    db = tmp / "lex.duckdb"
    make_lexicon(db, roberta_pieces(v))
    covered = random_covered(rng, v, share)
    return make_run(tmp / name, rng.standard_normal((v, d)).astype(np.float32), covered, db=db, **kw)


def make_run(
    path: Path,
    original: np.ndarray,
    covered: np.ndarray,
    *,
    run_id: str = "run-a",
    seed: int = 0,
    db: Path | None = None,
    model: str | None = None,
    family: str = "roberta",
    tokenizer_id: int = 1,
    sense_ids: np.ndarray | None = None,
    sense_vectors: np.ndarray | None = None,
) -> RunDir:
    """A run folder as embedder.generate leaves it: generated rows = original + seeded noise where covered."""
    rng = np.random.default_rng(seed)
    v, d = original.shape
    original = original.astype(np.float32)
    tokens = original.copy()
    tokens[covered] = original[covered] + rng.standard_normal((int(covered.sum()), d)).astype(np.float32)
    if sense_ids is None:
        sense_ids = np.arange(1, 6, dtype=np.int64)
        sense_vectors = rng.standard_normal((5, d)).astype(np.float32)
    return write_run(
        path,
        original,
        tokens,
        covered,
        model=model,
        family=family,
        db=db,
        seed=seed,
        tokenizer_id=tokenizer_id,
        sense_ids=sense_ids,
        sense_vectors=sense_vectors,
        run_id=run_id,
        tokenizer_sha256=f"sha-{v}",
        lexicon_fingerprint=lexicon_fingerprint(db) if db else None,
    )
