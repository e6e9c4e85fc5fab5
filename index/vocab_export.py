"""Exported vectors with their vocabulary: which row is which token, whether the lexicon covered it, by
which alignment rule, and whether the export changed it.

- :func:`vocabulary_frame`: one row per token id (token_id, piece, word_initial, covered, replaced,
  rule, bucket, frequency), from the run's lexicon; without one, the pieces of the base model's
  tokenizer and nulls for what only the lexicon knows.
- :func:`write_parquet`: that frame plus a `vector` column (fixed-size float32 list), one file.
- :func:`write_word2vec`: the word2vec text format (`V d` then `piece v1 … vd` per line), which
  gensim's `KeyedVectors.load_word2vec_format` reads; a piece holding whitespace (none in the usual
  vocabularies) is written with U+2581 in its place, since the format splits on spaces.
- :func:`write_vocab_txt`: one piece per line in id order (the `vocab.txt` beside npy/safetensors).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
from definitionemb.embedder.binding import LexiconMissing, LexiconRef, bound
from definitionemb.embedder.rundir import RunDir

__all__ = ["VOCAB_COLUMNS", "vocabulary_frame", "write_parquet", "write_vocab_txt", "write_word2vec"]

VOCAB_COLUMNS = ("token_id", "piece", "word_initial", "covered", "replaced", "rule", "bucket", "frequency")
_SPACE = re.compile(r"\s")


def _lexicon_rows(run: RunDir, db: LexiconRef) -> pl.DataFrame | None:
    from definitionemb.lexicon.errors import TokenizerError
    from definitionemb.lexicon.queries import vocabulary_table

    # An unbound run or an unaligned tokenizer falls back to the model's pieces; a lexicon of another
    # run (RunMismatch) is refused as everywhere.
    try:
        with bound(run, db) as lex:
            if not lex.available:
                return None
            return vocabulary_table(lex.con, lex.tokenizer_id)
    except (LexiconMissing, TokenizerError):
        return None


def _tokenizer_rows(run: RunDir, vocab_size: int) -> pl.DataFrame:
    from definitionemb.lexicon.tokenizers import load_vocab

    model = run.manifest().get("model")
    pieces: list[str | None] = [None] * vocab_size
    if model:
        try:
            for i, p in enumerate(load_vocab(str(model)).pieces[:vocab_size]):
                pieces[i] = p
        except Exception:  # an unreadable tokenizer: ids without pieces, still every row
            pass
    return pl.DataFrame(
        {"token_id": range(vocab_size), "piece": pieces}, schema={"token_id": pl.Int32, "piece": pl.String}
    )


def vocabulary_frame(run: RunDir, db: LexiconRef, replaced: np.ndarray) -> pl.DataFrame:
    """One row per row of the exported matrix (VOCAB_COLUMNS), in id order."""
    v = int(replaced.shape[0])
    ids = pl.DataFrame({"token_id": np.arange(v, dtype=np.int32)})
    rows = _lexicon_rows(run, db)
    if rows is None:
        rows = _tokenizer_rows(run, v)
    rows = rows.with_columns(pl.col("token_id").cast(pl.Int32))
    frame = ids.join(rows, on="token_id", how="left").sort("token_id")
    for name, dtype in (
        ("word_initial", pl.Boolean),
        ("rule", pl.String),
        ("bucket", pl.String),
        ("frequency", pl.Int64),
    ):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    frame = frame.with_columns(
        pl.Series("covered", np.asarray(run.covered_mask(), dtype=bool)),
        pl.Series("replaced", np.asarray(replaced, dtype=bool)),
    )
    return frame.select(VOCAB_COLUMNS)


def write_parquet(frame: pl.DataFrame, matrix: np.ndarray, path: Path) -> None:
    """The vocabulary with a `vector` column (float32 × d) into one Parquet file."""
    d = int(matrix.shape[1])
    vectors = pl.Series("vector", np.ascontiguousarray(matrix, dtype=np.float32)).cast(
        pl.Array(pl.Float32, d)
    )
    frame.with_columns(vectors).write_parquet(str(path))


def _key(piece: str | None, token_id: int) -> str:
    if not piece:
        return f"[id{token_id}]"
    return _SPACE.sub("\u2581", piece)


def write_word2vec(frame: pl.DataFrame, matrix: np.ndarray, path: Path) -> None:
    """word2vec text: a `V d` header, then one `piece v1 … vd` line per row (id order)."""
    m = np.asarray(matrix, dtype=np.float32)
    keys = [_key(p, i) for i, p in zip(frame["token_id"].to_list(), frame["piece"].to_list(), strict=True)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{m.shape[0]} {m.shape[1]}\n")
        for key, row in zip(keys, m, strict=True):
            f.write(key + " " + " ".join(f"{x:.7g}" for x in row.tolist()) + "\n")


def write_vocab_txt(frame: pl.DataFrame, path: Path) -> None:
    """One piece per line, line i = token id i (an id without a piece: `[id<i>]`)."""
    lines = [_key(p, i) for i, p in zip(frame["token_id"].to_list(), frame["piece"].to_list(), strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
