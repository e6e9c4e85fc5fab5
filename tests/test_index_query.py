"""Neighbours side by side, token resolution, senses near a token, reverse dictionary, neighbour table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from definitionemb.index.errors import TokenNotFound
from definitionemb.index.faiss_index import build
from definitionemb.index.query import neighbors, reverse, reverse_vectors, senses_near
from definitionemb.index.table import neighbors_table
from definitionemb.lexicon.db import connect
from index_support import SENSES, make_lexicon, make_run, random_covered, roberta_pieces

V, D = 6000, 16


@pytest.fixture()
def world(tmp_path: Path):
    db = tmp_path / "lex.duckdb"
    aligned = make_lexicon(db, roberta_pieces(V))
    rng = np.random.default_rng(0)
    original = rng.standard_normal((V, D)).astype(np.float32)
    covered = random_covered(rng, V, 0.3)
    covered[list(aligned.values())] = True
    # One sense vector per SENSES row, placed next to its word's token row (senses of unaligned words random).
    sense_ids = np.arange(1, len(SENSES) + 1, dtype=np.int64)
    sense_vectors = rng.standard_normal((len(SENSES), D)).astype(np.float32)
    run = make_run(
        tmp_path / "run", original, covered, db=db, sense_ids=sense_ids, sense_vectors=sense_vectors
    )
    tokens = np.asarray(run.token_vectors())
    for i, (word, _, _) in enumerate(SENSES):
        if word in aligned:
            sense_vectors[i] = tokens[aligned[word]] + 0.01 * rng.standard_normal(D).astype(np.float32)
    run.save_array("sense_vectors.npy", sense_vectors)
    build(run, "tokens", "Flat", "cosine", progress=False)
    build(run, "senses", "Flat", "cosine", progress=False)
    return run, db, aligned


def _cos_top(base: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, exclude: int) -> np.ndarray:
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    s = b @ (q / np.linalg.norm(q))
    order = [i for i in np.argsort(-s, kind="stable") if ids[i] != exclude][:k]
    return ids[order]


def test_neighbors_side_by_side_equal_brute_force(world) -> None:
    run, db, aligned = world
    frame = neighbors(run, ["cat", "Ġbank", str(aligned["dog"])], k=5)
    assert frame.columns == [
        "query",
        "token_id",
        "piece",
        "rank",
        "generated_id",
        "generated_piece",
        "generated_score",
        "generated_word",
        "generated_rule",
        "original_id",
        "original_piece",
        "original_score",
    ]
    assert frame.height == 15
    cat = frame.filter(pl.col("query") == "cat")
    assert cat["piece"].unique().to_list() == ["Ġcat"] and cat["rank"].to_list() == [1, 2, 3, 4, 5]
    tid = int(cat["token_id"][0])
    covered = np.flatnonzero(np.asarray(run.covered_mask()))
    tv, ov = np.asarray(run.token_vectors()), np.asarray(run.original_vectors())
    np.testing.assert_array_equal(
        cat["generated_id"].to_numpy(), _cos_top(tv[covered], covered, tv[tid], 5, tid)
    )
    non_special = np.arange(4, V)
    np.testing.assert_array_equal(
        cat["original_id"].to_numpy(), _cos_top(ov[4:], non_special, ov[tid], 5, tid)
    )
    assert (frame["generated_id"] != frame["token_id"]).all()
    assert cat["generated_score"].is_sorted(descending=True)
    pieces = roberta_pieces(V)
    assert cat["original_piece"].to_list() == [pieces[i] for i in cat["original_id"].to_list()]
    # each generated neighbour names the word and rule of its first definition, none where it has none
    with duckdb.connect(str(db), read_only=True) as con:
        first = con.execute("SELECT token_id, word, rule FROM token_definition WHERE rank = 1").fetchall()
    expect = {int(t): (w, r) for t, w, r in first}
    wide = neighbors(run, ["cat"], k=int(np.asarray(run.covered_mask()).sum()) - 1)  # every covered token
    got = list(zip(wide["generated_id"], wide["generated_word"], wide["generated_rule"], strict=True))
    assert [expect.get(int(i), (None, None)) for i, _, _ in got] == [(w, r) for _, w, r in got]
    assert ("dog", "exact") in [(w, r) for _, w, r in got]


def test_token_resolution_and_unknown_tokens(world) -> None:
    run, _, aligned = world
    frame = neighbors(run, ["dog", "Ġdog", aligned["dog"]], k=1)
    assert frame["token_id"].to_list() == [aligned["dog"]] * 3
    with pytest.raises(TokenNotFound, match="single-token word"):
        neighbors(run, ["xyzzyplugh"], k=3)
    with pytest.raises(TokenNotFound, match="outside the vocabulary"):
        neighbors(run, [str(V + 5)], k=3)


def test_senses_near_joins_word_and_gloss(world) -> None:
    run, _, _ = world
    frame = senses_near(run, "bank", k=3)
    assert frame.columns == ["token_id", "piece", "rank", "sense_id", "score", "word", "pos", "gloss"]
    top = frame.row(0, named=True)
    assert top["word"] == "bank" and top["gloss"] == "An institution where one can deposit money."
    assert top["piece"] == "Ġbank" and top["score"] > 0.99


def test_reverse_vectors_finds_the_token_of_a_vector(world) -> None:
    run, _, aligned = world
    ov = np.asarray(run.original_vectors())
    q = ov[[aligned["house"], aligned["money"]]] + 0.01
    frame = reverse_vectors(run, q, k=3)
    assert frame.filter(pl.col("rank") == 1)["piece"].to_list() == ["Ġhouse", "Ġmoney"]
    gen = reverse_vectors(run, np.asarray(run.token_vectors())[[aligned["house"]]], k=1, matrix="generated")
    assert gen["token_id"].to_list() == [aligned["house"]]


def test_reverse_refuses_empty_text(world) -> None:
    run, _, _ = world
    with pytest.raises(Exception, match="non-empty definition"):
        reverse(run, "  ", k=3)


def test_neighbor_table_joins_with_definitions_in_sql(world) -> None:
    run, db, aligned = world
    result = neighbors_table(run, db, k=4, progress=False)
    n_cov = int(np.asarray(run.covered_mask()).sum())
    assert result.rows == {"generated": n_cov * 4, "original": (V - 4) * 4}
    con = connect(db)
    try:
        rows = con.execute(
            "SELECT d.word, d.gloss, n.rank, n.neighbor_id, t.piece FROM neighbor n "
            "JOIN token_definition d ON d.token_id = n.token_id AND d.rank = 1 "
            "JOIN token t ON t.tokenizer_id = d.tokenizer_id AND t.token_id = n.neighbor_id "
            "WHERE n.run_id = 'run-a' AND n.matrix = 'generated' AND d.word = 'house' ORDER BY n.rank"
        ).fetchall()
        by_frame = neighbors(run, ["house"], k=4)
        assert [r[3] for r in rows] == by_frame["generated_id"].to_list()
        assert rows[0][1] == "A building where people live." and [r[2] for r in rows] == [1, 2, 3, 4]
    finally:
        con.close()
    # Run it again, plus another run's rows: the run's rows are replaced, not doubled; others are kept.
    with duckdb.connect(str(db)) as raw:
        raw.execute("INSERT INTO neighbor VALUES ('other-run', 'generated', 5, 1, 6, 0.5)")
    neighbors_table(run, db, k=2, matrices=["generated"], progress=False)
    con = connect(db)
    try:
        counts = dict(
            con.execute("SELECT run_id || '/' || matrix, count(*) FROM neighbor GROUP BY 1").fetchall()
        )
    finally:
        con.close()
    assert counts == {"run-a/generated": n_cov * 2, "run-a/original": (V - 4) * 4, "other-run/generated": 1}
    assert aligned  # the fixture aligned real words


def test_neighbor_table_refuses_a_lexicon_of_another_build(world, tmp_path: Path) -> None:
    run, db, _ = world
    other = tmp_path / "other.duckdb"
    make_lexicon(other, roberta_pieces(V))
    with duckdb.connect(str(other)) as raw:
        raw.execute(
            "INSERT INTO source VALUES (9, 'tsv', 'x.tsv', 'abc', 'en', 1, 1, 0, 0, 0.1, 'n1', now())"
        )
    with pytest.raises(Exception, match="was built from lexicon"):
        neighbors_table(run, other, k=2, progress=False)
