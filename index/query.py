"""Questions asked of a run's indexes: token neighbours (generated next to original), the reverse
dictionary (definition text → nearest tokens) and the senses nearest to a token."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import polars as pl
from definitionemb.embedder.binding import LexiconRef, bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import IndexStageError
from definitionemb.index.faiss_index import LoadedIndex, open_index
from definitionemb.index.vocabulary import RunLike, as_run, pieces_by_id, resolve_tokens

__all__ = [
    "KClamped",
    "clamp_k",
    "neighbors",
    "reverse_vectors",
    "reverse",
    "senses_near",
    "search_without_self",
]

DbPath = LexiconRef


class KClamped(UserWarning):
    """A requested k larger than the index: fewer neighbours exist, so k was lowered."""


def clamp_k(k: int, available: int, what: str = "the index") -> int:
    """`k` limited to the `available` results, with a :class:`KClamped` warning when it had to shrink.

    A k beyond the index size would only return padding rows (id -1, score -3.4e38) after allocating
    room for all of them; a huge k would exhaust memory first.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise IndexStageError(f"k must be a positive whole number, not {k!r}")
    if available < 1:
        raise IndexStageError(f"{what} is empty; rebuild it with: defemb index build --run RUN")
    if k > available:
        warnings.warn(f"k={k} is more than {what} holds; returning {available}", KClamped, stacklevel=3)
        return available
    return int(k)


def search_without_self(
    index: LoadedIndex, vectors: np.ndarray, self_ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k neighbours of each vector, leaving out the query's own id (a token is not its own neighbour)."""
    ids, scores = index.search(vectors, k + 1)
    own = ids == self_ids[:, None]
    # Rows whose own id did not come back (e.g. an approximate index missed it) drop their last hit instead.
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(ids.shape[0]), drop] = False
    return ids[keep].reshape(-1, k), scores[keep].reshape(-1, k)


def neighbors(
    run: RunLike,
    tokens: Sequence[str | int],
    k: int = 10,
    db: DbPath = None,
    indexes: Mapping[str, LoadedIndex] | None = None,
) -> pl.DataFrame:
    """Nearest tokens of each query token in the generated and in the original matrix, side by side.

    Tokens are ids, pieces ("Ġcat") or single-token words ("cat"). One row per (query, rank) with
    columns query, token_id, piece, rank, generated_id, generated_piece, generated_score, generated_word,
    generated_rule, original_id, original_piece, original_score. The generated side searches the
    `generated` index with the token's row of token_vectors.npy; the original side the `original` index
    with its original row. `generated_word` and `generated_rule` are the headword and alignment rule of
    the neighbour's first definition (null where it has none): pieces given one word's definitions
    (``cats``, ``##cat`` ← *cat*) tie at cosine 1.0, and these columns say why. `indexes`: the run's
    `generated` and `original` indexes already opened (a server opens them once).
    """
    r = as_run(run)
    with bound(r, db) as lex:
        table = lex.token_table()
        return _neighbors(r, lex, table, tokens, k, indexes)


def _neighbors(
    r: RunDir,
    lex: Any,
    table: Any,
    tokens: Sequence[str | int],
    k: int,
    indexes: Mapping[str, LoadedIndex] | None,
) -> pl.DataFrame:
    vocab = int(r.manifest().get("vocab_size") or r.token_vectors().shape[0])
    ids = np.asarray(resolve_tokens(table, tokens, vocab), dtype=np.int64)
    pieces = pieces_by_id(table, vocab)
    if indexes is None:
        indexes = {m: open_index(r, m) for m in ("generated", "original")}
    # the query's own row is left out, so one fewer neighbour exists than the index holds
    k = clamp_k(k, min(ix.manifest.ntotal for ix in indexes.values()) - 1, "the token index (less the query)")
    cols: dict[str, object] = {
        "query": np.repeat(np.asarray([str(t) for t in tokens], dtype=object), k).tolist(),
        "token_id": np.repeat(ids, k),
        "piece": np.repeat(pieces[ids], k).tolist(),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(ids)),
    }
    for matrix, source in (("generated", r.token_vectors()), ("original", r.original_vectors())):
        nid, score = search_without_self(indexes[matrix], np.asarray(source[ids]), ids, k)
        flat = nid.reshape(-1)
        cols[f"{matrix}_id"] = flat
        cols[f"{matrix}_piece"] = [pieces[i] if i >= 0 else None for i in flat]
        cols[f"{matrix}_score"] = score.reshape(-1)
        if matrix == "generated":
            first = _first_definitions(lex.con, lex.tokenizer_id, flat)
            cols["generated_word"] = [first.get(int(i), (None, None))[0] for i in flat]
            cols["generated_rule"] = [first.get(int(i), (None, None))[1] for i in flat]
    return pl.DataFrame(cols)


