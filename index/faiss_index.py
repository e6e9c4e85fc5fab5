"""FAISS indexes over a run's vectors: build, save next to a manifest, load with checks, search.

Files live in `<run>/index/`: `<kind>.faiss` (the index), `<kind>.ids.npy` (row → DuckDB id: token_id
or sense_id) and `<kind>.json` (the manifest binding both to the run). Kinds: `generated` (covered
rows of token_vectors.npy), `original` (non-special rows of original_vectors.npy), `senses`.
Opening an index refuses one built for another run, of another dimension, whose file no longer has
the recorded sha256, or whose source vectors changed since (a sampled digest of the .npy file).

Ids are kept in a separate array rather than an IndexIDMap so that every factory string (HNSW
included) and the GPU path work the same way.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from embedder.binding import LexiconRef, bound
from embedder.rundir import RunDir
from index.errors import IndexCorrupt, IndexMismatch, IndexMissing, IndexStageError, TooFewVectors
from index.vocabulary import RunLike, as_run
from lexicon.fileio import atomic_file, file_sha256, save_npy, write_bytes

__all__ = [
    "KINDS",
    "METRICS",
    "IndexManifest",
    "LoadedIndex",
    "build_faiss",
    "search_faiss",
    "prepare",
    "build",
    "build_kind",
    "open_index",
    "index_vectors",
    "gpu_available",
    "tune_blas",
    "source_digest",
]

KINDS = ("generated", "original", "senses")
METRICS = ("ip", "cosine", "l2")
# Search-time knobs applied to whatever part of the index they fit (ignored elsewhere).
DEFAULT_NPROBE = 32
DEFAULT_EF_SEARCH = 128
_ADD_CHUNK = 65536
_FLT_MAX = float(np.finfo(np.float32).max)  # what FAISS puts in the score of a missing neighbour


@dataclass(frozen=True)
class IndexManifest:
    """What `<kind>.json` records: enough to refuse an index that does not belong to its run."""

    run_id: str
    kind: str
    factory: str
    metric: str
    dim: int
    ntotal: int
    file: str
    sha256: str
    ids_file: str
    ids_sha256: str
    source_file: str
    source_digest: str
    all_rows: bool
    faiss_version: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedIndex:
    """A checked index ready to search; `ids[label]` is the DuckDB id of FAISS row `label`."""

    index: faiss.Index
    ids: np.ndarray
    manifest: IndexManifest

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each n×k; ids are DuckDB ids (-1 where fewer than k results exist)."""
        return search_faiss(self.index, self.ids, prepare(queries, self.manifest.metric), k)


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


def _faiss_metric(metric: str) -> int:
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


def _to_gpu(index: faiss.Index) -> faiss.Index:
    if not gpu_available():
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except RuntimeError:  # e.g. HNSW has no GPU implementation: stay on the CPU
        return index


def _to_cpu(index: faiss.Index) -> faiss.Index:
    if gpu_available() and hasattr(faiss, "index_gpu_to_cpu"):
        try:
            return faiss.index_gpu_to_cpu(index)
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
        index = faiss.index_factory(d, factory, _faiss_metric(metric))
    except RuntimeError as exc:
        raise IndexStageError(
            f"FAISS cannot build {factory!r} for dimension {d}: {str(exc).splitlines()[-1]}. "
            "Use a factory string such as Flat, HNSW32, IVF1024,Flat or IVF1024,PQ64 (PQ m must divide d)"
        ) from exc
    index = _to_gpu(index)
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
    for start in tqdm(range(0, n, _ADD_CHUNK), desc=desc, unit="chunk", disable=not progress, file=None):
        index.add(x[start : start + _ADD_CHUNK])
    return index


def _set_search_params(index: faiss.Index, nprobe: int, ef_search: int) -> None:
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


# --- run-level build / open ----------------------------------------------------------------------


def _index_dir(run: RunDir) -> Path:
    return run.path / "index"


_SOURCE = {
    "generated": "token_vectors.npy",
    "original": "original_vectors.npy",
    "senses": "sense_vectors.npy",
}


