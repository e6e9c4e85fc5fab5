"""`defemb run` end to end on a tiny preset: tiny random BERT, a few hundred real senses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from definitionemb.cli import cli
from definitionemb.config import load_config
from definitionemb.pipeline import STAGES, PipelineError, run_pipeline


def _config(tmp_path: Path, data_dir: Path, model: Path) -> Path:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(f"""
[run]
work = "{tmp_path / "work"}"
seed = 3

[lexicon]
sources = ["open-dictionary:{data_dir / "open-dictionary" / "api"}",
           "open-dictionary:{data_dir / "lexicon-align" / "open-dictionary" / "api"}"]

[model]
name = "{model}"

[embedder]
preset = "quick"
topk = 3
steps = 4
batch_tokens = 512
device = "cpu"
senses = true
eval_every = 2
ckpt_every = 2
ridge_examples = 200

[index]
factory = "Flat"
metric = "cosine"
k = 5

[evaluation]
wordsim = ["{data_dir / "eval" / "word-similarity" / "EN-RG-65.txt"}"]
""")
    return cfg


@pytest.mark.slow
def test_defemb_run_end_to_end_and_reuse(tmp_path: Path, data_dir: Path, tiny_bert_dir: Path) -> None:
    cfg_path = _config(tmp_path, data_dir, tiny_bert_dir)
    res = CliRunner().invoke(cli, ["run", "--config", str(cfg_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [s for s in out["stages"]] == list(STAGES)
    assert all(v["status"] == "ran" for v in out["stages"].values())

    work = tmp_path / "work"
    run = Path(out["run"])
    assert (work / "lexicon.duckdb").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    for key in ("model", "tokenizer_sha256", "lexicon_fingerprint", "vocab_size", "dim", "seed"):
        assert key in manifest
    # A config's senses per token reach the run over the preset's own (the demo's time budget).
    assert manifest["config"]["topk"] == load_config(cfg_path).embedder.topk == 3
    assert manifest["generate"]["topk"] == 3
    tv = np.load(run / "token_vectors.npy")
    covered = np.load(run / "token_covered.npy")
    assert tv.shape == (manifest["vocab_size"], manifest["dim"]) and tv.dtype == np.float32
    assert covered.sum() > 50 and np.isfinite(tv).all()
    assert (run / "sense_vectors.npy").is_file()
    assert any((run / "index").glob("*.faiss"))
    report = json.loads((run / "report" / "report.json").read_text())
    for key in ("isotropy", "wordsim", "manifest", "plots", "commands"):
        assert key in report
    assert "EN-RG-65" in report["wordsim"]
    assert (run / "report" / "report.md").is_file()
    # The PLM with the covered rows changed by the shipped row policy, loadable by transformers.
    from definitionemb.index.policy import default_policy, policy_matrix
    from transformers import AutoModel

    swapped = AutoModel.from_pretrained(str(run / "model")).get_input_embeddings().weight.detach().numpy()
    want, mask = policy_matrix(run, None, default_policy())
    np.testing.assert_array_equal(mask, covered)
    np.testing.assert_allclose(swapped, want, rtol=0, atol=1e-6)
    assert report["wordsim"]["EN-RG-65"]["part"] == "test" and report["knobs"]["chosen"]
    assert (run / "model" / "README.md").is_file()
    # What this run writes for others to read names no folder of this machine (issue 29): the state file,
    # the exported model's card and metadata (the run manifest's paths: run identity's business).
    for f in (
        work / "pipeline.json",
        run / "model" / "README.md",
        run / "model" / "definitionemb_export.json",
    ):
        named = [line for line in f.read_text(encoding="utf-8").splitlines() if str(tmp_path) in line]
        assert not named, (f, named[:5])
    summary = (work / "summary.md").read_text()
    assert "Isotropy" in summary and "Neighbours" in summary
    # Three reverse-dictionary answers (the default definitions), each with its top words.
    answers = json.loads((run / "report" / "reverse.json").read_text())
    assert sorted({a["query"] for a in answers}) == [0, 1, 2] and len(answers) == 9
    assert "## Reverse dictionary" in summary and "a young dog" in summary
    assert (
        "## Row policy" in summary and "beats original on" in summary and default_policy().spelling in summary
    )

    # The sense index the pipeline built answers from the command line.
    piece = json.loads((run / "report" / "neighbors.json").read_text())[0]["piece"]
    senses = CliRunner().invoke(cli, ["index", "senses", "--run", str(run), piece, "-k", "3", "--json"])
    assert senses.exit_code == 0, senses.output
    assert len(json.loads(senses.stdout)) == 3

    # Same inputs: everything is reused, and says so.
    again = run_pipeline(load_config(cfg_path), log=lambda m: None)
    assert {v["status"] for v in again.stages.values()} == {"reused"}
    # --from forces a stage and everything after it.
    part = run_pipeline(load_config(cfg_path), from_stage="index", until="index", log=lambda m: None)
    assert [k for k, v in part.stages.items() if v["status"] == "ran"] == ["index"]


def test_unknown_stage_is_refused(tmp_path: Path) -> None:
    from definitionemb.config import PipelineConfig

    with pytest.raises(PipelineError, match="not a stage"):
        run_pipeline(PipelineConfig(work=str(tmp_path)), from_stage="nope")


def test_bad_config_is_refused_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[embedder\nsteps = 3")
    res = CliRunner().invoke(cli, ["run", "--config", str(bad)])
    assert res.exit_code != 0 and "not valid TOML" in res.output
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[lexcon]\nsources = []\n")
    res = CliRunner().invoke(cli, ["run", "--config", str(unknown)])
    assert res.exit_code != 0 and "unknown keys" in res.output


def test_demo_config_keeps_its_senses_budget_and_other_configs_take_the_preset(tmp_path: Path) -> None:
    from definitionemb import embedder

    demo_file = Path(__file__).parents[1] / "definitionemb" / "configs" / "minilm-demo.toml"
    assert load_config(None).embedder == load_config(demo_file).embedder
    assert load_config(None).embedder.topk == 3
    other = tmp_path / "other.toml"
    other.write_text('[embedder]\npreset = "standard"\n')
    assert load_config(other).embedder.topk is None  # None: the preset's own
    assert embedder.preset("standard", db="x", model="y", run="z", topk=None).topk == 6
