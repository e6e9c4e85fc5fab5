"""`make bench`: run every stage's benchmark in flow order and collect their JSON lines.

Each `benchmarks/bench_<stage>.py` prints one JSON object per measurement. This runner passes them through
to stdout, stores them in `benchmarks/out/results.jsonl` with the machine description, and prints a short
table to stderr. A benchmark that fails is reported and the others still run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "lexicon_ingest",
    "lexicon_align",
    "alignment_rules",
    "embedder",
    "families",
    "smoothing",
    "index",
    "digest",
    "evaluation",
    "pipeline",
    "serve",
]


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv: list[str]) -> int:
    only = set(argv)
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    results: list[dict[str, object]] = []
    failed = []
    for stage in ORDER:
        if only and stage not in only:
            continue
        if not (HERE / f"bench_{stage}.py").exists():
            continue
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.bench_{stage}"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
        )
        sys.stderr.write(proc.stderr[-4000:])
        for line in proc.stdout.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rec.setdefault("stage", stage)
            results.append(rec)
            print(json.dumps(rec), flush=True)
        if proc.returncode != 0:
            failed.append(stage)
        print(
            json.dumps(
                {
                    "stage": stage,
                    "bench": "stage_wall",
                    "value": round(time.perf_counter() - t0, 2),
                    "unit": "s",
                    "rc": proc.returncode,
                }
            ),
            flush=True,
        )
    (out_dir / "results.jsonl").write_text(
        "".join(json.dumps({**r, "machine": machine()}) + "\n" for r in results), encoding="utf-8"
    )
    for r in results:
        ratio = r.get("ratio")
        sys.stderr.write(
            f"{r.get('stage', ''):<16} {r.get('bench', ''):<44} {r.get('value', '')!s:>14} "
            f"{r.get('unit', ''):<10} {'' if ratio is None else f'x{ratio}'}\n"
        )
    if failed:
        sys.stderr.write(f"failed benchmarks: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
