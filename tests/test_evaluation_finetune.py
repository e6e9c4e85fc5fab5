"""GLUE TSV reading, metrics, and short fine-tuning runs (original vs swapped under the same seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_support import invoke_json
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import DataFormatError, EvaluationError
from definitionemb.evaluation.finetune import (
    FinetuneConfig,
    compare_glue,
    finetune_once,
    finetune_scores,
    matthews,
    paired_test,
)
from definitionemb.evaluation.glue_data import read_glue_tsv, task_files
from evaluation_support import DATA, make_run
from scipy.stats import ttest_rel

COLA = DATA / "glue" / "CoLA"


def test_read_cola_headerless() -> None:
    ex = read_glue_tsv(COLA / "in_domain_train.tsv")
    assert len(ex) == 64 and ex.text_b is None
    assert ex.text_a[0].startswith("Our friends won't buy this analysis")
    assert set(ex.labels.tolist()) == {0, 1}


def test_read_headered_pairs_and_string_labels(tmp_path: Path) -> None:
    f = tmp_path / "train.tsv"
    f.write_text(
        "index\tsentence1\tsentence2\tlabel\n0\tA man sleeps.\tSomeone rests.\tentailment\n"
        "1\tA cat.\tNo animal.\tnot_entailment\n"
    )
    ex = read_glue_tsv(f, label_names=("entailment", "not_entailment"))
    assert ex.text_b == ("Someone rests.", "No animal.") and ex.labels.tolist() == [0, 1]
    s = tmp_path / "sts.tsv"
    s.write_text("genre\tsentence1\tsentence2\tscore\nmain\ta b\tc d\t3.8\n")
    assert read_glue_tsv(s, regression=True).labels.tolist() == [3.8]


def test_bad_glue_files(tmp_path: Path) -> None:
    f = tmp_path / "x.tsv"
    f.write_text("just one column\n")
    with pytest.raises(DataFormatError, match="CoLA's 4 columns"):
        read_glue_tsv(f)
    with pytest.raises(DataFormatError, match="unknown GLUE task"):
        task_files("nope", tmp_path)
    with pytest.raises(DataFormatError, match="in_domain_train.tsv"):
        task_files("cola", tmp_path)


def test_matthews_known_values() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    assert matthews(y, y) == pytest.approx(1.0)
    assert matthews(y, 1 - y) == pytest.approx(-1.0)
    assert matthews(y, np.ones(6, dtype=int)) == 0.0
    p = np.array([1, 0, 0, 0, 1, 1])
    tp, tn, fp, fn = 2, 2, 1, 1
    want = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert matthews(y, p) == pytest.approx(want)


def test_paired_test_matches_scipy() -> None:
    a, b = [0.1, 0.2, 0.15, 0.3], [0.12, 0.25, 0.14, 0.36]
    res = paired_test(a, b)
    ref = ttest_rel(b, a)
    assert res["t"] == pytest.approx(ref.statistic) and res["p"] == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)  # scipy's own interval of the mean difference
    assert (res["ci_low"], res["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert res["ci_low"] < res["mean_diff"] < res["ci_high"]
    assert np.isnan(paired_test([0.1], [0.2])["p"]) and np.isnan(paired_test([0.1], [0.2])["ci_low"])


def _cfg(**kw: object) -> FinetuneConfig:
    base = dict(
        task="cola",
        data_dir=str(COLA),
        seeds=(1, 2),
        epochs=1.0,
        batch_size=16,
        lr=1e-3,
        max_len=48,
        device="cpu",
    )
    base.update(kw)
    return FinetuneConfig(**base)  # type: ignore[arg-type]


def test_same_seed_same_model_when_nothing_is_swapped(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """With an empty selection the 'swapped' model is the original: every seed must give equal results,
    which holds only if data order, head initialisation and dropout are all seeded identically."""
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "r", tiny_bert_dir, covered_share=0.0)
    res = compare_glue(run, _cfg(max_train=32))
    assert res.replaced_rows == 0 and len(res.seeds) == 2
    for s in res.seeds:
        assert s.original == s.definitionemb
    assert res.seeds[0].original != res.seeds[1].original or res.seeds[0].original["mcc"] == 0.0


def test_examples_part_is_file_order_slice() -> None:
    ex = read_glue_tsv(COLA / "in_domain_train.tsv")
    tail = ex.part(48)
    assert len(tail) == 16 and tail.text_a == ex.text_a[48:]
    assert tail.labels.tolist() == ex.labels[48:].tolist()
    assert ex.head(48).text_a + tail.text_a == ex.text_a


def test_one_fine_tune_scored_on_a_carved_split_and_dev(tiny_bert_dir: Path) -> None:
    """A split carved from the training file (for choosing a knob) and the reported dev set are scored on
    the same fine-tuned model: its dev score is exactly finetune_once's under the same seed."""
    cfg = _cfg(max_train=32)
    spec, tr, dv = task_files("cola", COLA)
    full = read_glue_tsv(tr)
    train, carved, dev = full.head(32), full.part(32), read_glue_tsv(dv)
    both = finetune_scores(tiny_bert_dir, spec, train, {"carved": carved, "dev": dev}, cfg, seed=1)
    assert set(both) == {"carved", "dev"}
    assert both["dev"] == finetune_once(tiny_bert_dir, spec, train, dev, cfg, seed=1)
    again = finetune_scores(tiny_bert_dir, spec, train, {"carved": carved}, cfg, seed=1)
    assert again["carved"] == both["carved"]
    with pytest.raises(EvaluationError, match="at least one set"):
        finetune_scores(tiny_bert_dir, spec, train, {}, cfg, seed=1)
    with pytest.raises(EvaluationError, match="no examples to score in carved"):
        finetune_scores(tiny_bert_dir, spec, train, {"carved": full.part(len(full))}, cfg, seed=1)


