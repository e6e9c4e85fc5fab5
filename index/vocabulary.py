"""Token look-up by piece, word or id over the run's token table (`embedder.binding.RunLexicon`).

Every query that names tokens goes through here, so "cat", "Ġcat" and "4758" resolve the same way in
`neighbors`, `senses_near` and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from definitionemb.embedder.binding import RunLike, as_run
from definitionemb.index.errors import TokenNotFound

__all__ = ["RunLike", "as_run", "pieces_by_id", "resolve_tokens"]


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
    if all(isinstance(q, int) for q in queries):  # ids only: no look-up tables to build (a server's case)
        for q in queries:
            if not 0 <= int(q) < vocab_size:
                raise TokenNotFound(f"token id {q} is outside the vocabulary (0..{vocab_size - 1})")
        return [int(q) for q in queries]
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
