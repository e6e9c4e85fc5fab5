"""How long the covered rows are before and after a row policy: norms of a run's original and generated rows.

Re-creates the norm figures of the tenth pass (benchmarks/RESULTS.md, "Evaluation and row policies"):
the mean norm of the covered rows in `original_vectors.npy` and `token_vectors.npy`, their mean cosine,
and for each `--how` the blended row's length as a share of its original row's (mean and 10th
percentile, `definitionemb.index.policy.blend`), beside the mean norm of the rows the policy does not touch.

    .venv/bin/python scripts/probe_row_norms.py --run RUN --how mix:0.45 --how normmix:0.45

One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.policy import blend


def row_norms(run: RunDir, hows: list[str]) -> dict[str, object]:
    """The norm summary of `run`'s covered rows, and of those rows blended by each of `hows`."""
    mask = np.asarray(run.covered_mask(), dtype=bool)
    o = np.asarray(run.original_vectors()[mask], dtype=np.float64)
    g = np.asarray(run.token_vectors()[mask], dtype=np.float64)
    no, ng = np.linalg.norm(o, axis=1), np.linalg.norm(g, axis=1)
    cos = np.einsum("ij,ij->i", o, g) / np.maximum(no * ng, 1e-12)
    untouched = np.linalg.norm(np.asarray(run.original_vectors()[~mask], dtype=np.float64), axis=1)
    out: dict[str, object] = {
        "covered": int(mask.sum()),
        "original_norm_mean": round(float(no.mean()), 4),
        "generated_norm_mean": round(float(ng.mean()), 4),
        "cosine_mean": round(float(cos.mean()), 4),
        "untouched_norm_mean": round(float(untouched.mean()), 4) if untouched.size else None,
    }
    for how in hows:
        share = np.linalg.norm(blend(o, g, how).astype(np.float64), axis=1) / np.maximum(no, 1e-12)
        out[how] = {
            "length_share_mean": round(float(share.mean()), 4),
            "length_share_p10": round(float(np.percentile(share, 10)), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument(
        "--how", action="append", default=None, help="a row policy, repeatable (default mix:0.45)"
    )
    args = ap.parse_args(argv)
    print(json.dumps(row_norms(RunDir.open(args.run), args.how or ["mix:0.45"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
