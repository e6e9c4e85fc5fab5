"""FAISS indexes over a run's vectors: build, save next to a manifest, load with checks, search.

Files live in `<run>/index/`: `<kind>.faiss` (the index), `<kind>.ids.npy` (row → DuckDB id: token_id
or sense_id) and `<kind>.json` (the manifest binding both to the run). Kinds: `generated` (covered
rows of token_vectors.npy), `original` (non-special rows of original_vectors.npy), `senses`.
Opening an index refuses one built for another run, of another dimension, whose file no longer has
the recorded sha256, or whose source vectors changed since (a sampled digest of the .npy file).

Ids are kept in a separate array rather than an IndexIDMap so that every factory string (HNSW
included) and the GPU path work the same way. The FAISS calls themselves (numpy in, numpy out, no run
folder) are in `index.faiss_core`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from definitionemb.core.fileio import atomic_file, content_digest, file_sha256, save_npy, write_bytes
from definitionemb.core.records import Record
from definitionemb.embedder.binding import LexiconRef, bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import IndexCorrupt, IndexMismatch, IndexMissing, IndexStageError
from definitionemb.index.faiss_core import (
    build_faiss,
    faiss_metric,
    flat_vectors,
    prepare,
    search_faiss,
    set_search_params,
    to_cpu,
    to_gpu,
)
from definitionemb.index.torch_search import TorchFlatSearch, choose_backend
from definitionemb.index.vocabulary import RunLike, as_run

__all__ = [
    "KINDS",
    "IndexManifest",
    "LoadedIndex",
    "build",
    "build_kind",
    "open_index",
    "index_vectors",
    "source_digest",
]

KINDS = ("generated", "original", "senses")
# Search-time knobs applied to whatever part of the index they fit (ignored elsewhere).
DEFAULT_NPROBE = 32
DEFAULT_EF_SEARCH = 128


@dataclass(frozen=True)
class IndexManifest(Record):
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
    # The search back end the building machine chose (index.torch_search.BACKENDS); a search chooses
    # again where it runs (LoadedIndex.backend). Manifests written before the field say faiss-cpu.
    backend: str = "faiss-cpu"


@dataclass
class LoadedIndex:
    """A checked index ready to search; `ids[label]` is the DuckDB id of FAISS row `label`.

    `backend` is where searches run (`index.torch_search.BACKENDS`); `torch` keeps the vectors on a
    torch device in `exact`, one interface for all three.
    """

    index: faiss.Index
    ids: np.ndarray
    manifest: IndexManifest
    backend: str = "faiss-cpu"
    exact: TorchFlatSearch | None = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each n×k; ids are DuckDB ids (-1 where fewer than k results exist)."""
        q = prepare(queries, self.manifest.metric)
        if self.exact is None:
            return search_faiss(self.index, self.ids, q, k)
        if q.shape[1] != self.index.d:
            raise IndexMismatch(f"queries have dimension {q.shape[1]}, the index {self.index.d}")
        scores, labels = self.exact.search(q, k)
        out = np.where(labels >= 0, self.ids[np.clip(labels, 0, None)], -1).astype(np.int64)
        return out, scores


# --- run-level build / open ----------------------------------------------------------------------


def _index_dir(run: RunDir) -> Path:
    return run.index_dir


_SOURCE = {
    "generated": "token_vectors.npy",
    "original": "original_vectors.npy",
    "senses": "sense_vectors.npy",
}


def source_digest(path: Path) -> str:
    """The content digest of a vectors file: sha256 of every byte (:func:`core.fileio.content_digest`).

    Every byte, because one changed row (a NaN written into the middle of a file) must make an index or a
    recorded choice stale; hashing runs at disk speed and is remembered while the file is unchanged
    (`benchmarks/bench_digest.py`). Copying a run keeps it valid.
    """
    return content_digest(path)


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
    faiss_metric(metric)
    t0 = time.perf_counter()
    vectors, ids = index_vectors(r, kind, all_rows=all_rows, db=db)
    built = build_faiss(prepare(vectors, metric), factory, metric, progress=progress, desc=kind)
    index = to_cpu(built)
    backend = choose_backend(flat_vectors(index) is not None)
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
        backend=backend,
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
    run: RunLike,
    kind: str,
    nprobe: int = DEFAULT_NPROBE,
    ef_search: int = DEFAULT_EF_SEARCH,
    backend: str = "auto",
    device: str | None = None,
) -> LoadedIndex:
    """Load a run's index, refusing it if it belongs to another run, is corrupted or has the wrong shape.

    `backend` (`auto` or one of `index.torch_search.BACKENDS`) says where searches run; `auto` takes
    FAISS's GPU where it loads, else torch on a GPU for flat indexes, else FAISS on the CPU. `device`
    is the torch device of the `torch` back end (default `cuda`; `cpu` runs the same code on the CPU).
    """
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
    set_search_params(index, nprobe, ef_search)
    view = flat_vectors(index)
    chosen = choose_backend(view is not None, backend)
    if chosen == "torch":
        assert view is not None
        exact = TorchFlatSearch(view[0], l2=view[1], device=device or "cuda")
        return LoadedIndex(index, ids, manifest, chosen, exact)
    return LoadedIndex(to_gpu(index) if chosen == "faiss-gpu" else index, ids, manifest, chosen)
