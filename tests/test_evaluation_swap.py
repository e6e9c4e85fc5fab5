"""Swap + save_pretrained + load round trips for RoBERTa (masked LM), BART and BERT, via index.swap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from definitionemb.evaluation.swap import load_model, save_swapped
from evaluation_support import make_lexicon, make_run

pytest.importorskip("definitionemb.index.swap", reason="index.swap.replace_rows has not landed yet")


def _rows(model: torch.nn.Module) -> np.ndarray:
    return model.get_input_embeddings().weight.detach().numpy()


@pytest.mark.parametrize(
    "family,fixture", [("roberta", "tiny_roberta_dir"), ("bart", "tiny_bart_dir"), ("bert", "tiny_bert_dir")]
)
def test_swap_save_load_round_trip(
    family: str, fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model_dir: Path = request.getfixturevalue(fixture)
    run = make_run(tmp_path / f"run-{family}", model_dir, seed=11)
    res = save_swapped(run, rows="covered", how="replace")
    covered = np.asarray(run.covered_mask())
    assert res.replaced_rows == int(covered.sum()) > 0
    out = Path(res.out_dir)
    assert out == run.path / "model"
    meta = json.loads((out / "definitionemb_export.json").read_text())
    assert meta["policy"] == "--rows covered --how replace" and meta["run_id"] == run.run_id
    assert (out / "README.md").is_file()  # the one writer also leaves a model card
    loaded = load_model(out)
    assert type(loaded).__name__ == type(load_model(model_dir)).__name__
    rows = _rows(loaded)
    np.testing.assert_array_equal(rows[covered], np.asarray(run.token_vectors())[covered])
    np.testing.assert_array_equal(rows[~covered], np.asarray(run.original_vectors())[~covered])
    head = loaded.get_output_embeddings()
    if head is not None:  # tied LM heads must follow the input rows
        np.testing.assert_array_equal(head.weight.detach().numpy(), rows)
    if family == "bart":
        enc = loaded.get_encoder().get_input_embeddings().weight.detach().numpy()
        dec = loaded.get_decoder().get_input_embeddings().weight.detach().numpy()
        np.testing.assert_array_equal(enc, rows)
        np.testing.assert_array_equal(dec, rows)
    # The tokenizer travels with the model.
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(str(out))) == rows.shape[0]


def test_swap_rare_selection_and_replacement(tiny_bert_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    run = make_run(tmp_path / "run", tiny_bert_dir, seed=2, db=db)
    covered = np.asarray(run.covered_mask())
    make_lexicon(db, covered.size, (0, 100, 101, 102, 103), covered)
    first = save_swapped(run, rows="rare", how="replace")
    from definitionemb.evaluation.rows import buckets_from_lexicon

    rare = buckets_from_lexicon(db, 1, covered.size) == "rare"
    assert first.replaced_rows == int((rare & covered).sum()) > 0
    rows = _rows(load_model(first.out_dir))
    np.testing.assert_array_equal(rows[rare & covered], np.asarray(run.token_vectors())[rare & covered])
    np.testing.assert_array_equal(rows[~rare], np.asarray(run.original_vectors())[~rare])
    # Saving again replaces the folder whole; nothing temporary is left beside it.
    second = save_swapped(run, rows="covered", how="replace")
    assert second.replaced_rows == int(covered.sum())
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith(".model")) == []


def test_cli_swap(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from definitionemb.cli import cli

    run = make_run(tmp_path / "run", tiny_bert_dir, seed=4)
    res = CliRunner().invoke(
        cli, ["eval", "swap", "--run", str(run.path), "--out", str(tmp_path / "m"), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["replaced_rows"] == int(np.asarray(run.covered_mask()).sum())
    assert (tmp_path / "m" / "config.json").is_file()
    from definitionemb.index.policy import DEFAULT_HOW

    assert out["how"] == DEFAULT_HOW  # no flag: the shipped default policy
    res = CliRunner().invoke(cli, ["eval", "swap", "--run", str(run.path), "--rows", "nonsense"])
    assert res.exit_code == 1 and "unknown selection" in res.output


def test_swap_task_tail_selection(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from definitionemb.index.select import select_rows
    from evaluation_support import DATA

    run = make_run(tmp_path / "run", tiny_bert_dir, seed=6, covered_share=0.9)
    task = DATA / "glue" / "CoLA" / "in_domain_train.tsv"
    select = f"task:{task}:0.5"
    res = save_swapped(run, rows=select, how="replace")
    want = select_rows(run, None, select)
    assert res.replaced_rows == int(want.sum()) > 0
    assert int(want.sum()) < int(np.asarray(run.covered_mask()).sum())  # only the task's rare half
    rows = _rows(load_model(res.out_dir))
    np.testing.assert_array_equal(rows[want], np.asarray(run.token_vectors())[want])
    np.testing.assert_array_equal(rows[~want], np.asarray(run.original_vectors())[~want])
