"""Builders for the index tests: fabricated run folders (RunDir + seeded arrays + manifest) and a small
lexicon written through lexicon.db.writing. The index's contract is the run folder, so a run built here
is exactly what the embedder hands over; no test in this module (pytest collects nothing from it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from embedder.rundir import RunDir
from lexicon.db import connect, fingerprint, writing

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
    tokens = token_frame(pieces, tokenizer_id)
    index = {p: i for i, p in enumerate(pieces)}
    aligned: dict[str, int] = {}
    with writing(path) as con:
        con.execute(
            "INSERT INTO tokenizer VALUES (?, 'roberta-bart', 'bpe', ?, ?, 'vocab-order', now())",
            [tokenizer_id, len(pieces), f"sha-{len(pieces)}"],
        )
        con.register("tok", tokens.to_arrow())
        con.execute("INSERT INTO token SELECT * FROM tok")
        con.unregister("tok")
        for sid, (word, pos, gloss) in enumerate(SENSES, start=1):
            con.execute("INSERT INTO entry VALUES (?, 1, ?, ?, 'en', ?, NULL, NULL)", [sid, sid, word, pos])
            con.execute(
                "INSERT INTO sense (sense_id, entry_id, ord, gloss) VALUES (?, ?, 0, ?)", [sid, sid, gloss]
            )
            tid = index.get("Ġ" + word)
            if tid is not None:
                rank = sum(1 for w, _, _ in SENSES[: sid - 1] if w == word) + 1
                con.execute(
                    "INSERT INTO alignment VALUES (?, ?, ?, 'exact', ?)", [tokenizer_id, tid, sid, rank]
                )
                aligned[word] = tid
    return aligned


def lexicon_fingerprint(path: Path) -> str:
    con = connect(path)
    try:
        return fingerprint(con)
    finally:
        con.close()


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
    run = RunDir(path)
    path.mkdir(parents=True, exist_ok=True)
    run.write_manifest(
        {
            "run_id": run_id,
            "model": model,
            "model_family": family,
            "tokenizer_sha256": f"sha-{v}",
            "tokenizer_id": tokenizer_id,
            "lexicon_db": str(db) if db else None,
            "lexicon_fingerprint": lexicon_fingerprint(db) if db else None,
            "vocab_size": v,
            "dim": d,
            "seed": seed,
        }
    )
    run.save_array("original_vectors.npy", original)
    run.save_array("token_vectors.npy", tokens)
    run.save_array("token_covered.npy", covered.astype(bool))
    if sense_ids is None:
        sense_ids = np.arange(1, 6, dtype=np.int64)
        sense_vectors = rng.standard_normal((5, d)).astype(np.float32)
    assert sense_vectors is not None
    run.save_array("sense_ids.npy", sense_ids.astype(np.int64))
    run.save_array("sense_vectors.npy", sense_vectors.astype(np.float32))
    return RunDir.open(path)
