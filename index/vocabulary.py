"""The run's view of the lexicon: its token table, token look-up by piece/word/id, special rows.

Every query that names tokens goes through here, so "cat", "Ġcat" and "4758" resolve the same way in
`neighbors`, `senses_near` and the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from embedder.rundir import RunDir
from index.errors import IndexStageError, TokenNotFound
from lexicon.db import connect, fingerprint

__all__ = [
    "RunLike",
    "as_run",
    "lexicon_path",
    "open_lexicon",
    "run_tokenizer_id",
    "token_table",
    "pieces_by_id",
    "resolve_tokens",
    "special_ids",
]

RunLike = RunDir | str | os.PathLike[str]


def as_run(run: RunLike) -> RunDir:
    """A :class:`RunDir` from a run or its folder (checked by `RunDir.open`)."""
    return run if isinstance(run, RunDir) else RunDir.open(run)


def lexicon_path(run: RunDir, db: str | os.PathLike[str] | None = None) -> Path:
    """The lexicon to read: `db` if given, else the `lexicon_db` the run recorded."""
    if db is not None:
        return Path(db)
    recorded = run.manifest().get("lexicon_db")
    if not recorded:
        raise IndexStageError(
            f"run {run.path} records no lexicon_db in its manifest; pass the lexicon with --db PATH"
        )
    return Path(recorded)


def open_lexicon(run: RunDir, db: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """Open the run's lexicon read-only, refusing one whose fingerprint differs from the run's."""
    con = connect(lexicon_path(run, db), read_only=True)
    try:
        run.check_lexicon(fingerprint(con))
    except BaseException:
        con.close()
        raise
    return con


def run_tokenizer_id(run: RunDir, con: duckdb.DuckDBPyConnection) -> int:
    """The lexicon's `tokenizer_id` for the run: from the manifest, else by the tokenizer's sha256."""
    m = run.manifest()
    if m.get("tokenizer_id") is not None:
        return int(m["tokenizer_id"])
    sha = m.get("tokenizer_sha256")
    row = (
        con.execute("SELECT tokenizer_id FROM tokenizer WHERE sha256 = ?", [sha]).fetchone() if sha else None
    )
    if row is None:
        raise IndexStageError(
            f"run {run.path} names no tokenizer_id and its tokenizer is not aligned in this lexicon; "
            f"run: defemb lexicon align --db DB --tokenizer {m.get('model', 'MODEL')}"
        )
    return int(row[0])


def token_table(con: duckdb.DuckDBPyConnection, tokenizer_id: int) -> pl.DataFrame:
    """token_id, piece, surface, word_initial, special, freq_rank, bucket of one tokenizer, by id."""
    df = con.sql(
        "SELECT token_id, piece, surface, word_initial, special, freq_rank, bucket "
        "FROM token WHERE tokenizer_id = ? ORDER BY token_id",
        params=[tokenizer_id],
    ).pl()
    if df.height == 0:
        raise IndexStageError(
            f"the lexicon has no tokens for tokenizer_id {tokenizer_id}; align it first with "
            "`defemb lexicon align --db DB --tokenizer MODEL`"
        )
    return df


def pieces_by_id(table: pl.DataFrame, vocab_size: int) -> np.ndarray:
    """An object array: piece of every id (None where the lexicon has no row)."""
    out = np.full(vocab_size, None, dtype=object)
    ids = table["token_id"].to_numpy()
    keep = (ids >= 0) & (ids < vocab_size)
    out[ids[keep]] = np.asarray(table["piece"].to_list(), dtype=object)[keep]
    return out


def resolve_tokens(table: pl.DataFrame, queries: Sequence[str | int], vocab_size: int) -> list[int]:
    """Map each query to a token id: an integer id, a surface word, or an exact piece.

    A word matches the token whose `surface` equals it, word-initial spellings first ("cat" → "Ġcat"
    rather than the word-internal "cat"), then the most frequent; otherwise the query is taken as a
    piece ("Ġcat", "##ing"); case is ignored only when nothing matches exactly.
    """
    by_piece = dict(zip(table["piece"].to_list(), table["token_id"].to_list(), strict=True))
    ranked = table.filter(pl.col("surface").is_not_null()).sort(
        [pl.col("word_initial"), pl.col("freq_rank"), pl.col("token_id")],
        descending=[True, False, False],
        nulls_last=True,
    )
    by_surface: dict[str, int] = {}
    by_fold: dict[str, int] = {}
    for surface, tid in zip(ranked["surface"].to_list(), ranked["token_id"].to_list(), strict=True):
        by_surface.setdefault(surface, tid)
        by_fold.setdefault(surface.casefold(), tid)
    out: list[int] = []
    for q in queries:
        if isinstance(q, int) or (isinstance(q, str) and q.strip().isdigit()):
            tid = int(q)
            if not 0 <= tid < vocab_size:
                raise TokenNotFound(f"token id {tid} is outside the vocabulary (0..{vocab_size - 1})")
            out.append(tid)
            continue
        # The word first: "bank" means "Ġbank", not the word-internal piece "bank" (query that by id).
        hit = by_surface.get(q.strip())
        if hit is None:
            hit = by_piece.get(q)
        if hit is None:
            hit = by_fold.get(q.strip().casefold())
        if hit is None:
            raise TokenNotFound(
                f"{q!r} is neither a token id, a piece nor a single-token word of this tokenizer; "
                "words split into several pieces have no single row — query one of their pieces "
                "(`defemb sql` on the token table lists them)"
            )
        out.append(int(hit))
    return out


def special_ids(run: RunDir, db: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Ids of the special rows (<s>, [CLS], …): from the lexicon, else from the model's tokenizer."""
    try:
        con = open_lexicon(run, db)
    except Exception:
        con = None
    if con is not None:
        try:
            tid = run_tokenizer_id(run, con)
            rows = con.execute(
                "SELECT token_id FROM token WHERE tokenizer_id = ? AND special ORDER BY token_id", [tid]
            ).fetchall()
            return np.asarray([r[0] for r in rows], dtype=np.int64)
        except IndexStageError:
            pass
        finally:
            con.close()
    model = run.manifest().get("model")
    if model:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(model))
            return np.asarray(sorted(set(tok.all_special_ids)), dtype=np.int64)
        except Exception as exc:  # a tokenizer that cannot be loaded is a user problem to report
            raise IndexStageError(
                f"cannot tell the special tokens of run {run.path}: no usable lexicon and the tokenizer "
                f"at {model} does not load ({exc}); pass --db LEXICON"
            ) from exc
    raise IndexStageError(f"cannot tell the special tokens of run {run.path}: pass --db LEXICON")
