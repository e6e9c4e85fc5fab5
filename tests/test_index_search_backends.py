"""The three search back ends behind one interface: torch exact search (run on the CPU here) equals
FAISS's flat search on tie-free data, the automatic choice, and the manifest's record of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from definitionemb.index import faiss_core, torch_search
from definitionemb.index.errors import IndexStageError
from definitionemb.index.faiss_core import build_faiss, prepare, search_faiss
from definitionemb.index.faiss_index import build, open_index
from definitionemb.index.torch_search import TorchFlatSearch, choose_backend
from index_support import random_run

V, D = 3000, 24


def _data(n: int, d: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((nq, d)).astype(np.float32)


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("nq", [3, 50])  # FAISS's own kernel below 20 queries, the blocked product above
def test_torch_exact_search_equals_faiss_flat(metric: str, precision: str, nq: int) -> None:
    xb, q = _data(5000, 48, nq)
    xb, q = prepare(xb, metric), prepare(q, metric)
    index = build_faiss(xb, "Flat", metric)
    ids = np.arange(xb.shape[0], dtype=np.int64)
    want_i, want_s = search_faiss(index, ids, q, 10)
    # small blocks: the merge across blocks is exercised too
    exact = TorchFlatSearch(xb, l2=metric == "l2", device="cpu", precision=precision, block_rows=700)
    got_s, got_i = exact.search(q, 10)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_more_neighbours_than_rows_pad_like_faiss(metric: str) -> None:
    xb, q = _data(7, 8, 4)
    index = build_faiss(xb, "Flat", metric)
    want_i, want_s = search_faiss(index, np.arange(7, dtype=np.int64), q, 10)
    got_s, got_i = TorchFlatSearch(xb, l2=metric == "l2", device="cpu", precision="bfloat16").search(q, 10)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-4)


def test_choice_follows_what_the_machine_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_core, "gpu_available", lambda: False)
    monkeypatch.setattr(torch_search, "torch_gpu_available", lambda: False)
    assert choose_backend(flat=True) == "faiss-cpu"
    monkeypatch.setattr(torch_search, "torch_gpu_available", lambda: True)  # CUDA 13: no faiss-gpu
    assert choose_backend(flat=True) == "torch"
    assert choose_backend(flat=False) == "faiss-cpu"  # HNSW/IVF have no torch path
    monkeypatch.setattr(faiss_core, "gpu_available", lambda: True)
    assert choose_backend(flat=True) == "faiss-gpu" and choose_backend(flat=False) == "faiss-gpu"
    with pytest.raises(IndexStageError, match="flat"):
        choose_backend(flat=False, prefer="torch")
    with pytest.raises(IndexStageError, match="backend"):
        choose_backend(flat=True, prefer="cuda")


def test_run_index_searches_the_same_through_every_back_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    run = random_run(tmp_path, V, D, rng, 0.5, "r", run_id="r")
    (manifest,) = build(run, kind="generated", progress=False)
    assert manifest.backend == "faiss-cpu"  # no GPU on this machine: the choice is recorded
    assert json.loads((run.path / "index" / "generated.json").read_text())["backend"] == "faiss-cpu"
    queries = rng.standard_normal((40, D)).astype(np.float32)
    cpu = open_index(run, "generated")
    assert cpu.backend == "faiss-cpu"
    exact = open_index(run, "generated", backend="torch", device="cpu")
    assert exact.backend == "torch"
    for q in (queries, queries[:5]):
        want_ids, want_s = cpu.search(q, 8)
        got_ids, got_s = exact.search(q, 8)
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)
