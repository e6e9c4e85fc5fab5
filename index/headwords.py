"""The reverse dictionary's candidates: every headword of the lexicon with its senses, grouped by word.

Senses keep the order `embedder.generate` writes sense vectors in (by sense_id, glosses not null), so
a run's `sense_vectors.npy` and the shared gloss embeddings line up with `sense_ids` row for row;
`order`/`starts` group them by word for a per-word max (`Headwords.word_max`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
from definitionemb.index.errors import IndexMismatch

__all__ = [
    "Headwords",
    "load_headwords",
    "single_token_ids",
    "query_words",
    "word_zipf",
    "lemma_share",
    "query_clauses",
    "WORD_RE",
]

# A word of a query: letters, with inner apostrophes or hyphens ("o'clock", "well-known").
WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")


@dataclass(frozen=True)
class Headwords:
    """Every word that has at least one gloss, and the senses behind it.

    `words[w]` is a headword (sorted, unique); `sense_ids`, `sense_pos`, `gloss`, `sense_word` describe
    the senses in sense_id order; `order` lists sense rows grouped by word (sense_id order inside a
    word) and `starts[w]` is where word w's group begins in `order`.
    """

    words: np.ndarray
    sense_ids: np.ndarray
    sense_word: np.ndarray
    sense_pos: np.ndarray
    gloss: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    identity_order: bool
    _fold: dict[str, list[int]] = field(default_factory=dict, repr=False, compare=False)
    _by_count: list[tuple[Any, Any, int]] = field(default_factory=list, repr=False, compare=False)

    @property
    def n_words(self) -> int:
        return int(self.words.shape[0])

    @property
    def n_senses(self) -> int:
        return int(self.sense_ids.shape[0])

    @property
    def sense_counts(self) -> np.ndarray:
        """Per word, how many senses it has (the length of its group in `order`)."""
        return np.diff(np.append(self.starts, self.n_senses))

    def digest(self) -> str:
        """sha256 of the word list and the sense ids: binds caches and run indexes to this table."""
        h = hashlib.sha256(json.dumps(self.words.tolist(), ensure_ascii=False).encode())
        h.update(np.ascontiguousarray(self.sense_ids, dtype=np.int64).tobytes())
        return h.hexdigest()

    def by_fold(self) -> dict[str, list[int]]:
        """casefolded word → indices of the headwords spelled that way."""
        if not self._fold:
            for i, w in enumerate(self.words.tolist()):
                self._fold.setdefault(str(w).casefold(), []).append(i)
        return self._fold

    def by_count(self) -> list[tuple[Any, Any, int]]:
        """(word indices, their sense rows flattened words-major, c) as torch tensors, for each number
        of senses c a word has."""
        if not self._by_count:
            import torch

            counts = self.sense_counts
            for c in np.unique(counts).tolist():
                w = np.flatnonzero(counts == c)
                rows = self.order[self.starts[w][:, None] + np.arange(c)[None, :]]
                self._by_count.append((torch.from_numpy(w), torch.from_numpy(rows.ravel()), c))
        return self._by_count

    def word_max(self, per_sense: np.ndarray) -> np.ndarray:
        """n×W: each word's best sense score (columns of `per_sense` are senses in sense_id order).

        Words are taken a sense count at a time (most have one or two senses): a gather and a max over
        a small axis, several times faster than `np.maximum.reduceat` over 262k groups. A
        `per_sense` that is the transpose of a senses×n array (as `ReverseDictionary` makes it) is
        read row by row, without a copy.
        """
        import torch

        by_sense = torch.from_numpy(np.ascontiguousarray(per_sense.T))  # S×n: a row of n scores per sense
        n = by_sense.shape[1]
        out = torch.empty((self.n_words, n), dtype=by_sense.dtype)
        for w, rows, c in self.by_count():
            g = by_sense.index_select(0, rows)
            out.index_copy_(0, w, g if c == 1 else g.view(-1, c, n).amax(dim=1))
        # The n×W result is a transposed view of the W×n one: copying it into C order took as long as
        # the gathers (RESULTS.md); consumers go through torch, which reads strided arrays as they are.
        return out.numpy().T

    def rows_of(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sense rows of several words, grouped by word, and for each row its position in `words`."""
        w = np.asarray(words, dtype=np.int64)
        count = self.sense_counts[w]
        seg = np.repeat(np.arange(len(w), dtype=np.int64), count)
        first = np.cumsum(count) - count  # where each word's group starts in the result
        at = self.starts[w][seg] + np.arange(len(seg), dtype=np.int64) - first[seg]
        return self.order[at], seg

    def senses_of(self, w: int) -> np.ndarray:
        """Sense rows (sense_id order) of word w."""
        end = int(self.starts[w + 1]) if w + 1 < self.n_words else self.n_senses
        return self.order[int(self.starts[w]) : end]


