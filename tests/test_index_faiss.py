"""FAISS indexes over fabricated runs: exact = brute force, id mapping, training limits, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import (
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    IndexStageError,
    TooFewVectors,
)
from definitionemb.index.faiss_index import build, build_kind, open_index
from index_support import make_lexicon, make_run, random_covered, roberta_pieces

V, D = 3000, 24


@pytest.fixture()
def lexicon_db(tmp_path: Path) -> Path:
    db = tmp_path / "lex.duckdb"
    make_lexicon(db, roberta_pieces(V))
    return db


def _run(tmp_path: Path, db: Path | None, run_id: str = "run-a", d: int = D, seed: int = 0):
    rng = np.random.default_rng(seed)
    original = rng.standard_normal((V, d)).astype(np.float32)
    covered = random_covered(rng, V, 0.4)
    return make_run(tmp_path / run_id, original, covered, run_id=run_id, db=db, seed=seed)


def _brute(base: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, metric: str):
    b, x = base.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    if metric == "l2":
        s = ((x[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        order = np.argsort(s, axis=1, kind="stable")[:, :k]
    else:
        s = x @ b.T
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(s, order, axis=1)


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_flat_equals_brute_force_with_duckdb_ids(tmp_path: Path, lexicon_db: Path, metric: str) -> None:
    run = _run(tmp_path, lexicon_db)
    (gen, orig) = build(run, "tokens", "Flat", metric, progress=False)
    covered = np.flatnonzero(np.asarray(run.covered_mask()))
    assert gen.ntotal == covered.size and orig.ntotal == V - 4  # ids 0..3 special; 50264 is beyond V
    q = np.random.default_rng(7).standard_normal((25, D)).astype(np.float32)
    for kind, base, ids in (
        ("generated", np.asarray(run.token_vectors())[covered], covered),
        ("original", np.asarray(run.original_vectors())[4:], np.arange(4, V)),
    ):
        got_ids, got_scores = open_index(run, kind).search(q, 10)
        want_ids, want_scores = _brute(base, ids, q, 10, metric)
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-4, atol=1e-3)


def test_generated_all_rows_option_and_sense_ids(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    (m,) = build(run, "generated", all_rows=True, progress=False)
    assert m.ntotal == V and m.all_rows
    (s,) = build(run, "senses", metric="ip", progress=False)
    sv, sid = np.asarray(run.sense_vectors()), np.asarray(run.sense_ids())
    ids, scores = open_index(run, "senses").search(sv[[2]], 1)
    assert ids[0, 0] == sid[2] and s.ntotal == sid.size
    np.testing.assert_allclose(scores[0, 0], float(sv[2] @ sv[2]), rtol=1e-5)


def test_approximate_indexes_build_and_find_themselves(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    for factory in ("HNSW32", "IVF16,Flat", "IVF16,PQ8x4"):
        (m,) = build(run, "original", factory, "l2", progress=False)
        assert m.factory == factory
        x = np.asarray(run.original_vectors())[100:150]
        ids, _ = open_index(run, "original").search(x, 5)
        assert (ids[:, :5] == np.arange(100, 150)[:, None]).any(axis=1).mean() > 0.9


def test_ivf_with_more_lists_than_vectors_is_refused(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    with pytest.raises(TooFewVectors, match="nlist=4096"):
        build_kind(run, "generated", "IVF4096,Flat", progress=False)
    with pytest.raises(IndexStageError, match="factory string"):
        build_kind(run, "generated", "NoSuchIndex42", progress=False)
    with pytest.raises(IndexStageError, match="metric"):
        build_kind(run, "generated", "Flat", metric="manhattan", progress=False)


def test_corrupted_index_is_refused(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    build(run, "tokens", progress=False)
    f = run.path / "index" / "generated.faiss"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="corrupted.*defemb index build"):
        open_index(run, "generated")
    f.write_bytes(bytes(data[:100]))  # truncated
    with pytest.raises(IndexCorrupt):
        open_index(run, "generated")
    (run.path / "index" / "original.json").write_text("{not json")
    with pytest.raises(IndexCorrupt, match="manifest"):
        open_index(run, "original")


def test_index_of_another_run_is_refused(tmp_path: Path, lexicon_db: Path) -> None:
    a = _run(tmp_path, lexicon_db, "run-a")
    b = _run(tmp_path, lexicon_db, "run-b", seed=1)
    build(a, "tokens", progress=False)
    shutil.copytree(a.path / "index", b.path / "index")
    with pytest.raises(IndexMismatch, match="run-a"):
        open_index(b, "generated")


def test_dimension_mismatch_is_refused(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    build(run, "tokens", progress=False)
    # The run is regenerated with another hidden size; its old index must not be used.
    rng = np.random.default_rng(3)
    run.save_array("original_vectors.npy", rng.standard_normal((V, 8)).astype(np.float32))
    run.save_array("token_vectors.npy", rng.standard_normal((V, 8)).astype(np.float32))
    run.update_manifest(dim=8)
    with pytest.raises(IndexMismatch, match="dimension 24.*dim=8"):
        open_index(run, "original")
    build(run, "generated", progress=False)
    manifest = json.loads((run.path / "index" / "generated.json").read_text())
    manifest["ntotal"] += 1  # a manifest that does not describe its file
    (run.path / "index" / "generated.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="holds"):
        open_index(run, "generated")


def test_stale_index_is_refused_after_vectors_change(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    build(run, "tokens", progress=False)
    regenerated = np.asarray(run.token_vectors()) * 1.5
    run.save_array("token_vectors.npy", regenerated)
    with pytest.raises(IndexMismatch, match="stale: token_vectors.npy changed"):
        open_index(run, "generated")
    assert open_index(run, "original").manifest.source_file == "original_vectors.npy"
    shutil.copytree(run.path, tmp_path / "copy")  # a copied run keeps its indexes valid
    build(run, "generated", progress=False)
    assert open_index(RunDir.open(tmp_path / "copy"), "original").manifest.run_id == "run-a"
    assert open_index(run, "generated").manifest.ntotal > 0


def test_missing_index_names_the_command(tmp_path: Path, lexicon_db: Path) -> None:
    run = _run(tmp_path, lexicon_db)
    with pytest.raises(IndexMissing, match="defemb index build --run .* --kind senses"):
        open_index(run, "senses")


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_more_neighbours_than_rows_pad_like_faiss(metric: str) -> None:
    from definitionemb.index.faiss_core import build_faiss, prepare, search_faiss

    x = np.random.default_rng(5).standard_normal((7, 8)).astype(np.float32)
    index = build_faiss(prepare(x, metric), "Flat", metric)
    ids = np.arange(100, 107)
    for nq in (3, 30):  # FAISS's own kernel below 20 queries, the blocked BLAS path above
        q = prepare(np.random.default_rng(nq).standard_normal((nq, 8)), metric)
        got_ids, got_scores = search_faiss(index, ids, q, 10)
        want_scores, labels = index.search(q, 10)
        np.testing.assert_array_equal(got_ids, np.where(labels >= 0, ids[np.clip(labels, 0, None)], -1))
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-4)
        assert (got_ids[:, 7:] == -1).all()
