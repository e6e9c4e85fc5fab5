"""Reading what the embedder needs from the lexicon: tokenizer identity, ranked definitions, senses.

Bulk rows come back as numpy/list columns straight from DuckDB (no Python objects per row beyond the
strings the tokenizer needs anyway).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from definitionemb.embedder.errors import EmbedderError

__all__ = [
    "Definitions",
    "tokenizer_sha256",
    "resolve_tokenizer",
    "fetch_definitions",
    "fetch_senses",
    "fetch_words",
    "lexicon_fingerprint",
]

_LOG = logging.getLogger("definitionemb.embedder")


@dataclass(frozen=True)
class Definitions:
    """Column-wise definition rows (one per token × ranked sense, or per sense)."""

    token_id: np.ndarray  # int64; -1 for sense-only rows
    rank: np.ndarray  # int32
    sense_id: np.ndarray  # int64
    word: list[str]
    pos: list[str | None]
    gloss: list[str]

    def __len__(self) -> int:
        return len(self.gloss)


def _definitions(rows: dict[str, Any]) -> Definitions:
    """Definitions from DuckDB's fetchnumpy columns; rows without token ids are sense-only (-1, rank 1)."""
    n = len(rows["sense_id"])
    has_tokens = "token_id" in rows
    return Definitions(
        token_id=np.asarray(rows["token_id"], dtype=np.int64)
        if has_tokens
        else np.full(n, -1, dtype=np.int64),
        rank=np.asarray(rows["rank"], dtype=np.int32) if has_tokens else np.ones(n, dtype=np.int32),
        sense_id=np.asarray(rows["sense_id"], dtype=np.int64),
        word=[str(w) for w in rows["word"]],
        # NULL pos arrives as None or NaN depending on the column's other values
        pos=[None if p is None or p != p else str(p) for p in rows["pos"]],
        gloss=[str(g) for g in rows["gloss"]],
    )


def tokenizer_sha256(model_dir: str | os.PathLike[str], tokenizer: Any) -> str:
    """The lexicon's identity of a tokenizer (`lexicon.tokenizers.load_vocab(dir).sha256`).

    Falls back to the same definition computed from the loaded HF tokenizer (sha256 of the JSON list of
    pieces in id order) when the folder is not one `load_vocab` reads.
    """
    from definitionemb.lexicon.tokenizers import load_vocab

    try:
        return str(load_vocab(str(model_dir)).sha256)
    except Exception as exc:  # a folder load_vocab cannot read: derive the same fingerprint ourselves
        _LOG.warning(
            "embedder: lexicon.tokenizers.load_vocab(%s) failed (%s); hashing the HF vocabulary",
            model_dir,
            exc,
        )
    import hashlib
    import json

    vocab = tokenizer.get_vocab()
    pieces = [""] * (max(vocab.values()) + 1)
    for piece, i in vocab.items():
        pieces[i] = piece
    return hashlib.sha256(json.dumps(pieces, ensure_ascii=False).encode("utf-8")).hexdigest()


def lexicon_fingerprint(db: str | os.PathLike[str]) -> str:
    from definitionemb.lexicon.db import connect, fingerprint

    con = connect(db)
    try:
        return fingerprint(con)
    finally:
        con.close()


def resolve_tokenizer(
    db: str | os.PathLike[str], model_dir: str, sha: str, align_if_missing: bool, progress: bool = True
) -> int:
    """The lexicon's tokenizer_id for this model's tokenizer, aligning it first when asked to."""
    from definitionemb.lexicon.aligner import align, tokenizer_id
    from definitionemb.lexicon.db import connect

    with connect(db) as con:
        tid = tokenizer_id(con, sha)
    if tid is not None:
        return tid
    if not align_if_missing:
        raise EmbedderError(
            f"the tokenizer of {model_dir} is not aligned in {db}. Run: defemb lexicon align --db {db} "
            f"--tokenizer {model_dir}"
        )
    _LOG.info(
        "embedder: tokenizer of %s is not aligned in %s; aligning it now (lexicon.align)", model_dir, db
    )
    align(db, model_dir, progress=progress)
    with connect(db) as con:
        tid = tokenizer_id(con, sha)
    if tid is None:
        raise EmbedderError(f"lexicon.align ran but {db} still has no tokenizer with sha256 {sha[:12]}…")
    return tid


def _fetch(db: str | os.PathLike[str], sql: str, params: list[Any] | None = None) -> Definitions:
    from definitionemb.lexicon.db import connect

    with connect(db) as con:
        return _definitions(con.execute(sql, params or []).fetchnumpy())


def fetch_definitions(db: str | os.PathLike[str], tokenizer_id: int, max_rank: int) -> Definitions:
    """Ranked definitions of every aligned, non-special token (rank <= max_rank), by token then rank."""
    return _fetch(
        db,
        """SELECT token_id, rank, sense_id, word, pos, gloss FROM token_definition
           WHERE tokenizer_id = ? AND rank <= ? AND coalesce(bucket, '') <> 'special'
             AND gloss IS NOT NULL AND length(trim(gloss)) > 0
           ORDER BY token_id, rank""",
        [tokenizer_id, max_rank],
    )


def fetch_senses(db: str | os.PathLike[str]) -> Definitions:
    """Every sense of the lexicon (for sense vectors), by sense_id."""
    return _fetch(
        db,
        """SELECT s.sense_id, e.word, e.pos, s.gloss FROM sense s JOIN entry e USING (entry_id)
           WHERE s.gloss IS NOT NULL ORDER BY s.sense_id""",
    )


def fetch_words(db: str | os.PathLike[str]) -> Definitions:
    """The first sense of every lexicon word (for multi-piece training examples)."""
    return _fetch(
        db,
        """SELECT s.sense_id, e.word, e.pos, s.gloss FROM sense s JOIN entry e USING (entry_id)
           WHERE s.gloss IS NOT NULL AND length(trim(s.gloss)) > 0
           QUALIFY row_number() OVER (PARTITION BY e.word ORDER BY e.entry_id, s.ord) = 1
           ORDER BY e.word""",
    )
