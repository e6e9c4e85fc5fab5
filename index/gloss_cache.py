"""Sentence embeddings of a lexicon's glosses and headwords, built once per (lexicon, base model) pair.

They depend only on the lexicon's content and the base model's weights, not on any run, so they live in
a cache shared by every run of that pair::

    <cache>/sentence/<lexicon fingerprint>-<model sha256[:16]>-<table digest[:12]>/<kind>/
        vectors.npy      n×d float32, L2-normalised, in key order
        manifest.json    what was encoded, with which model and pooling, digests, timing

`kind` is `glosses` (one row per sense, sense_id order, as :func:`index.headwords.load_headwords` lists
them) or `headwords` (one row per word, sorted). The cache root is `cache_dir`, else `$DEFEMB_CACHE`,
else `$XDG_CACHE_HOME/definitionemb`, else `~/.cache/definitionemb`. A build writes chunks into a
`.partial` folder (an interrupted build resumes where it stopped) and moves the finished folder into
place in one `os.replace`; opening refuses a folder whose vectors no longer match the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from definitionemb.core.fileio import save_npy, write_bytes
from definitionemb.core.progress import bar_disable
from definitionemb.core.records import Record
from definitionemb.index.errors import IndexCorrupt, IndexMismatch, IndexMissing, IndexStageError
from definitionemb.index.faiss_index import source_digest
from definitionemb.index.sentence import SentenceEncoder, sentence_spec

__all__ = ["KINDS", "CacheManifest", "SentenceVectors", "cache_root", "cache_dir_for", "sentence_vectors"]

KINDS = ("glosses", "headwords")
CACHE_FORMAT = 1
_CHUNK = 8192


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where shared caches live (see the module docstring)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("DEFEMB_CACHE"):
        return Path(os.environ["DEFEMB_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "definitionemb"


def cache_dir_for(
    lexicon_fingerprint: str,
    model_sha256: str,
    keys_sha256: str,
    kind: str,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The folder of one (lexicon, model, kind) cache entry.

    The word/sense table's digest is part of the name too: a lexicon cut down to some words keeps its
    sources' fingerprint but needs its own rows.
    """
    if kind not in KINDS:
        raise IndexStageError(f"unknown sentence cache kind {kind!r}; choose one of {', '.join(KINDS)}")
    name = f"{lexicon_fingerprint}-{model_sha256[:16]}-{keys_sha256[:12]}"
    return cache_root(cache_dir) / "sentence" / name / kind


@dataclass(frozen=True)
class CacheManifest(Record):
    """What a cache entry's manifest.json records."""

    format: int
    kind: str
    lexicon_fingerprint: str
    model: str
    model_sha256: str
    keys_sha256: str  # Headwords.digest() of the table the rows follow
    pooling: str
    normalize: bool
    max_length: int
    n: int
    dim: int
    vectors_digest: str
    seconds: float
    texts_per_s: float


@dataclass(frozen=True)
class SentenceVectors:
    """An opened cache entry: `vectors` (memory-mapped, n×d) and its manifest."""

    path: Path
    vectors: np.ndarray
    manifest: CacheManifest


