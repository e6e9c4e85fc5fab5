"""The whole pipeline (`defemb run` on the embedded default) timed stage by stage.

Baseline in the same run: a second `defemb run` on the same work folder, which must reuse every stage;
the ratio is first-run time over reuse time. Set DEFEMB_BENCH_WORK to keep the work folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from definitionemb.config import PipelineConfig
from definitionemb.pipeline import run_pipeline


def main() -> None:
    work = os.environ.get("DEFEMB_BENCH_WORK") or tempfile.mkdtemp(prefix="defemb-bench-")
    cfg = PipelineConfig(work=work)
    t0 = time.perf_counter()
    first = run_pipeline(cfg)
    total = time.perf_counter() - t0
    for stage, info in first.stages.items():
        print(
            json.dumps(
                {
                    "bench": f"pipeline_{stage}",
                    "value": info["seconds"],
                    "unit": "s",
                    "status": info["status"],
                }
            ),
            flush=True,
        )
    t1 = time.perf_counter()
    again = run_pipeline(cfg, log=lambda m: None)
    reuse = time.perf_counter() - t1
    assert all(v["status"] == "reused" for v in again.stages.values()), again.stages
    print(
        json.dumps(
            {
                "bench": "pipeline_total",
                "value": round(total, 2),
                "unit": "s",
                "baseline": round(reuse, 3),
                "baseline_what": "second run, every stage reused",
                "ratio": round(total / max(reuse, 1e-9), 1),
                "work": str(Path(work)),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
