"""Index-stage speed: exact search vs brute-force numpy, an approximate index with its recall, exports.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_index [--quick]

Vectors are seeded unit float32 rows of the real dimension (768) with some structure of real embedding
rows: 2,048 cluster centres in a 64-dimensional subspace plus isotropic noise (pure Gaussian noise has
no neighbours worth finding and would make any approximate index look bad). Queries
are rows plus a little noise. The metric is cosine (inner product of unit rows), the library's default. Measured in one run:

* `exact_equals_numpy_*`: the Flat index (library path: `index.faiss_core.build_faiss`) against
  brute-force numpy on the same data — fraction of identical neighbour ids and the largest score gap;
* `qps_flat_<N>x768`: queries per second of a Flat index through the library's search path
  (`index.faiss_core.search_faiss`: blocked BLAS + argpartition on the index's own storage for batches),
  baseline brute-force numpy (matrix product + argpartition, blocked) on the same vectors and queries;
  `faiss_kernel_qps` is FAISS's own flat kernel on the same index;
* `qps_<approx>_<N>x768`, `recall10_<approx>_<N>x768`: an IVF index with 8-bit scalar quantisation
  (coarse quantiser trained on a sample), its QPS against the same numpy baseline and recall@10 against
  the exact neighbours. (IVF-PQ's k-means over 256 centroids per sub-quantiser took minutes even on
  small inputs with faiss-cpu 1.15 on this machine, so the bench uses IVF,SQ8, which fits in ~3 min.)
* `export_<fmt>_50265x768`: `index.exporter.export` of a RoBERTa-sized matrix in each format (hf: a
  one-layer RoBERTa with hidden size 768, so the 50,265×768 embedding dominates), baseline a bare
  `np.save` of the same matrix.

1.7M×768 float32 is 5.2 GB; it is generated straight into the Flat index's storage (numpy searches a
view of it), which keeps the whole bench under ~7 GB. `--quick` uses 200k rows instead of 1.7M.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

K = 10
DIM = 768
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tokenizers" / "roberta-bart"
LOCAL_TOKENIZER = Path(__file__).resolve().parents[1] / "tests" / "data" / "roberta-bart"


def emit(bench: str, value: float, unit: str, baseline: float | None = None, **extra: Any) -> None:
    rec: dict[str, Any] = {"bench": bench, "value": round(value, 4), "unit": unit}
    if baseline is not None:
        rec["baseline"] = round(baseline, 4)
        rec["ratio"] = round(value / baseline, 3) if baseline else None
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def structured_rows(rng: np.random.Generator, n: int, centers: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """n unit rows: a cluster centre + two noise rows drawn from a pool (gathers only: cheap for millions;
    two draws make exact duplicate rows, whose tied scores would blur the exactness check, negligible)."""
    x = centers[rng.integers(0, centers.shape[0], n)]
    x += noise[rng.integers(0, noise.shape[0], n)]
    x += noise[rng.integers(0, noise.shape[0], n)]
    faiss.normalize_L2(x)  # cosine, the library's default metric
    return x


def numpy_topk(xb: np.ndarray, q: np.ndarray, k: int, block: int = 262144) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product top-k in row blocks (the baseline a user would write)."""
    best_s = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((q.shape[0], 0), dtype=np.int64)
    for start in range(0, xb.shape[0], block):
        s = q @ xb[start : start + block].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_s, best_i


def recall(exact: np.ndarray, approx: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(exact, approx, strict=True)]))


