"""The index stage on a real run: lexicon.build + lexicon.align over real glosses, embedder.train +
embedder.generate on a tiny BERT, then every index query and an hf export of that run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_support import invoke_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path):
    from definitionemb.embedder.rundir import RunDir
    from test_embedder_support import trained_run

    run, db = trained_run(
        tmp_path_factory.mktemp("pipeline"),
        tiny_bert_dir,
        senses=True,
        steps=4,
        warmup=1,
        eval_every=2,
        ckpt_every=2,
        ridge_examples=200,
    )
    return RunDir.open(run), db


def test_queries_and_table_on_a_trained_run(real_run) -> None:
    from definitionemb.index.faiss_index import build, open_index
    from definitionemb.index.query import neighbors, reverse, senses_near
    from definitionemb.index.table import neighbors_table
    from definitionemb.lexicon.db import connect

    run, db = real_run
    built = build(run, "tokens", "Flat", "cosine", progress=False) + build(run, "senses", progress=False)
    covered = np.asarray(run.covered_mask())
    assert built[0].ntotal == int(covered.sum()) > 50
    assert built[2].ntotal == np.asarray(run.sense_ids()).size
    word_id = int(np.flatnonzero(covered)[10])
    frame = neighbors(run, [word_id], k=5)
    assert frame.height == 5 and (frame["generated_id"] != word_id).all()
    assert set(frame["generated_id"].to_list()) <= set(np.flatnonzero(covered).tolist())
    senses = senses_near(run, word_id, k=3)
    assert senses.height == 3 and senses["gloss"].null_count() == 0
    # Reverse: the gloss a token was generated from should find that token near the top.
    con = connect(db)
    try:
        piece, gloss = con.execute(
            "SELECT piece, gloss FROM token_definition WHERE token_id = ? AND rank = 1 AND tokenizer_id = ?",
            [word_id, run.manifest()["tokenizer_id"]],
        ).fetchone()
    finally:
        con.close()
    hits = reverse(run, gloss, k=20, matrix="generated")
    assert hits.columns[:6] == ["query", "rank", "token_id", "piece", "surface", "score"]
    assert word_id in hits["token_id"].to_list(), (piece, gloss, hits.head(5))
    assert hits["text"].unique().to_list() == [gloss]
    by_word = neighbors(run, [piece], k=2)
    assert by_word["token_id"].unique().to_list() == [word_id]
    # `defemb index reverse` is now the headword reverse dictionary (index.reverse_dictionary); with the
    # tokens scorer alone it ranks the same generated rows, restricted to single-token headwords.
    rows = invoke_json(
        "index",
        "reverse",
        "--run",
        run.path,
        gloss,
        "-k",
        "20",
        "--scorer",
        "tokens",
        "--matrix",
        "generated",
        "--json",
    )
    assert len(rows) == 20 and all(r["single_token"] for r in rows)
    mine = {r["token_id"]: r["score"] for r in rows}
    old = dict(zip(hits["token_id"].to_list(), hits["score"].to_list(), strict=True))
    shared = set(mine) & set(old)
    assert shared and all(abs(mine[t] - old[t]) < 1e-4 for t in shared), (mine, old)
    result = neighbors_table(run, db, k=3, progress=False)
    con = connect(db)
    try:
        n = con.execute(
            "SELECT count(*) FROM neighbor n JOIN token_definition d USING (token_id) "
            "WHERE n.run_id = ? AND d.rank = 1",
            [run.run_id],
        ).fetchone()[0]
    finally:
        con.close()
    assert result.rows["generated"] == 3 * int(covered.sum()) and n > 0
    assert open_index(run, "original").manifest.run_id == run.run_id


def test_hf_export_of_a_trained_run(real_run, tmp_path: Path) -> None:
    from definitionemb.index.exporter import export
    from transformers import AutoModelForMaskedLM

    run, db = real_run
    out = tmp_path / "model"
    covered = np.asarray(run.covered_mask())
    original = np.asarray(run.original_vectors())
    generated = np.asarray(run.token_vectors())
    result = export(run, "hf", "covered", out, db=db, how="replace")
    model = AutoModelForMaskedLM.from_pretrained(str(out))
    w = model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(w[covered], generated[covered])
    np.testing.assert_array_equal(w[~covered], original[~covered])
    assert result.rows_replaced == int(covered.sum())
    shutil.rmtree(out)
    # No policy given: the shipped default, a plain mix, row by row.
    from definitionemb.index.policy import DEFAULT_HOW

    assert DEFAULT_HOW.startswith("mix:")
    alpha = float(DEFAULT_HOW.split(":", 1)[1])
    export(run, "hf", "covered", out, db=db)
    w = AutoModelForMaskedLM.from_pretrained(str(out)).get_input_embeddings().weight.detach().numpy()
    expect = (1 - alpha) * original[covered] + alpha * generated[covered]
    np.testing.assert_allclose(w[covered], expect, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(w[~covered], original[~covered])
    shutil.rmtree(out)