def load_headwords(con: duckdb.DuckDBPyConnection) -> Headwords:
    """The candidate table of a lexicon: its words with a non-null gloss, and all their senses."""
    rows = con.execute(
        """SELECT s.sense_id, e.word, e.pos, s.gloss FROM sense s JOIN entry e USING (entry_id)
           WHERE s.gloss IS NOT NULL ORDER BY s.sense_id"""
    ).fetchnumpy()
    sense_ids = np.asarray(rows["sense_id"], dtype=np.int64)
    words_per_sense = np.asarray(rows["word"], dtype=object)
    words, sense_word = np.unique(words_per_sense.astype(str), return_inverse=True)
    sense_word = sense_word.astype(np.int64)
    order = np.argsort(sense_word, kind="stable")
    counts = np.bincount(sense_word, minlength=len(words))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    pos = np.asarray([p if p is None else str(p) for p in rows["pos"]], dtype=object)
    return Headwords(
        words=np.asarray(words.tolist(), dtype=object),
        sense_ids=sense_ids,
        sense_word=sense_word,
        sense_pos=pos,
        gloss=np.asarray(rows["gloss"], dtype=object),
        order=order.astype(np.int64),
        starts=starts,
        identity_order=bool(np.array_equal(order, np.arange(len(order)))),
    )


def single_token_ids(con: duckdb.DuckDBPyConnection, tokenizer_id: int, words: np.ndarray) -> np.ndarray:
    """For each word, the token id of the one word-initial token it is (-1 where the tokenizer splits it).

    A word matches a word-initial token of the same surface; an uncased vocabulary (no upper-case
    word-initial surface at all, like MiniLM's) also matches its lower-cased spelling, as its tokenizer
    lower-cases before splitting.
    """
    tok = con.execute(
        """SELECT surface, min(token_id) AS token_id FROM token
           WHERE tokenizer_id = ? AND word_initial AND NOT special AND surface IS NOT NULL
           GROUP BY surface""",
        [tokenizer_id],
    ).fetchnumpy()
    by_surface = dict(zip([str(s) for s in tok["surface"]], [int(t) for t in tok["token_id"]], strict=True))
    uncased = not any(s != s.lower() for s in by_surface)
    out = np.full(len(words), -1, dtype=np.int64)
    for i, w in enumerate(words.tolist()):
        hit = by_surface.get(w)
        if hit is None and uncased:
            hit = by_surface.get(str(w).lower())
        if hit is not None:
            out[i] = hit
    return out


def query_words(text: str, max_phrase: int = 4) -> set[str]:
    """The casefolded words of a query and its phrases of up to `max_phrase` words ("ice cream")."""
    ws = [w.casefold() for w in WORD_RE.findall(text)]
    out: set[str] = set(ws)
    for n in range(2, max_phrase + 1):
        for i in range(len(ws) - n + 1):
            out.add(" ".join(ws[i : i + n]))
            out.add("-".join(ws[i : i + n]))
    return out


def word_zipf(words: np.ndarray, lang: str = "en") -> np.ndarray:
    """Each word's Zipf frequency in real English text (wordfreq: log10 of occurrences per 10^9 words,
    0 for a word none of its corpora has).

    Reverse-dictionary queries describe words people use; most headwords of a large dictionary are
    rare, archaic or technical, so how common a word is tells the two apart where the glosses cannot.
    """
    import wordfreq

    return np.asarray([wordfreq.zipf_frequency(str(w), lang) for w in words.tolist()], dtype=np.float32)


def lemma_share(con: duckdb.DuckDBPyConnection, hw: Headwords) -> np.ndarray:
    """Per word, the share of its senses that are not "form of" / "alternative form of" another word.

    A definition describes a lemma; "plural of cat" or "alternative spelling of colour" senses describe
    a spelling. 1.0 for a word with only its own senses, 0.0 for one that is only another word's form.
    """
    rows = con.execute(
        """SELECT sense_id, (form_of IS NULL AND alt_of IS NULL) AS own FROM sense
           WHERE gloss IS NOT NULL ORDER BY sense_id"""
    ).fetchnumpy()
    if not np.array_equal(np.asarray(rows["sense_id"], dtype=np.int64), hw.sense_ids):
        raise IndexMismatch("the headword table was loaded from another state of this lexicon; reload it")
    mine = np.asarray(rows["own"], dtype=np.float64)  # the same senses, in the same order, as `hw`
    counts = np.bincount(hw.sense_word, minlength=hw.n_words)
    return (np.bincount(hw.sense_word, weights=mine, minlength=hw.n_words) / np.maximum(counts, 1)).astype(
        np.float32
    )


def query_clauses(text: str) -> list[str]:
    """The ";"-separated clauses of a definition that have letters ("vote against ; refuse to endorse").

    Dictionary senses are one clause each, so a many-clause query is matched both whole and clause by
    clause (:class:`index.reverse_dictionary.ReverseDictionary`); one clause returns `[text]`.
    """
    parts = [p.strip() for p in text.split(";")]
    parts = [p for p in parts if WORD_RE.search(p)]
    return parts if len(parts) > 1 else [text.strip()]