def bench_search(n: int, nq: int, nlist: int, nprobe: int, seed: int = 0) -> None:
    from definitionemb.index.faiss_core import build_faiss, prepare, search_faiss, tune_blas

    tune_blas()
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2048, 64), dtype=np.float32) @ rng.standard_normal(
        (64, DIM), dtype=np.float32
    )
    noise = 2.8 * rng.standard_normal((65536, DIM), dtype=np.float32)
    flat = faiss.IndexFlatIP(DIM)
    t0 = time.perf_counter()
    for start in range(0, n, 131072):
        flat.add(structured_rows(rng, min(131072, n - start), centers, noise))
    gen_s = time.perf_counter() - t0
    xb = faiss.rev_swig_ptr(flat.get_xb(), n * DIM).reshape(n, DIM)  # a view: no second copy
    q = xb[rng.choice(n, nq, replace=False)] + 0.02 * rng.standard_normal((nq, DIM), dtype=np.float32)
    faiss.normalize_L2(q)
    tag = f"{n}x{DIM}"
    print(f"# {tag}: generated in {gen_s:.1f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    np_s, np_i = numpy_topk(xb, q, K)
    t_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    f_i, f_s = search_faiss(flat, np.arange(n, dtype=np.int64), q, K)  # the library's search path
    t_flat = time.perf_counter() - t0
    t0 = time.perf_counter()
    k_s, k_i = flat.search(q, K)  # FAISS's own flat kernel, for reference
    t_kernel = time.perf_counter() - t0
    emit(
        f"qps_flat_{tag}",
        nq / t_flat,
        "queries/s",
        nq / t_np,
        queries=nq,
        baseline_is="numpy brute force",
        faiss_kernel_qps=round(nq / t_kernel, 2),
    )
    emit(
        f"exact_equals_numpy_{tag}",
        float(np.mean(f_i == np_i)),
        "fraction of ids",
        max_score_gap=float(np.max(np.abs(f_s - np_s))),
        faiss_kernel_ids_equal=float(np.mean(k_i == np_i)),
    )

    if n <= 100_000:  # the library path end to end, on a size where a second copy is cheap
        lib = build_faiss(prepare(xb, "ip"), "Flat", "ip")  # rows are unit already
        l_i, l_s = search_faiss(lib, np.arange(n, dtype=np.int64), prepare(q, "ip"), K)
        emit(
            f"exact_equals_numpy_library_{tag}",
            float(np.mean(l_i == np_i)),
            "fraction of ids",
            max_score_gap=float(np.max(np.abs(l_s - np_s))),
        )
        del lib

    factory = f"IVF{nlist},SQ8"
    approx = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(approx)
    ivf.cp.niter = 10
    t0 = time.perf_counter()
    approx.train(xb[rng.choice(n, min(n, 32 * nlist), replace=False)])
    for start in range(0, n, 131072):
        approx.add(xb[start : start + 131072])
    t_build = time.perf_counter() - t0
    ivf.nprobe = nprobe
    t0 = time.perf_counter()
    _, a_i = approx.search(q, K)
    t_a = time.perf_counter() - t0
    emit(
        f"qps_{factory}_{tag}",
        nq / t_a,
        "queries/s",
        nq / t_np,
        queries=nq,
        nprobe=nprobe,
        baseline_is="numpy brute force",
        build_s=round(t_build, 2),
    )
    emit(f"recall10_{factory}_{tag}", recall(f_i, a_i), "recall@10", qps_vs_flat=round(t_flat / t_a, 2))
    del approx, flat


def bench_export(work: Path) -> None:
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.index.exporter import export

    from tests.model_support import save_random_roberta

    tok_dir = SHARED if (SHARED / "vocab.json").exists() else LOCAL_TOKENIZER
    model_dir = work / "roberta-768"
    # The tests' tiny RoBERTa (same vocabulary, ids and seed) at hidden 768, one layer.
    save_random_roberta(
        model_dir,
        tok_dir,
        hidden_size=DIM,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=1024,
    )
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        original = f.get_tensor("roberta.embeddings.word_embeddings.weight").astype(np.float32)
    rng = np.random.default_rng(0)
    covered = rng.random(original.shape[0]) < 0.35
    tokens = original.copy()
    tokens[covered] += rng.standard_normal((int(covered.sum()), DIM), dtype=np.float32) * 0.02
    run = RunDir(work / "run")
    run.path.mkdir()
    run.write_manifest(
        {
            "run_id": "bench",
            "model": str(model_dir),
            "model_family": "roberta",
            "vocab_size": original.shape[0],
            "dim": DIM,
        }
    )
    run.save_array("original_vectors.npy", original)
    run.save_array("token_vectors.npy", tokens)
    run.save_array("token_covered.npy", covered)

    t0 = time.perf_counter()
    np.save(work / "baseline.npy", tokens)
    t_base = time.perf_counter() - t0
    for fmt, out in (
        ("npy", "out-npy"),
        ("safetensors", "out.safetensors"),
        ("pt", "out.pt"),
        ("hf", "out-hf"),
    ):
        t0 = time.perf_counter()
        export(run, fmt, "covered", work / out)
        dt = time.perf_counter() - t0
        emit(f"export_{fmt}_50265x{DIM}", dt, "s", t_base, baseline_is="bare np.save", target_s=2.0)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    emit("faiss_threads", float(faiss.omp_get_max_threads()), "threads")
    bench_search(50265, nq=500, nlist=256, nprobe=16)
    bench_search(200_000 if quick else 1_700_000, nq=100, nlist=256, nprobe=16)
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        bench_export(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import resource

    # ru_maxrss is in KiB on Linux; the bench is meant to stay under 8 GB.
    emit("peak_rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "GiB", target_gib=8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