def test_compare_glue_cola_slice(tiny_bert_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "r", tiny_bert_dir, covered_share=0.5)
    res = compare_glue(run, _cfg(seeds=(1, 2), max_train=48))
    d = res.to_dict()
    assert d["metric"] == "mcc" and d["train_examples"] == 48 and d["eval_examples"] == 32
    assert d["replaced_rows"] == int(np.asarray(run.covered_mask()).sum())
    for s in d["seeds"]:
        for m in (s["original"], s["definitionemb"]):
            assert -1.0 <= m["mcc"] <= 1.0 and 0.0 <= m["accuracy"] <= 1.0
    mcc_o = [s["original"]["mcc"] for s in d["seeds"]]
    assert d["summary"]["original"]["mean"] == pytest.approx(np.mean(mcc_o))
    assert d["summary"]["original"]["std"] == pytest.approx(np.std(mcc_o, ddof=1))
    assert set(d["test"]) == {"mean_diff", "t", "p", "ci_low", "ci_high"}
    # the rare-token subset: dev sentences holding a changed row of the rare bucket (row order here)
    from definitionemb.evaluation.rows import run_buckets
    from transformers import AutoTokenizer

    labels, _ = run_buckets(run)
    rare_rows = set(np.flatnonzero((labels == "rare") & np.asarray(run.covered_mask())).tolist())
    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    dev = read_glue_tsv(COLA / "in_domain_dev.tsv")
    expect = [i for i, t in enumerate(dev.text_a) if set(tok(t)["input_ids"]) & rare_rows]
    assert 0 < d["rare_examples"] == len(expect) < d["eval_examples"]
    assert len(d["rare_seeds"]) == 2 and set(d["rare_test"]) == set(d["test"])


def test_cli_glue_json_and_stored_result(tiny_bert_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "r", tiny_bert_dir)
    out = invoke_json(
        "eval",
        "glue",
        "--run",
        run.path,
        "--task",
        "cola",
        "--data",
        COLA,
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--max-train",
        "32",
        "--max-eval",
        "16",
        "--device",
        "cpu",
        "--json",
    )
    assert out["train_examples"] == 32 and out["eval_examples"] == 16 and len(out["seeds"]) == 1
    stored = json.loads((run.path / "report" / "results" / "glue-cola.json").read_text())
    assert stored["command"].startswith("defemb eval glue --run ")
    assert "--max-train 32" in stored["command"] and "--json" in stored["command"]
    assert stored["config"]["max_train"] == 32


@pytest.mark.slow
def test_cola_with_real_minilm(minilm_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("definitionemb.index.swap")
    run = make_run(tmp_path / "minilm", minilm_dir, covered_share=0.3)
    res = compare_glue(RunDir.open(run.path), _cfg(seeds=(1,), lr=5e-5, epochs=1.0, max_train=32))
    assert res.eval_examples == 32
    assert all(-1 <= s.original["mcc"] <= 1 for s in res.seeds)


def test_sentence_pair_regression(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """The STS-B path: a headered TSV with sentence1, sentence2 and a float score; Pearson/Spearman out."""
    pytest.importorskip("definitionemb.index.swap")
    cola = read_glue_tsv(COLA / "in_domain_train.tsv")
    task = tmp_path / "STS-B"
    task.mkdir()
    for name, lo, hi in (("train.tsv", 0, 32), ("dev.tsv", 32, 56)):
        rows = ["index\tgenre\tsentence1\tsentence2\tscore"]
        for i in range(lo, hi, 2):  # pairs of real CoLA sentences; the score is how many are acceptable
            rows.append(
                f"{i}\tmain\t{cola.text_a[i]}\t{cola.text_a[i + 1]}\t{float(cola.labels[i] + cola.labels[i + 1])}"
            )
        (task / name).write_text("\n".join(rows) + "\n")
    run = make_run(tmp_path / "r", tiny_bert_dir)
    res = compare_glue(run, _cfg(task="stsb", data_dir=str(task), seeds=(1,)))
    assert res.metric == "pearson" and res.train_examples == 16 and res.eval_examples == 12
    m = res.seeds[0].definitionemb
    assert set(m) == {"pearson", "spearman"} and all(-1.0 <= v <= 1.0 for v in m.values())
