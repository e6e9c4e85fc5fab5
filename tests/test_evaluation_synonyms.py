"""`defemb eval synonyms`: the share of a word's dictionary synonyms among its nearest tokens, original
rows against the shipped rows, on a lexicon whose relation table holds real-looking synonym pairs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.evaluation.synonyms import recall_at_k, synonym_recall
from index_support import SPECIAL, make_lexicon, make_run, roberta_pieces

from definitionemb.cli import cli

V, D = 6000, 16
PAIRS = [("dog", "cat"), ("house", "bank"), ("river", "money"), ("dog", "nosuchtokenword")]


def add_synonyms(db: Path, pairs: list[tuple[str, str]]) -> None:
    """Relations from the fabricated lexicon's entries (one per word) to other words."""
    con = duckdb.connect(str(db))
    for word, syn in pairs:
        eid = con.execute("SELECT min(entry_id) FROM entry WHERE word = ?", [word]).fetchall()[0][0]
        con.execute(
            "INSERT INTO relation_links VALUES (?, NULL, 'synonyms', ?)", [eid, json.dumps([{"word": syn}])]
        )
    con.close()


def synonym_run(tmp_path: Path) -> tuple[Path, Path, dict[str, int]]:
    pieces = roberta_pieces(V)
    db = tmp_path / "lex.duckdb"
    make_lexicon(db, pieces)
    add_synonyms(db, PAIRS)
    ids = {p[1:]: i for i, p in enumerate(pieces) if p.startswith("Ġ")}
    rng = np.random.default_rng(0)
    original = rng.standard_normal((V, D)).astype(np.float32)
    for a, b in PAIRS[:3]:  # in the original rows each word sits next to its synonym
        original[ids[a]] = original[ids[b]] + 0.01 * rng.standard_normal(D).astype(np.float32)
    covered = np.zeros(V, dtype=bool)
    covered[[ids[a] for a, _ in PAIRS[:3]]] = True  # the generated rows of the first words: noise
    covered[list(SPECIAL[:4])] = False
    make_run(tmp_path / "run", original, covered, db=db)
    return tmp_path / "run", db, ids


def test_recall_counts_synonyms_among_the_nearest(tmp_path: Path) -> None:
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.rows import run_matrices

    run_dir, db, ids = synonym_run(tmp_path)
    run = RunDir.open(run_dir)
    res = synonym_recall(run, run_matrices(run, db, "covered", ["replace"]), db, k=1)
    assert res["words"] == 3 and res["pairs"] == 3  # the word that is no token is left out
    assert res["recall"]["original"] == 1.0 and res["recall"]["replace"] < 0.5
    d = res["delta"]["replace"]
    assert (
        d["mean"] == pytest.approx(res["recall"]["replace"] - 1.0)
        and d["ci95"][0] <= d["mean"] <= d["ci95"][1]
    )
    m = np.eye(4, dtype=np.float32)
    m[1] = m[0] + 0.1
    assert recall_at_k(m, {0: {1, 2}}, k=1) == {0: 0.5}
    exclude = np.array([False, True, False, False])
    assert recall_at_k(m, {0: {1}}, k=1, exclude=exclude) == {0: 0.0}


def test_cli_and_a_lexicon_without_synonyms(tmp_path: Path) -> None:
    run_dir, db, _ = synonym_run(tmp_path)
    res = CliRunner().invoke(
        cli, ["eval", "synonyms", "--run", str(run_dir), "-k", "1", "--how", "replace", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["recall"]["original"] == 1.0 and "replace" in out["delta"]
    assert (run_dir / "report" / "results" / "synonyms.json").is_file()
    table = CliRunner().invoke(
        cli, ["eval", "synonyms", "--run", str(run_dir), "-k", "1", "--how", "replace"]
    )
    assert table.exit_code == 0 and "recall@1" in table.stdout and "shape:" not in table.stdout
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM relation_links")
    con.close()
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.rows import run_matrices

    run = RunDir.open(run_dir)
    with pytest.raises(EvaluationError, match="no synonym pair"):
        synonym_recall(run, run_matrices(run, db, "covered", ["replace"]), db)
