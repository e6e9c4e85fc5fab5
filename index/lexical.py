"""BM25 over the lexicon's glosses: the reverse dictionary's lexical scorer.

Sentence embeddings blur rare, exact words ("sesame", "plow", "Belgian") that a definition and the
right gloss share; BM25 keeps them. Terms are the casefolded words of :data:`index.headwords.WORD_RE`;
a query counts each of its words once (a query is one short definition, not a document). The index is
a senses×terms sparse matrix of BM25 term weights, so scoring a batch of queries is one sparse product.

Saved as one `.npz` (CSC arrays + the term list): versioned by :data:`LEXICAL_FORMAT` and the
parameters, so a change of either makes the run's reverse index stale.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from definitionemb.core.fileio import write_bytes
from definitionemb.index.errors import IndexMismatch
from definitionemb.index.headwords import WORD_RE

__all__ = ["GlossBM25", "LEXICAL_FORMAT", "K1", "B"]

LEXICAL_FORMAT = 1
# The usual BM25 defaults (Robertson & Zaragoza); on hill-seen-500 neither moved acc@10 by more than a
# query when varied, so they are not tuned.
K1 = 1.2
B = 0.75


def _terms(text: str) -> list[str]:
    return [w.casefold() for w in WORD_RE.findall(text)]


@dataclass(frozen=True)
class GlossBM25:
    """BM25 weights of every gloss term: `weights` is senses×terms (CSC), `terms[j]` is term j."""

    weights: sp.csc_matrix
    terms: np.ndarray
    k1: float = K1
    b: float = B

    @property
    def spec(self) -> str:
        """What the manifest records: a different format or parameters means a rebuild."""
        return f"bm25 v{LEXICAL_FORMAT} k1={self.k1} b={self.b} terms={len(self.terms)}"

    @classmethod
    def build(cls, glosses: Sequence[str], k1: float = K1, b: float = B) -> GlossBM25:
        """Index `glosses` (one per sense, in the order their scores should come back)."""
        vocab: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        for g in glosses:
            freq: dict[int, int] = {}
            for t in _terms(str(g)):
                j = vocab.setdefault(t, len(vocab))
                freq[j] = freq.get(j, 0) + 1
            indices.extend(freq)
            counts.extend(freq.values())
            indptr.append(len(indices))
        n = len(indptr) - 1
        tf_m = sp.csr_matrix(
            (np.asarray(counts, np.float32), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
            shape=(n, len(vocab)),
        )
        length = np.asarray(tf_m.sum(axis=1), dtype=np.float32).ravel()
        avg = float(length.mean()) if n else 1.0
        df = np.bincount(tf_m.indices, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        rows = np.repeat(np.arange(n), np.diff(tf_m.indptr))
        tf = tf_m.data
        w = tf * (k1 + 1) / (tf + k1 * (1 - b + b * length[rows] / max(avg, 1e-9))) * idf[tf_m.indices]
        weights = sp.csr_matrix((w.astype(np.float32), tf_m.indices, tf_m.indptr), shape=tf_m.shape).tocsc()
        terms = np.asarray(sorted(vocab, key=vocab.__getitem__), dtype=np.str_)
        return cls(weights=weights, terms=terms, k1=k1, b=b)

    def query_matrix(self, texts: Sequence[str]) -> sp.csr_matrix:
        """terms×n indicator of each query's distinct words (words outside the glosses drop out)."""
        index = self._index
        rows: list[int] = []
        cols: list[int] = []
        for i, t in enumerate(texts):
            for j in sorted({index[w] for w in _terms(t) if w in index}):
                rows.append(j)
                cols.append(i)
        return sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(self.terms), len(texts))
        )

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """senses×n BM25 scores of every gloss for every query (0 where they share no word)."""
        return np.asarray((self.weights @ self.query_matrix(texts)).toarray(), dtype=np.float32)

    def scores_of(self, rows: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """len(rows)×n BM25 scores of some glosses only (the reverse dictionary's second pass): the
        cost follows those glosses' terms, not how many glosses share a query's common words."""
        q = self.query_matrix(texts)
        return np.asarray((self._by_row[np.asarray(rows)] @ q).toarray(), dtype=np.float32)

    @cached_property
    def _by_row(self) -> sp.csr_matrix:
        return self.weights.tocsr()

    @cached_property
    def _index(self) -> dict[str, int]:
        return {str(t): j for j, t in enumerate(self.terms.tolist())}

    # --- save / load -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """One atomic `.npz` write (no pickles)."""
        buf = io.BytesIO()
        m = self.weights
        np.savez(
            buf,
            format=np.int64(LEXICAL_FORMAT),
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=np.asarray(m.shape, np.int64),
            terms=self.terms,
            params=np.asarray([self.k1, self.b], np.float64),
        )
        write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str], n_senses: int) -> GlossBM25:
        """Read a saved index; refused when it is of another format or another number of senses."""
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != LEXICAL_FORMAT:
                raise IndexMismatch(
                    f"{path} has lexical format {int(z['format'])}, expected {LEXICAL_FORMAT}"
                )
            shape = tuple(int(x) for x in z["shape"])
            if shape[0] != n_senses:
                raise IndexMismatch(f"{path} indexes {shape[0]} glosses, the lexicon has {n_senses}")
            weights = sp.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            k1, b = (float(x) for x in z["params"])
            return cls(weights=weights, terms=np.asarray(z["terms"]), k1=k1, b=b)
