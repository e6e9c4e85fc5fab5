"""Summarisation: split reading, presets, ROUGE, paired bootstrap, and a run on a tiny random BART."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_support import invoke, invoke_json
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import DataFormatError, EvaluationError
from definitionemb.evaluation.summarization import (
    PRESETS,
    Decoding,
    SummarizationConfig,
    compare_summarization,
    load_splits,
    paired_bootstrap,
    read_split,
    rouge,
)
from evaluation_support import DATA, make_run

SUMM = DATA / "summarization"


def _summarize(run: RunDir, *options: object) -> tuple[object, ...]:
    """The arguments of `defemb eval summarization` of `run` on the test splits, `options` last."""
    return ("eval", "summarization", "--run", run.path, "--data", SUMM, *options)


def test_presets_match_the_paper() -> None:
    assert PRESETS["xsum"] == Decoding(
        num_beams=6, max_length=60, min_length=10, length_penalty=1.0, no_repeat_ngram_size=3
    )
    assert PRESETS["cnndm"] == Decoding(4, 140, 55, 2.0, 3)
    assert set(PRESETS) == {"xsum", "cnndm", "billsum"}
    with pytest.raises(EvaluationError, match="unknown preset"):
        SummarizationConfig(preset="gigaword").settings()


def test_read_splits_jsonl_and_tsv(tmp_path: Path) -> None:
    train, test = load_splits(SUMM)
    assert train is not None and len(train) == 12 and len(test) == 8
    assert test.summaries[0] in test.documents[0]
    (tmp_path / "test.tsv").write_text("document\tsummary\nA long text here.\tText.\nOther words.\tWords.\n")
    tr, te = load_splits(tmp_path)
    assert tr is None and te.summaries == ("Text.", "Words.")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"document": "x"}\n')
    with pytest.raises(DataFormatError, match="bad.jsonl:1"):
        read_split(bad)
    with pytest.raises(DataFormatError, match="no test.jsonl"):
        load_splits(DATA / "glue")  # a folder, but without summarisation splits


def test_rouge_known_values() -> None:
    r = rouge(["the cat sat on the mat", "completely different"], ["the cat sat on the mat", "a dog ran"])
    assert r["rouge1"][0] == pytest.approx(1.0) and r["rougeL"][0] == pytest.approx(1.0)
    assert r["rouge1"][1] == 0.0 and r["rouge2"][1] == 0.0
    # 2 of 3 unigrams shared with a 2-word prediction: P = 1, R = 2/3, F = 0.8.
    assert rouge(["cat sat"], ["the cat sat"])["rouge1"][0] == pytest.approx(0.8)


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(200)
    assert paired_bootstrap(a, a + 0.1) == 0.0  # b better in every resample
    assert paired_bootstrap(a + 0.1, a) == 1.0
    assert 0.0 < paired_bootstrap(a, a + rng.normal(0, 0.3, 200)) < 1.0
    with pytest.raises(EvaluationError):
        paired_bootstrap(a, a[:10])


def test_compare_summarization_on_tiny_bart(tiny_bart_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "bart", tiny_bart_dir, covered_share=0.5)
    dec = Decoding(num_beams=2, max_length=16, min_length=2, length_penalty=1.0, no_repeat_ngram_size=3)
    cfg = SummarizationConfig(
        data_dir=str(SUMM),
        train_steps=2,
        batch_size=4,
        max_eval=4,
        decoding=dec,
        device="cpu",
        max_source_len=64,
    )
    res = compare_summarization(run, cfg)
    d = res.to_dict()
    assert d["eval_examples"] == 4 and d["train_steps"] == 2 and d["decoding"]["num_beams"] == 2
    assert set(d["original"]) == {"rouge1", "rouge2", "rougeL"}
    for k in d["original"]:
        assert 0.0 <= d["original"][k] <= 1.0 and 0.0 <= d["definitionemb"][k] <= 1.0
        assert 0.0 <= d["bootstrap_p"][k] <= 1.0
    assert len(d["examples"]) == 3 and all(isinstance(e["definitionemb"], str) for e in d["examples"])


def test_summarization_without_swap_is_reproducible(tiny_bart_dir: Path, tmp_path: Path) -> None:
    """Nothing selected: both models are the same, so the same seed must decode the same summaries."""
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "bart0", tiny_bart_dir, covered_share=0.0)
    cfg = SummarizationConfig(
        data_dir=str(SUMM),
        train_steps=1,
        batch_size=4,
        max_eval=3,
        device="cpu",
        decoding=Decoding(1, 12, 1, 1.0, 0),
        max_source_len=64,
    )
    res = compare_summarization(run, cfg)
    assert res.replaced_rows == 0 and res.original == res.definitionemb


def test_cli_summarization_rejects_an_encoder(tiny_bert_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "bert", tiny_bert_dir)
    res = invoke(*_summarize(run, "--max-eval", "2", "--device", "cpu"))
    assert res.exit_code == 1 and "sequence-to-sequence" in res.output, res.output
    assert not (run.path / "report" / "results").exists() or not list(
        (run.path / "report" / "results").iterdir()
    )


@pytest.mark.slow
def test_cli_summarization_json(tiny_bart_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("definitionemb.index.swap")
    import json

    run = make_run(tmp_path / "bart", tiny_bart_dir, covered_share=0.0)
    out = invoke_json(*_summarize(run, "--preset", "xsum", "--max-eval", "1", "--device", "cpu", "--json"))
    assert out["decoding"] == PRESETS["xsum"].to_dict() and out["eval_examples"] == 1
    assert out["original"] == out["definitionemb"]  # nothing selected: the same model twice
    stored = json.loads((run.path / "report" / "results" / "summarization-xsum.json").read_text())
    assert stored["command"].startswith("defemb eval summarization --run")
