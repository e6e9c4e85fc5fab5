"""The two things later stages' tests fabricate: a run folder and a small lexicon (no tests here).

`write_run` writes the run-folder contract (embedder.rundir: manifest + arrays) once; the index and the
evaluation tests differ only in how they draw the arrays (index_support.py, evaluation_support.py).
`write_lexicon` writes a lexicon through `lexicon.db.writing`, from a token frame and optional senses
and alignment rows, as `lexicon.align` would leave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from definitionemb.embedder.rundir import RunDir
from definitionemb.lexicon.db import connect, fingerprint, writing

__all__ = ["lexicon_fingerprint", "write_lexicon", "write_run"]


def lexicon_fingerprint(path: Path) -> str:
    with connect(path) as con:
        return fingerprint(con)


def write_run(
    path: Path,
    original: np.ndarray,
    tokens: np.ndarray,
    covered: np.ndarray,
    *,
    model: str | None,
    family: str,
    db: Path | None = None,
    seed: int = 0,
    tokenizer_id: int = 1,
    sense_ids: np.ndarray | None = None,
    sense_vectors: np.ndarray | None = None,
    **manifest: Any,
) -> RunDir:
    """A run folder as `embedder.generate` leaves it; `manifest` adds or overrides manifest keys."""
    v, d = original.shape
    run = RunDir(path)
    path.mkdir(parents=True, exist_ok=True)
    run.write_manifest(
        {
            "run_id": path.name,
            "model": model,
            "model_family": family,
            "tokenizer_id": tokenizer_id,
            "lexicon_db": run.portable(db, always=True)
            if db is not None
            else None,  # as the trainer records it
            "vocab_size": v,
            "dim": d,
            "seed": seed,
            **manifest,
        }
    )
    run.save_array("original_vectors.npy", np.asarray(original, dtype=np.float32))
    run.save_array("token_vectors.npy", np.asarray(tokens, dtype=np.float32))
    run.save_array("token_covered.npy", np.asarray(covered, dtype=bool))
    if sense_ids is not None:
        assert sense_vectors is not None and len(sense_vectors) == len(sense_ids)
        run.save_array("sense_ids.npy", np.asarray(sense_ids, dtype=np.int64))
        run.save_array("sense_vectors.npy", np.asarray(sense_vectors, dtype=np.float32))
    return RunDir.open(path)


def write_lexicon(
    path: Path,
    tokens: pl.DataFrame,
    *,
    tokenizer_id: int = 1,
    name: str = "fixture",
    kind: str = "bpe",
    sha256: str = "fixture-sha",
    frequency_source: str | None = None,
    senses: Sequence[tuple[str, str, str]] = (),
    alignment: pl.DataFrame | None = None,
) -> None:
    """A lexicon with one tokenizer and its `token` rows; `senses` as (word, pos, gloss), sense_id 1, 2, …;
    `alignment` rows (tokenizer_id, token_id, sense_id, rule, rank)."""
    with writing(path) as con:
        con.execute(
            "INSERT INTO tokenizer (tokenizer_id, name, kind, vocab_size, sha256, frequency_source, aligned_at) "
            "VALUES (?, ?, ?, ?, ?, ?, now())",
            [tokenizer_id, name, kind, tokens.height, sha256, frequency_source],
        )
        con.register("tokens_df", tokens.to_arrow())
        con.execute("INSERT INTO token SELECT * FROM tokens_df")
        con.unregister("tokens_df")
        for sid, (word, pos, gloss) in enumerate(senses, start=1):
            con.execute(
                "INSERT INTO entry (entry_id, source_id, record_no, word, lang_code, pos) VALUES (?, 1, ?, ?, 'en', ?)",
                [sid, sid, word, pos],
            )
            con.execute(
                "INSERT INTO sense (sense_id, entry_id, ord, gloss) VALUES (?, ?, 0, ?)", [sid, sid, gloss]
            )
        if alignment is not None and alignment.height:
            con.register("align_df", alignment.to_arrow())
            con.execute(
                "INSERT INTO alignment (tokenizer_id, token_id, sense_id, rule, rank) "
                "SELECT tokenizer_id, token_id, sense_id, rule, rank FROM align_df"
            )
            con.unregister("align_df")
