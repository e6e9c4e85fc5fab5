"""`defemb embed train|generate` through click, and the same entry point under torchrun (DDP, gloo)."""
# ruff: noqa: F811  (fixtures imported from test_embedder_support are named by the tests that use them)

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_embedder_support import base_lexicon, bert_lexicon  # noqa: F401

from definitionemb.cli import cli

TINY = ["--steps", "4", "--batch-tokens", "512", "--warmup", "2", "--device", "cpu", "--quiet", "--seed", "3"]


def test_cli_train_and_generate_json(base_lexicon: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "lex.duckdb"
    shutil.copy(base_lexicon, db)  # not aligned yet: train must align it itself and say so
    run = tmp_path / "run"
    r = CliRunner().invoke(
        cli,
        [
            "embed",
            "train",
            "--db",
            str(db),
            "--model",
            str(tiny_bert_dir),
            "--run",
            str(run),
            *TINY,
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["steps"] == 4 and out["tokens_per_s"] > 0
    assert set(out["heldout"]) >= {"tokens", "loss", "cosine", "baseline_cosine"}
    assert "aligning it now" in r.stderr
    g = CliRunner().invoke(
        cli, ["embed", "generate", "--db", str(db), "--run", str(run), "--senses", "--quiet", "--json"]
    )
    assert g.exit_code == 0, g.output
    res = json.loads(g.stdout.strip().splitlines()[-1])
    assert res["tokens"] > 500 and res["senses"] > 800 and res["vocab_size"] == 30522
    again = CliRunner().invoke(
        cli, ["embed", "train", "--db", str(db), "--model", str(tiny_bert_dir), "--run", str(run), *TINY]
    )
    assert again.exit_code != 0 and "--resume" in again.output


def test_cli_help_has_examples() -> None:
    for sub in ("train", "generate"):
        r = CliRunner().invoke(cli, ["embed", sub, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(
    bert_lexicon: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """torchrun, 2 ranks (gloo) ≡ one process with grad_accum 2: same micro-batches, same averaged gradient."""
    from definitionemb.embedder.checkpoint import latest_checkpoint
    from safetensors.torch import load_file

    common = [
        "embed",
        "train",
        "--db",
        str(bert_lexicon),
        "--model",
        str(tiny_bert_dir),
        *TINY,
        "--dropout",
        "0",
        "--json",
    ]
    single = CliRunner().invoke(cli, [*common, "--run", str(tmp_path / "single"), "--grad-accum", "2"])
    assert single.exit_code == 0, single.output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "definitionemb.cli",
            *common,
            "--run-dir",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads(single.stdout.strip().splitlines()[-1])
    b = json.loads(proc.stdout.strip().splitlines()[-1])
    assert b["steps"] == a["steps"] == 4
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
    sa = load_file(str(latest_checkpoint(tmp_path / "single") / "model.safetensors"))  # type: ignore[operator]
    sb = load_file(str(latest_checkpoint(tmp_path / "ddp") / "model.safetensors"))  # type: ignore[operator]
    for k in sa:
        assert (sa[k] - sb[k]).abs().max() < 1e-4, k
