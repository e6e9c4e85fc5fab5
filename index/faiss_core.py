"""FAISS on numpy arrays: build an index from a factory string, search it exactly or approximately.

Nothing here knows about run folders, manifests or the lexicon (that is `index.faiss_index`); like
faiss's own `contrib/`, these functions take and return numpy arrays and FAISS indexes only.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
from definitionemb.core.progress import bar_disable
from definitionemb.index.errors import IndexMismatch, IndexStageError, TooFewVectors
from tqdm import tqdm

__all__ = [
    "METRICS",
    "build_faiss",
    "faiss_metric",
    "flat_vectors",
    "gpu_available",
    "prepare",
    "search_faiss",
    "set_search_params",
    "to_cpu",
    "to_gpu",
    "tune_blas",
]

METRICS = ("ip", "cosine", "l2")
_ADD_CHUNK = 65536
_FLT_MAX = float(np.finfo(np.float32).max)  # what FAISS puts in the score of a missing neighbour


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0


def tune_blas() -> None:
    """Let exact searches of more than a handful of queries go through BLAS in large database blocks.

    faiss-cpu 1.15 ships with a BLAS threshold of 128,000 queries and 1,024-row database blocks, which
    made a 100-query Flat search of 200k×768 rows ~3× slower than a numpy matrix product here.
    """
    faiss.cvar.distance_compute_blas_threshold = 20
    faiss.cvar.distance_compute_blas_database_bs = 16384


def faiss_metric(metric: str) -> int:
    if metric not in METRICS:
        raise IndexStageError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Float32, C-contiguous, L2-normalised for `cosine` (a copy; the input is never modified)."""
    x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise IndexStageError(f"expected a 2-D array of vectors, got shape {x.shape}")
    if metric == "cosine":
        faiss.normalize_L2(x)
    return x


def to_gpu(index: faiss.Index) -> faiss.Index:
    if not gpu_available():
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except RuntimeError:  # e.g. HNSW has no GPU implementation: stay on the CPU
        return index


def to_cpu(index: faiss.Index) -> faiss.Index:
    if gpu_available() and hasattr(faiss, "index_gputo_cpu"):
        try:
            return faiss.index_gputo_cpu(index)
        except (RuntimeError, AttributeError):  # already a CPU index
            return index
    return index


def _min_training(index: faiss.Index) -> int:
    ivf = faiss.try_extract_index_ivf(index)
    return int(ivf.nlist) if ivf is not None else 1


def build_faiss(
    x: np.ndarray, factory: str, metric: str, progress: bool = False, desc: str = "index"
) -> faiss.Index:
    """Build (train if needed, add) a FAISS index over prepared vectors `x` (see :func:`prepare`)."""
    n, d = x.shape
    try:
        index = faiss.index_factory(d, factory, faiss_metric(metric))
    except RuntimeError as exc:
        raise IndexStageError(
            f"FAISS cannot build {factory!r} for dimension {d}: {str(exc).splitlines()[-1]}. "
            "Use a factory string such as Flat, HNSW32, IVF1024,Flat or IVF1024,PQ64 (PQ m must divide d)"
        ) from exc
    index = to_gpu(index)
    tune_blas()  # IVF training and adding assign many vectors to centroids: an exact search
    if not index.is_trained:
        need = _min_training(index)
        if n < need:
            raise TooFewVectors(
                f"{factory!r} needs at least {need} training vectors (IVF nlist={need}) but only {n} "
                f"are indexed; use a smaller nlist, e.g. IVF{max(1, int(np.sqrt(n)))} , or Flat"
            )
        try:
            index.train(x)
        except RuntimeError as exc:
            raise TooFewVectors(
                f"training {factory!r} on {n} vectors failed: {str(exc).splitlines()[-1]}. "
                "Use fewer clusters / PQ centroids, or Flat"
            ) from exc
    for start in tqdm(
        range(0, n, _ADD_CHUNK), desc=desc, unit="chunk", disable=bar_disable(progress), file=None
    ):
        index.add(x[start : start + _ADD_CHUNK])
    return index


def set_search_params(index: faiss.Index, nprobe: int, ef_search: int) -> None:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(nprobe, ivf.nlist)
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = ef_search


def _flat_view(index: faiss.Index) -> tuple[np.ndarray, bool] | None:
    """(stored vectors as a numpy view, is_l2) of a CPU flat index, else None."""
    flat: Any = faiss.downcast_index(index)
    if type(flat) not in (faiss.IndexFlat, faiss.IndexFlatIP, faiss.IndexFlatL2) or flat.ntotal == 0:
        return None
    if flat.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
        return None
    xb = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    return xb, flat.metric_type == faiss.METRIC_L2


def flat_vectors(index: faiss.Index) -> tuple[np.ndarray, bool] | None:
    """(stored vectors, is_l2) of a CPU flat index (a view, not a copy), else None: what the torch
    back end searches."""
    return _flat_view(index)


def _flat_search_blocked(xb: np.ndarray, is_l2: bool, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over xb by one BLAS product per row block and argpartition: the same neighbours and
    scores as FAISS's flat kernels, measured ~1.7× faster here for batches (benchmarks/bench_index.py)."""
    n, nq = xb.shape[0], q.shape[0]
    k_eff = min(k, n)
    block = max(4096, (1 << 24) // max(nq, 1))
    best_s = np.empty((nq, 0), dtype=np.float32)
    best_i = np.empty((nq, 0), dtype=np.int64)
    q_norm = (q * q).sum(axis=1, keepdims=True) if is_l2 else None
    for start in range(0, n, block):
        chunk = xb[start : start + block]
        s = q @ chunk.T
        if is_l2:
            # Squared L2 distance, as FAISS reports it; negated below so "larger is nearer" throughout.
            s = q_norm - 2.0 * s + (chunk * chunk).sum(axis=1)[None, :]
            np.maximum(s, 0.0, out=s)
            s = -s
        kk = min(k_eff, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        if best_s.shape[1] > k_eff:
            keep = np.argpartition(-best_s, k_eff - 1, axis=1)[:, :k_eff]
            best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    if is_l2:
        best_s = -best_s
    if k_eff < k:
        pad = k - k_eff
        best_s = np.pad(best_s, ((0, 0), (0, pad)), constant_values=_FLT_MAX if is_l2 else -_FLT_MAX)
        best_i = np.pad(best_i, ((0, 0), (0, pad)), constant_values=-1)
    return best_s.astype(np.float32, copy=False), best_i


def search_faiss(
    index: faiss.Index, ids: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Search prepared `queries`; map FAISS labels through `ids` (labels < 0 stay -1).

    Batches of 20+ queries against a CPU flat index are answered by :func:`_flat_search_blocked` on the
    index's own storage (exact, same result); everything else by FAISS itself.
    """
    if k < 1:
        raise IndexStageError(f"k must be at least 1, got {k}")
    if queries.shape[1] != index.d:
        raise IndexMismatch(f"queries have dimension {queries.shape[1]}, the index {index.d}")
    view = _flat_view(index) if queries.shape[0] >= 20 else None
    if view is not None:
        scores, labels = _flat_search_blocked(view[0], view[1], queries, k)
    else:
        tune_blas()
        scores, labels = index.search(queries, k)
    out = np.where(labels >= 0, ids[np.clip(labels, 0, None)], -1).astype(np.int64)
    return out, scores
