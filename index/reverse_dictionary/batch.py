"""The reverse dictionary in one call: open (building what is missing first), answer, write batches."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import polars as pl
from definitionemb.core.fileio import claim_output, output_file
from definitionemb.core.records import Record
from definitionemb.index.errors import IndexStageError
from definitionemb.index.reverse_dictionary.build import ensure_reverse
from definitionemb.index.reverse_dictionary.dictionary import (
    MAX_ANSWER_ROWS,
    ReverseDictionary,
    check_query,
)
from definitionemb.index.reverse_dictionary.fusion import RERANK
from definitionemb.index.reverse_dictionary.store import DbPath
from definitionemb.index.vocabulary import RunLike, as_run

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["BatchResult", "ReverseQuery", "open_reverse", "reverse_batch", "reverse_words"]


_OPEN: dict[tuple[str, str, str, str], ReverseDictionary] = {}


def open_reverse(
    run: RunLike,
    db: DbPath = None,
    cache_dir: DbPath = None,
    progress: bool = True,
    device: str = "auto",
    scorers: Sequence[str] | None = None,
) -> ReverseDictionary:
    """A :class:`ReverseDictionary` for a run and scorers: the store is built first where it lacks them
    (:func:`ensure_reverse`), then opened; the last one opened is kept while its manifest is unchanged."""
    r = as_run(run)
    key = (str(r.path.resolve()), str(db), str(cache_dir), str(tuple(scorers) if scorers else None))
    man = r.reverse_dir / "manifest.json"
    stamp = str(man.stat().st_mtime_ns) if man.is_file() else ""
    hit = _OPEN.get(key)
    if hit is not None and stamp and getattr(hit, "_stamp", None) == stamp:
        return hit
    ensure_reverse(r, db=db, cache_dir=cache_dir, progress=progress, scorers=scorers)
    rd = ReverseDictionary(r, db, cache_dir, device=device, scorers=scorers)
    rd._stamp = str(man.stat().st_mtime_ns)  # type: ignore[attr-defined]
    _OPEN.clear()
    _OPEN[key] = rd
    return rd


def _check_request(
    texts: Sequence[str], k: int, what: Callable[[int], str], where: str = "the queries"
) -> None:
    """Every query and k checked before anything is built; `what(i)` names query i in the message."""
    for i, t in enumerate(texts):
        check_query(t, what(i))
    if k < 1:
        raise IndexStageError(f"k must be at least 1, got {k}")
    if len(texts) * k > MAX_ANSWER_ROWS:
        raise IndexStageError(
            f"{len(texts):,} queries × k={k:,} would give {len(texts) * k:,} answer rows, more than the "
            f"{MAX_ANSWER_ROWS:,} one request may return; lower -k or split {where}"
        )


class ReverseQuery(TypedDict, total=False):
    """How :func:`reverse_words` and :func:`reverse_batch` answer, beyond the definitions and k: where the
    store is (`db`, `cache_dir`) and :meth:`ReverseDictionary.search`'s settings, with its defaults
    (`rerank` None: :data:`RERANK`)."""

    pos: str | None
    scorers: Sequence[str] | None
    include_query_words: bool
    matrix: str
    rerank: int | None
    db: DbPath
    cache_dir: DbPath


def _answers(
    run: RunLike, texts: str | Sequence[str], k: int, progress: bool, query: ReverseQuery
) -> tuple[pl.DataFrame, float]:
    """(the answers, seconds the search itself took): the run's store opened, built first where it lacks
    the scorers, then searched."""
    search: dict[str, Any] = dict(query)
    db, cache_dir = search.pop("db", None), search.pop("cache_dir", None)
    if search.get("rerank") is None:
        search["rerank"] = RERANK
    rd = open_reverse(run, db, cache_dir, progress=progress, scorers=query.get("scorers"))
    t1 = time.perf_counter()
    frame = rd.search(texts, k=k, progress=progress, **search)
    return frame, time.perf_counter() - t1


def reverse_words(
    run: RunLike,
    text: str | Sequence[str],
    k: int = 10,
    progress: bool = False,
    **query: Unpack[ReverseQuery],
) -> pl.DataFrame:
    """The reverse dictionary over every headword: definition(s) → top-k words (see module docstring).

    Columns: query (0-based), rank (1-based), word, score, pos, gloss, single_token, token_id, sense_id.
    `query`: the part of speech, scorers, matrix, rerank (:class:`ReverseQuery`).
    """
    # Bad input is refused before anything is built.
    texts = [text] if isinstance(text, str) else list(text)
    if not texts:
        raise IndexStageError("reverse needs at least one definition")
    _check_request(texts, k, lambda i: f"query {i}" if len(texts) > 1 else "the query")
    return _answers(run, text, k, progress, query)[0]


@dataclass(frozen=True)
class BatchResult(Record):
    """What :func:`reverse_batch` wrote."""

    input: str
    out: str
    queries: int
    rows: int
    k: int
    seconds: float
    queries_per_s: float


def reverse_batch(
    run: RunLike,
    input_file: str | os.PathLike[str],
    k: int,
    out: str | os.PathLike[str],
    overwrite: bool = False,
    progress: bool = True,
    **query: Unpack[ReverseQuery],
) -> BatchResult:
    """One definition per line of `input_file` → `out` (Parquet, one row per query and rank); `query` as
    :func:`reverse_words` takes it.

    Every line is checked before any work; `out` is written atomically and never overwritten unless
    `overwrite`.
    """
    src, dst = Path(input_file), Path(out)
    claim_output(dst, "file", overwrite, "the reverse-dictionary answers")
    try:
        lines = src.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexStageError(
            f"cannot read {src} as UTF-8 text ({exc}); give one definition per line"
        ) from exc
    if not lines:
        raise IndexStageError(f"{src} is empty; give one definition per line")
    _check_request(lines, k, lambda i: f"line {i + 1} of {src}", str(src))
    t0 = time.perf_counter()
    frame, secs = _answers(run, lines, k, progress, query)
    with output_file(dst, force=overwrite, what="the reverse-dictionary answers") as tmp:
        frame.write_parquet(tmp)
    return BatchResult(
        input=str(src),
        out=str(dst),
        queries=len(lines),
        rows=frame.height,
        k=k,
        seconds=round(time.perf_counter() - t0, 3),
        queries_per_s=round(len(lines) / max(secs, 1e-9), 2),
    )