def source_digest(path: Path, samples: int = 64, chunk: int = 1 << 16) -> str:
    """A cheap content digest of a vectors file: its size and 64 evenly spaced 64 KiB slices.

    Regenerated vectors change bytes everywhere, so this tells a stale index from a current one while
    reading ~4 MB instead of hashing gigabytes on every open; copying a run keeps it valid.
    """
    import hashlib

    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        step = max(size // samples, 1)
        for offset in range(0, size, step):
            fh.seek(offset)
            h.update(fh.read(chunk))
    return h.hexdigest()


def index_vectors(
    run: RunDir, kind: str, all_rows: bool = False, db: LexiconRef = None
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, ids) a kind indexes: covered generated rows, non-special original rows, or senses."""
    if kind == "generated":
        tv = run.token_vectors()
        if all_rows:
            ids = np.arange(tv.shape[0], dtype=np.int64)
        else:
            ids = np.flatnonzero(np.asarray(run.covered_mask())).astype(np.int64)
            if ids.size == 0:
                raise IndexStageError(
                    f"run {run.path} has no covered rows to index; generate them first "
                    f"(defemb embed generate --run {run.path})"
                )
        return np.asarray(tv[ids]), ids
    if kind == "original":
        ov = run.original_vectors()
        run._check_shape("original_vectors.npy", ov)
        keep = np.ones(ov.shape[0], dtype=bool)
        with bound(run, db) as lex:
            sp = lex.special_ids()
        keep[sp[(sp >= 0) & (sp < keep.size)]] = False
        ids = np.flatnonzero(keep).astype(np.int64)
        return np.asarray(ov[ids]), ids
    if kind == "senses":
        sv = run.sense_vectors()
        return np.asarray(sv), np.asarray(run.sense_ids(), dtype=np.int64)
    raise IndexStageError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")


def build_kind(
    run: RunLike,
    kind: str,
    factory: str = "Flat",
    metric: str = "cosine",
    all_rows: bool = False,
    db: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> IndexManifest:
    """Build one index kind of a run and save it atomically with its manifest."""
    r = as_run(run)
    _faiss_metric(metric)
    t0 = time.perf_counter()
    vectors, ids = index_vectors(r, kind, all_rows=all_rows, db=db)
    index = _to_cpu(build_faiss(prepare(vectors, metric), factory, metric, progress=progress, desc=kind))
    out = _index_dir(r)
    faiss_path, ids_path, man_path = out / f"{kind}.faiss", out / f"{kind}.ids.npy", out / f"{kind}.json"
    # The manifest goes last: a crash in between leaves a manifest whose sha256 refuses the new file.
    with atomic_file(faiss_path) as tmp:
        faiss.write_index(index, str(tmp))
    save_npy(ids_path, ids)
    manifest = IndexManifest(
        run_id=r.run_id,
        kind=kind,
        factory=factory,
        metric=metric,
        dim=int(index.d),
        ntotal=int(index.ntotal),
        file=faiss_path.name,
        sha256=file_sha256(faiss_path),
        ids_file=ids_path.name,
        ids_sha256=file_sha256(ids_path),
        source_file=_SOURCE[kind],
        source_digest=source_digest(r.path / _SOURCE[kind]),
        all_rows=all_rows,
        faiss_version=faiss.__version__,
        seconds=round(time.perf_counter() - t0, 3),
    )
    write_bytes(man_path, json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode())
    return manifest


def build(
    run: RunLike,
    kind: str = "tokens",
    factory: str = "Flat",
    metric: str = "cosine",
    all_rows: bool = False,
    db: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[IndexManifest]:
    """Build a run's indexes: `tokens` = generated + original side by side, or `senses`, or one kind."""
    kinds = ("generated", "original") if kind == "tokens" else (kind,)
    return [build_kind(run, k, factory, metric, all_rows, db, progress) for k in kinds]


def open_index(
    run: RunLike, kind: str, nprobe: int = DEFAULT_NPROBE, ef_search: int = DEFAULT_EF_SEARCH
) -> LoadedIndex:
    """Load a run's index, refusing it if it belongs to another run, is corrupted or has the wrong shape."""
    r = as_run(run)
    if kind not in KINDS:
        raise IndexStageError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    d = _index_dir(r)
    man_path = d / f"{kind}.json"
    rebuild = f"defemb index build --run {r.path} --kind {'senses' if kind == 'senses' else 'tokens'}"
    if not man_path.is_file():
        raise IndexMissing(f"run {r.path} has no {kind} index; build it with: {rebuild}")
    try:
        raw = json.loads(man_path.read_text(encoding="utf-8"))
        manifest = IndexManifest(**raw)
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise IndexCorrupt(
            f"{man_path} is not a readable index manifest ({exc}); rebuild with: {rebuild}"
        ) from exc
    if manifest.run_id != r.run_id:
        raise IndexMismatch(
            f"{d / manifest.file} was built for run {manifest.run_id!r}, not {r.run_id!r} "
            f"(copied from another run?); rebuild with: {rebuild}"
        )
    want_dim = r.manifest().get("dim")
    if want_dim is not None and int(want_dim) != manifest.dim:
        raise IndexMismatch(
            f"{d / manifest.file} has dimension {manifest.dim}, run {r.run_id} has dim={want_dim}; "
            f"rebuild with: {rebuild}"
        )
    source = r.path / manifest.source_file
    if source.is_file() and source_digest(source) != manifest.source_digest:
        raise IndexMismatch(
            f"{d / manifest.file} is stale: {source.name} changed after the index was built "
            f"(vectors regenerated?); rebuild with: {rebuild}"
        )
    faiss_path, ids_path = d / manifest.file, d / manifest.ids_file
    for path, want in ((faiss_path, manifest.sha256), (ids_path, manifest.ids_sha256)):
        if not path.is_file():
            raise IndexMissing(f"{path} is missing; rebuild with: {rebuild}")
        got = file_sha256(path)
        if got != want:
            raise IndexCorrupt(
                f"{path} is corrupted or was changed after it was built (sha256 {got[:12]}…, the "
                f"manifest says {want[:12]}…); rebuild with: {rebuild}"
            )
    try:
        index = faiss.read_index(str(faiss_path))
    except RuntimeError as exc:
        raise IndexCorrupt(f"{faiss_path} cannot be read by FAISS ({exc}); rebuild with: {rebuild}") from exc
    ids = np.load(ids_path, allow_pickle=False)
    if index.d != manifest.dim or index.ntotal != manifest.ntotal or ids.shape != (manifest.ntotal,):
        raise IndexMismatch(
            f"{faiss_path} holds {index.ntotal}×{index.d} with {ids.shape[0]} ids, the manifest says "
            f"{manifest.ntotal}×{manifest.dim}; rebuild with: {rebuild}"
        )
    _set_search_params(index, nprobe, ef_search)
    return LoadedIndex(_to_gpu(index), ids, manifest)
