"""Neighbours of a whole vocabulary written back to the lexicon as the `neighbor` table, so SQL can join
a run's neighbours with definitions and frequency buckets."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from definitionemb.core.progress import bar_disable
from definitionemb.core.records import Record
from definitionemb.embedder.binding import LexiconRef, bound
from definitionemb.index.errors import IndexStageError
from definitionemb.index.faiss_index import LoadedIndex, open_index
from definitionemb.index.query import clamp_k, search_without_self
from definitionemb.index.vocabulary import RunLike, as_run
from definitionemb.lexicon.db import writing
from tqdm import tqdm

__all__ = ["NeighborTableResult", "neighbor_arrays", "neighbor_frame", "neighbors_table"]


@dataclass(frozen=True)
class NeighborTableResult(Record):
    """What `neighbors_table` wrote: rows per matrix, into which database, for which run."""

    run_id: str
    db: str
    k: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


_BATCH = 2048  # tokens searched at a time: one progress step, bounded memory


def neighbor_arrays(
    index: LoadedIndex, source: np.ndarray, k: int, progress: bool = False, desc: str = "neighbours"
) -> tuple[np.ndarray, np.ndarray]:
    """k neighbours (self excluded) of every token the index holds: (ids, scores), n×k, rows in the
    order of `index.ids`, each token queried with its row of `source` (vocab × d).

    The batched form of what :func:`index.neighbors` asks one token at a time (the same
    :func:`search_without_self`); `defemb serve` keeps these arrays to answer word pages without a search.
    """
    ids = index.ids
    out_n, out_s = [], []
    for start in tqdm(range(0, ids.size, _BATCH), desc=desc, disable=bar_disable(progress)):
        batch = ids[start : start + _BATCH]
        n, s = search_without_self(index, np.asarray(source[batch]), batch, k)
        out_n.append(n)
        out_s.append(s)
    nid = np.concatenate(out_n) if out_n else np.zeros((0, k), dtype=np.int64)
    score = np.concatenate(out_s) if out_s else np.zeros((0, k), dtype=np.float32)
    return nid, score


def neighbor_frame(run: RunLike, matrix: str, k: int = 10, progress: bool = True) -> pl.DataFrame:
    """k neighbours (self excluded) of every token in a matrix's index, as `neighbor` table rows."""
    r = as_run(run)
    index = open_index(r, matrix)
    k = clamp_k(k, index.manifest.ntotal - 1, f"the {matrix} index (less the token itself)")
    source = r.token_vectors() if matrix == "generated" else r.original_vectors()
    ids = index.ids
    nid, score = neighbor_arrays(index, source, k, progress, f"neighbours ({matrix})")
    found = nid.reshape(-1) >= 0
    return pl.DataFrame(
        {
            "run_id": [r.run_id] * int(found.sum()),
            "matrix": [matrix] * int(found.sum()),
            "token_id": np.repeat(ids, k)[found].astype(np.int32),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), ids.size)[found],
            "neighbor_id": nid.reshape(-1)[found].astype(np.int32),
            "score": score.reshape(-1)[found].astype(np.float32),
        }
    )


def neighbors_table(
    run: RunLike,
    db: LexiconRef = None,
    k: int = 10,
    matrices: Sequence[str] = ("generated", "original"),
    progress: bool = True,
) -> NeighborTableResult:
    """Write the neighbours of every indexed token into the lexicon's `neighbor` table.

    Rows of this run for the same matrices are replaced in one atomic rewrite (lexicon.db.writing), so
    readers see either the old or the new neighbours, never a mix.
    """
    r = as_run(run)
    bad = [m for m in matrices if m not in ("generated", "original")]
    if bad or not matrices:
        raise IndexStageError(f"matrices must be among 'generated', 'original', got {list(matrices)}")
    t0 = time.perf_counter()
    with bound(r, db) as lex:
        path = lex.check()  # refuse another run's lexicon before the expensive search
    frames = {m: neighbor_frame(r, m, k, progress) for m in matrices}
    with writing(Path(path)) as con:
        con.execute(
            f"DELETE FROM neighbor WHERE run_id = ? AND matrix IN ({', '.join('?' for _ in matrices)})",
            [r.run_id, *matrices],
        )
        for frame in frames.values():
            con.register("nb", frame.to_arrow())
            con.execute(
                "INSERT INTO neighbor (run_id, matrix, token_id, rank, neighbor_id, score) "
                "SELECT run_id, matrix, token_id, rank, neighbor_id, score FROM nb"
            )
            con.unregister("nb")
    return NeighborTableResult(
        run_id=r.run_id,
        db=str(path),
        k=k,
        rows={m: f.height for m, f in frames.items()},
        seconds=round(time.perf_counter() - t0, 3),
    )