def _open(folder: Path, keys_sha256: str) -> SentenceVectors:
    man_path, vec_path = folder / "manifest.json", folder / "vectors.npy"
    try:
        man = CacheManifest(**json.loads(man_path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise IndexCorrupt(
            f"{man_path} is not a readable cache manifest ({exc}); delete {folder} to rebuild it"
        ) from exc
    if man.format != CACHE_FORMAT:
        raise IndexMismatch(
            f"{folder} has cache format {man.format}, this definitionemb reads {CACHE_FORMAT}"
        )
    if man.keys_sha256 != keys_sha256:
        raise IndexMismatch(
            f"{folder} was built for another word/sense table than the lexicon now has; delete it to rebuild"
        )
    if not vec_path.is_file():
        raise IndexMissing(f"{vec_path} is missing; delete {folder} to rebuild it")
    if source_digest(vec_path) != man.vectors_digest:
        raise IndexCorrupt(f"{vec_path} changed after it was built; delete {folder} to rebuild it")
    vectors = np.load(vec_path, mmap_mode="r", allow_pickle=False)
    if vectors.shape != (man.n, man.dim):
        raise IndexCorrupt(f"{vec_path} is {vectors.shape}, its manifest says {(man.n, man.dim)}")
    return SentenceVectors(folder, vectors, man)


def sentence_vectors(
    texts: Sequence[str] | np.ndarray,
    kind: str,
    lexicon_fingerprint: str,
    model_dir: str | os.PathLike[str],
    model_sha256: str,
    keys_sha256: str,
    cache_dir: str | os.PathLike[str] | None = None,
    build: bool = True,
    progress: bool = True,
    device: str = "cpu",
    max_length: int | None = 128,
) -> SentenceVectors:
    """Open the cached sentence embeddings of `texts` (glosses or headwords), building them if absent.

    `keys_sha256` identifies the row order (`Headwords.digest()`): a cache made for another table is
    refused. `max_length` caps tokens per text (None: the model's own limit, 256 for MiniLM); glosses
    longer than 128 pieces are rare and their tails add little.
    """
    folder = cache_dir_for(lexicon_fingerprint, model_sha256, keys_sha256, kind, cache_dir)
    if (folder / "manifest.json").is_file():
        return _open(folder, keys_sha256)
    if not build:
        raise IndexMissing(f"no {kind} sentence embeddings in {folder}; they are built on first use")
    spec = sentence_spec(model_dir)
    if spec is None:
        raise IndexStageError(
            f"{model_dir} is not a sentence encoder, so it has no {kind} sentence embeddings"
        )
    enc = SentenceEncoder(model_dir, device=device, max_length=max_length)
    n = len(texts)
    partial = folder.parent / f".{kind}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    stamp = {"keys_sha256": keys_sha256, "model_sha256": model_sha256, "max_length": enc.max_length, "n": n}
    stamp_path = partial / "stamp.json"
    if not stamp_path.is_file() or json.loads(stamp_path.read_text()) != stamp:
        shutil.rmtree(partial)  # another table or setting: start over
        partial.mkdir(parents=True)
        write_bytes(stamp_path, json.dumps(stamp).encode())
    vec_path = partial / "vectors.npy"
    done_path = partial / "done.npy"
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    if vec_path.is_file() and done_path.is_file():
        mm = np.lib.format.open_memmap(vec_path, mode="r+")
        done = np.load(done_path)
    else:
        mm = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float32, shape=(n, enc.dim))
        done = np.zeros(n_chunks, dtype=bool)
    from tqdm import tqdm

    t0 = time.perf_counter()
    encoded = 0
    bar = tqdm(
        total=n,
        initial=int(done.sum()) * _CHUNK if n else 0,
        desc=f"{kind} embeddings",
        unit="text",
        file=sys.stderr,
        disable=bar_disable(progress),
    )
    try:
        for c in range(n_chunks):
            if done[c]:
                continue
            lo, hi = c * _CHUNK, min(n, (c + 1) * _CHUNK)
            enc.encode([str(t) for t in texts[lo:hi]], out=mm[lo:hi])
            mm.flush()
            done[c] = True
            save_npy(done_path, done)
            encoded += hi - lo
            bar.update(hi - lo)
    finally:
        bar.close()
    secs = time.perf_counter() - t0
    del mm
    man = CacheManifest(
        format=CACHE_FORMAT,
        kind=kind,
        lexicon_fingerprint=lexicon_fingerprint,
        model=str(model_dir),
        model_sha256=model_sha256,
        keys_sha256=keys_sha256,
        pooling=spec.pooling,
        normalize=spec.normalize,
        max_length=enc.max_length,
        n=n,
        dim=enc.dim,
        vectors_digest=source_digest(vec_path),
        seconds=round(secs, 3),
        texts_per_s=round(encoded / max(secs, 1e-9), 1),
    )
    write_bytes(partial / "manifest.json", json.dumps(man.to_dict(), indent=2).encode())
    stamp_path.unlink()
    done_path.unlink()
    try:
        os.replace(partial, folder)
    except OSError:  # another process finished the same entry first: keep theirs
        if not (folder / "manifest.json").is_file():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return _open(folder, keys_sha256)
