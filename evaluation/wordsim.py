"""Word similarity: Spearman correlation between human scores and cosine similarities of token rows.

A pair counts only when both words are single tokens of the model in their word-initial form (`Ġword`
for byte-level BPE, plain `word` for WordPiece): the tokenizer is asked to encode " word" and must
return exactly one non-unknown id. Every matrix is scored on the same covered pairs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.evaluation.errors import DataFormatError, EvaluationError

__all__ = [
    "GoldPairs",
    "Side",
    "WordPairs",
    "WordSimResult",
    "dataset_files",
    "read_pairs",
    "spearman",
    "single_token_ids",
    "word_similarity",
]


@dataclass(frozen=True)
class GoldPairs:
    """A named set of pairs with their gold similarity: `first[i]` and `second[i]` scored `score[i]`."""

    name: str
    first: tuple[str, ...]
    second: tuple[str, ...]
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


class Side:
    """A kind of set's own name for one side of its pairs (`WordPairs.word1` is its `first`)."""

    def __init__(self, side: str) -> None:
        self.side = side

    def __get__(self, pairs: GoldPairs | None, owner: type) -> tuple[str, ...]:
        if pairs is None:
            raise AttributeError(self.side)
        values: tuple[str, ...] = getattr(pairs, self.side)
        return values


class WordPairs(GoldPairs):
    """A word-similarity set: parallel lists of words and gold scores."""

    word1 = Side("first")
    word2 = Side("second")


def dataset_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The set files named by `paths`: a file as given, a folder as its `*.txt` files in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.glob("*.txt") if f.is_file() and not f.name.startswith("."))
            if not found:
                raise DataFormatError(
                    f"the folder {p} holds no .txt word-pair sets (`word1 word2 score` lines)"
                )
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataFormatError(f"no word-pair file or folder at {p}")
    if not out:
        raise DataFormatError("give at least one word-pair set (a file or a folder of .txt files)")
    stems = [f.stem for f in out]
    if len(set(stems)) != len(stems):
        raise DataFormatError(f"two sets share a name ({sorted(stems)}); results are keyed by file name")
    return out


def read_pairs(path: str | os.PathLike[str]) -> WordPairs:
    """Read a `word1 word2 score` file (tabs or spaces; extra columns after the score are ignored)."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"no word-pair file at {p} (expected lines `word1 word2 score`)")
    w1: list[str] = []
    w2: list[str] = []
    sc: list[float] = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start}); expected lines `word1 word2 score`"
        ) from exc
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 3:
            raise DataFormatError(f"{p}:{no}: expected `word1 word2 score`, got {line.strip()!r}")
        try:
            sc.append(float(parts[2]))
        except ValueError as exc:
            raise DataFormatError(f"{p}:{no}: score {parts[2]!r} is not a number") from exc
        w1.append(parts[0])
        w2.append(parts[1])
    if len(sc) < 2:
        raise DataFormatError(f"{p} holds {len(sc)} word pairs; a correlation needs at least 2")
    return WordPairs(p.stem, tuple(w1), tuple(w2), np.asarray(sc, dtype=np.float64))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties (NaN when either side is constant)."""
    from scipy.stats import rankdata

    ra = rankdata(np.asarray(a, dtype=np.float64))
    rb = rankdata(np.asarray(b, dtype=np.float64))
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / den) if den > 0 else float("nan")


def single_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int | None]:
    """The id of each word's word-initial single token, or None where the word needs several pieces."""
    unk = getattr(tokenizer, "unk_token_id", None)
    special = set(getattr(tokenizer, "all_special_ids", []))
    out: list[int | None] = []
    cache: dict[str, int | None] = {}
    for w in words:
        if w not in cache:
            ids = tokenizer.encode(" " + w, add_special_tokens=False)
            ok = len(ids) == 1 and ids[0] != unk and ids[0] not in special
            cache[w] = int(ids[0]) if ok else None
        out.append(cache[w])
    return out


@dataclass(frozen=True)
class WordSimResult:
    """Spearman per matrix on one dataset, over the pairs whose words are single tokens."""

    dataset: str
    pairs: int
    covered_pairs: int
    spearman: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        return self.covered_pairs / self.pairs if self.pairs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "coverage": self.coverage}


def _cosines(m: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    a = np.asarray(m[i], dtype=np.float64)
    b = np.asarray(m[j], dtype=np.float64)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(axis=1), den, out=np.zeros_like(den), where=den > 0)


def word_similarity(pairs: WordPairs, tokenizer: Any, matrices: Mapping[str, np.ndarray]) -> WordSimResult:
    """Score every matrix (`name -> V x d`) on the pairs both of whose words are single tokens."""
    if not matrices:
        raise EvaluationError("word_similarity needs at least one matrix")
    id1 = single_token_ids(tokenizer, pairs.word1)
    id2 = single_token_ids(tokenizer, pairs.word2)
    keep = [k for k, (a, b) in enumerate(zip(id1, id2, strict=True)) if a is not None and b is not None]
    i = np.asarray([id1[k] for k in keep], dtype=np.int64)
    j = np.asarray([id2[k] for k in keep], dtype=np.int64)
    gold = pairs.score[keep]
    result: dict[str, float] = {}
    for name, m in matrices.items():
        if keep and max(int(i.max()), int(j.max())) >= m.shape[0]:
            raise EvaluationError(
                f"matrix {name!r} has {m.shape[0]} rows but the tokenizer produced id "
                f"{max(int(i.max()), int(j.max()))}: the matrix belongs to another vocabulary"
            )
        result[name] = spearman(gold, _cosines(m, i, j)) if len(keep) >= 2 else float("nan")
    return WordSimResult(pairs.name, len(pairs.score), len(keep), result)