def _first_definitions(
    con: duckdb.DuckDBPyConnection, tokenizer_id: int, ids: np.ndarray
) -> dict[int, tuple[str, str]]:
    """token id → (headword, rule) of its rank-1 definition, for `ids`. Through a cursor of its own: a
    server answers several requests at once over one binding."""
    rows = (
        con.cursor()
        .execute(
            "SELECT token_id, word, rule FROM token_definition "
            "WHERE tokenizer_id = ? AND rank = 1 AND token_id IN (SELECT unnest(?))",
            [tokenizer_id, sorted({int(i) for i in ids if i >= 0})],
        )
        .fetchall()
    )
    return {int(t): (str(w), str(r)) for t, w, r in rows}


def reverse_vectors(
    run: RunLike, vectors: np.ndarray, k: int = 10, matrix: str = "original", db: DbPath = None
) -> pl.DataFrame:
    """Nearest tokens of each vector (the vector half of the reverse dictionary).

    `matrix` picks the index: `original` (default: the regressor is trained towards the original rows,
    and it holds every non-special token) or `generated`. Columns: query (row number), rank, token_id,
    piece, surface, score.
    """
    if matrix not in ("original", "generated"):
        raise IndexStageError(f"matrix must be 'original' or 'generated', not {matrix!r}")
    r = as_run(run)
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    index = open_index(r, matrix)
    k = clamp_k(k, index.manifest.ntotal, f"the {matrix} index")
    ids, scores = index.search(x, k)
    with bound(r, db) as lex:
        table = lex.token_table()
    hits = pl.DataFrame(
        {
            "query": np.repeat(np.arange(x.shape[0], dtype=np.int32), k),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), x.shape[0]),
            "token_id": ids.reshape(-1).astype(np.int32),
            "score": scores.reshape(-1),
        }
    )
    return (
        hits.join(table.select("token_id", "piece", "surface"), on="token_id", how="left")
        .select("query", "rank", "token_id", "piece", "surface", "score")
        .sort("query", "rank")
    )


def reverse(
    run: RunLike, text: str | Sequence[str], k: int = 10, matrix: str = "original", db: DbPath = None
) -> pl.DataFrame:
    """The reverse dictionary: definition text(s) → the run's regressor → nearest tokens.

    Same columns as :func:`reverse_vectors` plus `text`.
    """
    texts = [text] if isinstance(text, str) else list(text)
    if not texts or any(not t.strip() for t in texts):
        raise IndexStageError('reverse needs a non-empty definition text, e.g. "a small domesticated cat"')
    # Imported late: the generator pulls in torch and transformers, which the vector half never needs.
    from definitionemb.embedder.generator import encode_definitions

    r = as_run(run)
    vectors = np.asarray(encode_definitions(r, texts), dtype=np.float32)
    frame = reverse_vectors(r, vectors, k, matrix, db)
    return frame.with_columns(
        pl.col("query").map_elements(lambda i: texts[i], return_dtype=pl.String).alias("text")
    )


def senses_near(run: RunLike, token: str | int, k: int = 10, db: DbPath = None) -> pl.DataFrame:
    """The senses whose vectors lie nearest to a token's row (token_vectors.npy), with word and gloss.

    Columns: token_id, piece, rank, sense_id, score, word, pos, gloss.
    """
    r = as_run(run)
    with bound(r, db) as lex:
        con = lex.con
        table = lex.token_table()
        vocab = int(r.manifest().get("vocab_size") or r.token_vectors().shape[0])
        (tid,) = resolve_tokens(table, [token], vocab)
        index = open_index(r, "senses")
        k = clamp_k(k, index.manifest.ntotal, "the senses index")
        sids, scores = index.search(np.asarray(r.token_vectors()[[tid]]), k)
        hits = pl.DataFrame(
            {"rank": np.arange(1, k + 1, dtype=np.int32), "sense_id": sids[0], "score": scores[0]}
        ).filter(pl.col("sense_id") >= 0)
        con.register("hits", hits.to_arrow())
        try:
            joined = con.sql(
                "SELECT h.rank, h.sense_id, h.score, e.word, e.pos, s.gloss FROM hits h "
                "LEFT JOIN sense s USING (sense_id) LEFT JOIN entry e USING (entry_id) ORDER BY h.rank"
            ).pl()
        finally:
            con.unregister("hits")  # the connection may be the caller's
    piece = pieces_by_id(table, vocab)[tid]
    return joined.with_columns(
        pl.lit(tid, dtype=pl.Int64).alias("token_id"), pl.lit(piece, dtype=pl.String).alias("piece")
    ).select("token_id", "piece", "rank", "sense_id", "score", "word", "pos", "gloss")
