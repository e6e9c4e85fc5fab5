"""The reverse dictionary over every headword, on a small real lexicon and a tiny trained run.

The base model is the tiny random BERT made a sentence encoder (sentence-transformers' modules.json and
mean pooling), so every scorer runs its real code path; a query that is a word's own gloss finds that
word through its gloss embedding whatever the weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from definitionemb.index.errors import IndexMismatch, IndexStageError
from definitionemb.lexicon.errors import OutputError
from test_embedder_support import trained_run

from definitionemb.cli import cli as defemb_cli


def _make_sentence_encoder(src: Path, out: Path) -> Path:
    shutil.copytree(src, out)
    (out / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ]
        )
    )
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    return out


def _trained_run(work: Path, model: Path) -> tuple[Path, Path]:
    """The small real lexicon aligned to `model`, a 2-step run on it and its generated rows."""
    return trained_run(work, model, steps=2, warmup=1, eval_every=2, ckpt_every=2, ridge_examples=100)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path):
    work = tmp_path_factory.mktemp("reverse")
    run, db = _trained_run(work, _make_sentence_encoder(tiny_bert_dir, work / "tiny-st"))
    cache = work / "cache"
    from definitionemb.index.reverse_dictionary import build_reverse

    build_reverse(run, cache_dir=cache, progress=False)
    return run, db, cache


def _rd(world):  # type: ignore[no-untyped-def]
    from definitionemb.index.reverse_dictionary import ReverseDictionary

    run, db, cache = world
    return ReverseDictionary(run, cache_dir=cache, device="cpu", precision="float32")


def _gloss_of(db: Path, word: str) -> str:
    from definitionemb.lexicon.db import connect

    con = connect(db)
    try:
        row = con.execute(
            "SELECT s.gloss FROM sense s JOIN entry e USING (entry_id) WHERE e.word = ? ORDER BY s.sense_id",
            [word],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return str(row[0])


def _split_word(rd) -> str:  # type: ignore[no-untyped-def]
    """A word the tokenizer splits and English uses (the default combination's frequency prior holds
    words no corpus has far down; the tiny random encoder's gloss match alone cannot lift them)."""
    hw = rd.headwords
    split = [
        str(w)
        for w, t, z in zip(hw.words.tolist(), rd.token_ids.tolist(), rd.zipf.tolist(), strict=True)
        if t < 0 and z >= 1.5
    ]
    assert split, "the test lexicon must hold words the tokenizer splits"
    return sorted(split, key=len)[len(split) // 2]


def test_a_split_word_is_found_from_its_gloss(world) -> None:
    rd = _rd(world)
    word = _split_word(rd)
    gloss = _gloss_of(world[1], word)
    frame = rd.search(gloss, k=5)
    assert frame.columns[:7] == ["query", "rank", "word", "score", "pos", "gloss", "single_token"]
    hit = frame.filter(pl.col("word") == word)
    assert hit.height == 1, frame
    assert hit["single_token"].to_list() == [False] and hit["token_id"].null_count() == 1
    alone = rd.search(gloss, k=1, scorers=["glosses"])
    assert alone["word"].to_list() == [word] and alone["gloss"].to_list() == [gloss]
    assert alone["score"][0] == pytest.approx(1.0, abs=1e-4)


def test_candidates_are_every_headword(world) -> None:
    from definitionemb.lexicon.db import connect

    rd = _rd(world)
    con = connect(world[1])
    try:
        n = con.execute(
            "SELECT count(DISTINCT e.word) FROM entry e JOIN sense s USING (entry_id) WHERE s.gloss IS NOT NULL"
        ).fetchone()[0]
    finally:
        con.close()
    assert rd.headwords.n_words == n and 0 < rd.manifest.n_single_token < n


def test_query_words_are_excluded_unless_asked(world) -> None:
    rd = _rd(world)
    word = _split_word(rd)
    query = f"{word}: {_gloss_of(world[1], word)}"
    assert word not in rd.search(query, k=20)["word"].to_list()
    kept = rd.search(query, k=20, include_query_words=True)["word"].to_list()
    assert word in kept


def test_scores_sorted_and_ranks_dense(world) -> None:
    rd = _rd(world)
    frame = rd.search(["a small domestic animal", "the act of moving quickly"], k=15)
    for q in (0, 1):
        part = frame.filter(pl.col("query") == q)
        assert part["rank"].to_list() == list(range(1, 16))
        assert part["score"].is_sorted(descending=True)
        assert part["word"].n_unique() == 15


def test_batch_mode_equals_single_queries(world, tmp_path: Path) -> None:
    from definitionemb.index.reverse_dictionary import reverse_batch, reverse_words

    run, db, cache = world
    queries = ["a small domestic animal", "to hit with the hand", _gloss_of(db, _split_word(_rd(world)))]
    src = tmp_path / "defs.txt"
    src.write_text("\n".join(queries) + "\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    # The sentence scorers: this random model's regressor gives every text nearly the same vector, so the
    # z-scores of `tokens`/`senses` magnify float noise (~1e-7) into rank swaps; their raw scores are
    # compared below instead.
    sent = ["glosses", "headwords"]
    res = reverse_batch(run, src, 7, out, scorers=sent, cache_dir=cache, progress=False)
    assert res.queries == 3 and res.rows == 21
    batch = pl.read_parquet(out)
    assert batch.columns[:7] == ["query", "rank", "word", "score", "pos", "gloss", "single_token"]
    for i, q in enumerate(queries):
        single = reverse_words(run, q, k=7, scorers=sent, cache_dir=cache)
        part = batch.filter(pl.col("query") == i)
        assert part.drop("query", "score").equals(single.drop("query", "score"))
        np.testing.assert_allclose(part["score"].to_numpy(), single["score"].to_numpy(), rtol=0, atol=1e-4)
    rd = _rd(world)
    together = rd.sense_scores(queries)
    for i, q in enumerate(queries):
        alone = rd.sense_scores([q])
        for name, arr in together.items():
            np.testing.assert_allclose(arr[i], alone[name][0], rtol=1e-4, atol=1e-6, err_msg=name)
    with pytest.raises(OutputError, match="exists"):
        reverse_batch(run, src, 7, out, cache_dir=cache, progress=False)
    cli = CliRunner().invoke(
        defemb_cli,
        [
            "reverse",
            "--run",
            str(run),
            "--input",
            str(src),
            "-k",
            "7",
            "--out",
            str(tmp_path / "cli.parquet"),
            "--cache-dir",
            str(cache),
            "--json",
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["rows"] == 21
    assert pl.read_parquet(tmp_path / "cli.parquet").height == 21


def test_query_without_letters_is_a_clear_error(world, tmp_path: Path) -> None:
    rd = _rd(world)
    with pytest.raises(IndexStageError, match="no letters"):
        rd.search("12 34 ?!", k=3)
    src = tmp_path / "defs.txt"
    src.write_text("a small dog\n1234\n", encoding="utf-8")
    from definitionemb.index.reverse_dictionary import reverse_batch

    with pytest.raises(IndexStageError, match="line 2"):
        reverse_batch(world[0], src, 3, tmp_path / "o.parquet", cache_dir=world[2], progress=False)
    assert not (tmp_path / "o.parquet").exists()
    cli = CliRunner().invoke(
        defemb_cli, ["reverse", "--run", str(world[0]), "--cache-dir", str(world[2]), "---"]
    )
    assert cli.exit_code != 0


def test_pos_filter_and_cli_json(world) -> None:
    run, db, cache = world
    rd = _rd(world)
    frame = rd.search("a small domestic animal", k=10, pos="noun")
    assert set(frame["pos"].to_list()) == {"noun"}
    with pytest.raises(IndexStageError, match="part of speech"):
        rd.search("a small domestic animal", k=3, pos="nonsense")
    cli = CliRunner().invoke(
        defemb_cli,
        [
            "index",
            "reverse",
            "--run",
            str(run),
            "a small domestic animal",
            "-k",
            "4",
            "--cache-dir",
            str(cache),
            "--json",
        ],
    )
    assert cli.exit_code == 0, cli.output
    rows = json.loads(cli.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and {"word", "gloss", "single_token"} <= set(rows[0])


def test_stale_indexes_are_refused(world, tmp_path: Path) -> None:
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.index.reverse_dictionary import ReverseDictionary, build_reverse

    run, db, cache = world
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (tmp_path / db.name).symlink_to(db)  # the copy's manifest names its lexicon relative to the run
    r = RunDir.open(copy)
    sv = np.asarray(r.sense_vectors()).copy()
    r.save_array("sense_vectors.npy", sv[::-1].copy())
    with pytest.raises(IndexMismatch, match="stale.*sense_vectors.npy"):
        ReverseDictionary(copy, cache_dir=cache)
    cli = CliRunner().invoke(defemb_cli, ["reverse", "--run", str(copy), "a dog", "--cache-dir", str(cache)])
    assert cli.exit_code == 1 and "--rebuild" in cli.output
    build_reverse(copy, cache_dir=cache, progress=False)
    assert ReverseDictionary(copy, cache_dir=cache).search("a dog", k=2).height == 2
    # The shared gloss cache is checked too: a changed vectors file is refused.
    vec = Path(ReverseDictionary(copy, cache_dir=cache).manifest.glosses or "") / "vectors.npy"
    arr = np.load(vec)
    np.save(vec, arr[::-1].copy())
    try:
        with pytest.raises(IndexStageError, match="changed"):
            ReverseDictionary(copy, cache_dir=cache)
    finally:
        np.save(vec, arr)


def test_tokens_scorer_builds_nothing_heavy_and_more_scorers_build_on_demand(world, tmp_path: Path) -> None:
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.index.errors import IndexMissing
    from definitionemb.index.reverse_dictionary import SCORERS, ReverseDictionary, ensure_reverse

    run, db, cache = world
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("index", "sense_*.npy"))
    (tmp_path / db.name).symlink_to(db)  # the copy's manifest names its lexicon relative to the run
    fresh_cache = tmp_path / "cache"
    with pytest.raises(IndexMissing, match="build it with"):  # opening never builds
        ReverseDictionary(copy, cache_dir=fresh_cache, scorers=["tokens"])
    ensure_reverse(copy, cache_dir=fresh_cache, progress=False, scorers=["tokens"])
    rd = ReverseDictionary(copy, cache_dir=fresh_cache, scorers=["tokens"])
    assert rd.manifest.scorers == ["tokens"] and rd.scorers == ("tokens",)
    assert not (copy / "sense_vectors.npy").exists() and not fresh_cache.exists()
    frame = rd.search("a small domestic animal", k=5)
    assert frame["single_token"].all() and frame["score"].is_sorted(descending=True)
    ensure_reverse(copy, cache_dir=fresh_cache, progress=False)  # the other scorers, added on demand
    full = ReverseDictionary(copy, cache_dir=fresh_cache)
    assert full.manifest.scorers == list(SCORERS)
    assert RunDir.open(copy).sense_vectors().shape[0] == full.headwords.n_senses
    assert (fresh_cache / "sentence").is_dir()


def test_frequency_prior_is_wordfreq_and_lifts_common_words(world, tmp_path: Path) -> None:
    import wordfreq
    from definitionemb.index.reverse_dictionary import ZIPF_CAP, ReverseDictionary

    rd = _rd(world)
    assert "frequency" in rd.scorers and rd.manifest.frequency.startswith("wordfreq ")
    assert rd.zipf is not None
    for i in (0, len(rd.zipf) // 2, len(rd.zipf) - 1):
        word = str(rd.headwords.words[i])
        assert rd.zipf[i] == pytest.approx(wordfreq.zipf_frequency(word, "en"), abs=1e-5)
    # Alone, the prior ranks by Zipf frequency up to the cap (its raw value is the score).
    alone = rd.search("a small domestic animal", k=10, scorers=["frequency"])
    assert alone["score"].is_sorted(descending=True)
    assert alone["score"][0] == pytest.approx(min(float(rd.zipf.max()), ZIPF_CAP), abs=1e-5)
    assert (rd.zipf > ZIPF_CAP).sum() >= 10 and (alone["score"] == np.float32(ZIPF_CAP)).all()
    # Added to the glosses, it moves common words up and leaves a pure-glosses search as it was.
    queries = ["the act of moving quickly", "a small domestic animal", "a thing of little value"]
    plain = rd.search(queries, k=30, weights={"glosses": 1.0})
    lifted = rd.search(queries, k=30, weights={"glosses": 1.0, "frequency": 1.0})
    rare = {
        str(w) for w, z in zip(rd.headwords.words.tolist(), rd.zipf.tolist(), strict=True) if z < ZIPF_CAP
    }
    assert len(rare) >= 30, "the test lexicon must hold words English rarely uses"
    n_rare = lambda f: sum(w in rare for w in f["word"].to_list())  # noqa: E731
    assert n_rare(lifted) < n_rare(plain)
    same = rd.search(queries, k=30, scorers=["glosses"])
    assert plain["word"].to_list() == same["word"].to_list()
    # Frequencies from another wordfreq are stale.
    run, db, cache = world
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (tmp_path / db.name).symlink_to(db)  # the copy's manifest names its lexicon relative to the run
    man_path = copy / "index" / "reverse" / "manifest.json"
    man = json.loads(man_path.read_text())
    man["frequency"] = "wordfreq 0.1"
    man_path.write_text(json.dumps(man))
    with pytest.raises(IndexMismatch, match="word frequencies come from wordfreq 0.1"):
        ReverseDictionary(copy, cache_dir=cache)


def test_word_max_equals_a_plain_loop(world) -> None:
    rd = _rd(world)
    hw = rd.headwords
    rng = np.random.default_rng(0)
    by_sense = rng.standard_normal((hw.n_senses, 3)).astype(np.float32)
    want = np.stack([by_sense[hw.senses_of(w)].max(axis=0) for w in range(hw.n_words)], axis=1)
    assert np.array_equal(hw.word_max(by_sense.T), want)  # the transposed view, as search makes it
    assert np.array_equal(hw.word_max(np.ascontiguousarray(by_sense.T)), want)  # a plain n×S array
    assert any(len(hw.senses_of(w)) > 1 for w in range(hw.n_words))


def test_bfloat16_search_agrees_with_float32(world) -> None:
    from definitionemb.index.reverse_dictionary import ReverseDictionary

    run, db, cache = world
    exact = _rd(world)
    fast = ReverseDictionary(run, cache_dir=cache, device="cpu", precision="bfloat16")
    words = [str(w) for w in exact.headwords.words[:: max(1, exact.headwords.n_words // 12)]]
    queries = [_gloss_of(db, w) for w in words]
    a = exact.search(queries, k=1, scorers=["glosses"])
    b = fast.search(queries, k=1, scorers=["glosses"])
    # The tiny random encoder puts many glosses within bfloat16's rounding of each other: near-ties may
    # swap, so most (not all) winners agree and every score agrees to bfloat16 precision.
    same = np.mean([x == y for x, y in zip(a["word"].to_list(), b["word"].to_list(), strict=True)])
    assert same >= 0.75
    assert np.allclose(b["score"].to_numpy(), a["score"].to_numpy(), atol=2e-2)
    with pytest.raises(IndexStageError, match="precision"):
        ReverseDictionary(run, cache_dir=cache, precision="float16")


def test_bm25_weights_match_the_formula_and_survive_a_save(tmp_path: Path) -> None:
    import math

    from definitionemb.index.lexical import K1, B, GlossBM25

    glosses = ["A small dog.", "A dog that barks, a loud dog", "The sesame seed", "Of or relating to dogs"]
    bm = GlossBM25.build(glosses)
    docs = [[w.casefold() for w in g.replace(".", " ").replace(",", " ").split()] for g in glosses]
    avg = sum(map(len, docs)) / len(docs)

    def want(query: str, d: list[str]) -> float:
        total = 0.0
        for t in set(query.casefold().split()):
            df = sum(t in x for x in docs)
            if not df:
                continue
            tf = d.count(t)
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            total += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(d) / avg))
        return total

    queries = ["a loud dog", "sesame", "zebra"]
    got = bm.scores(queries)
    assert got.shape == (len(glosses), len(queries))
    expect = np.array([[want(q, d) for q in queries] for d in docs], dtype=np.float32)
    assert np.allclose(got, expect, atol=1e-5)
    assert (got[:, 2] == 0).all()  # no gloss has the word: no score, no error
    path = tmp_path / "lexical.npz"
    bm.save(path)
    back = GlossBM25.load(path, n_senses=len(glosses))
    assert back.spec == bm.spec and np.array_equal(back.scores(queries), got)
    with pytest.raises(IndexMismatch, match="indexes 4 glosses"):
        GlossBM25.load(path, n_senses=5)


def test_lexical_scorer_finds_the_word_whose_gloss_holds_a_rare_query_word(world) -> None:
    rd = _rd(world)
    assert "lexical" in rd.scorers and rd.lexical is not None
    hw = rd.headwords
    # A word whose gloss holds a term no other gloss has: that term alone finds it.
    df = np.diff(rd.lexical.weights.indptr)
    unique = [str(t) for t, n in zip(rd.lexical.terms.tolist(), df.tolist(), strict=True) if n == 1]
    term = next(t for t in unique if len(t) > 6 and t.isalpha())
    col = int(np.flatnonzero(rd.lexical.terms == term)[0])
    sense = int(rd.lexical.weights.indices[rd.lexical.weights.indptr[col]])
    word = str(hw.words[hw.sense_word[sense]])
    if word.casefold() == term:
        pytest.skip("the rare term is the headword itself (left out as a query word)")
    top = rd.search(term, k=1, scorers=["lexical"])
    assert top["word"][0] == word and top["gloss"][0] == str(hw.gloss[sense])


def test_lemma_prior_is_the_share_of_a_words_own_senses(world) -> None:
    from definitionemb.lexicon.db import connect

    rd = _rd(world)
    assert rd.lemma is not None and rd.lemma.shape == (rd.headwords.n_words,)
    _, db, _ = world
    con = connect(db)
    try:
        rows = con.execute(
            """SELECT e.word, avg(CASE WHEN s.form_of IS NULL AND s.alt_of IS NULL THEN 1.0 ELSE 0.0 END)
               FROM sense s JOIN entry e USING (entry_id) WHERE s.gloss IS NOT NULL GROUP BY e.word"""
        ).fetchall()
    finally:
        con.close()
    want = dict(rows)
    got = {str(w): float(v) for w, v in zip(rd.headwords.words.tolist(), rd.lemma.tolist(), strict=True)}
    assert got.keys() == want.keys()
    assert all(abs(got[w] - want[w]) < 1e-6 for w in want)
    # Words that are only another word's form, words with only their own senses, and mixes are there.
    assert min(got.values()) == 0.0 and max(got.values()) == 1.0
    assert any(0.0 < v < 1.0 for v in got.values())


def test_a_many_clause_query_is_the_mean_of_whole_and_clauses(world) -> None:
    from definitionemb.index.headwords import query_clauses

    assert query_clauses("vote against ; refuse to endorse ; 42") == ["vote against", "refuse to endorse"]
    assert query_clauses("a dog; ") == ["a dog;"] and query_clauses(" a dog ") == ["a dog"]
    rd = _rd(world)
    q = "a small dog ; a loyal pet"
    whole, a, b = rd._encode([q, "a small dog", "a loyal pet"])
    v = 0.5 * whole + 0.25 * (a + b)
    assert np.allclose(rd._sentence([q])[0], v / np.linalg.norm(v), atol=1e-6)
    assert np.allclose(rd._sentence([q], clauses=False)[0], whole, atol=1e-6)
    plain = rd.sense_scores([q], scorers=["glosses"], clauses=False)["glosses"]
    assert np.allclose(plain, rd._by_sense("glosses", whole[None, :]).T, atol=1e-6)


def test_cli_scorer_choices_are_the_library_scorers() -> None:
    from definitionemb.index.reverse_dictionary import DEFAULT_WEIGHTS, NO_SENTENCE_WEIGHTS, SCORERS

    from definitionemb.cli_reverse import reverse

    opt = next(p for p in reverse.params if p.name == "scorers")
    assert tuple(opt.type.choices) == SCORERS  # type: ignore[attr-defined]
    assert set(DEFAULT_WEIGHTS) == set(SCORERS)
    assert set(NO_SENTENCE_WEIGHTS) <= set(SCORERS) - {"glosses", "headwords"}
    from definitionemb.index.reverse_dictionary import RERANK

    from definitionemb.cli_reverse import RERANK_DEFAULT

    assert RERANK_DEFAULT == RERANK


def test_fusion_equals_the_weighted_sum_of_z_scores() -> None:
    from definitionemb.index.reverse_dictionary import ReverseDictionary, zscore

    rng = np.random.default_rng(0)
    n, w = 5, 400
    glosses = rng.standard_normal((n, w)).astype(np.float32)
    senses = rng.standard_normal((w, n)).astype(np.float32).T  # a transposed view, as word_max returns
    tokens = rng.standard_normal((n, w)).astype(np.float32)
    tokens[:, ::3] = np.nan  # split words have no token score
    prior = np.broadcast_to(rng.random(w).astype(np.float32), (n, w))
    scores = {"glosses": glosses, "senses": senses, "tokens": tokens, "frequency": prior}
    weights = {"glosses": 1.0, "senses": 0.3, "tokens": 0.05, "frequency": 2.0}
    want = (
        zscore(glosses, -np.inf)
        + 0.3 * zscore(np.ascontiguousarray(senses), -np.inf)
        + 0.05 * zscore(tokens, 0.0)
        + 2.0 * zscore(np.ascontiguousarray(prior[:1]), -np.inf)
    )
    sds: dict[str, np.ndarray] = {}
    got = ReverseDictionary.fuse(scores, weights, token_missing=0.0, sds=sds)
    assert got.shape == (n, w) and np.allclose(got, want, atol=1e-5)
    assert np.allclose(sds["senses"], np.ascontiguousarray(senses).std(axis=1), atol=1e-6)
    # A filtered-out word (-inf) stays out; the others are fused as before.
    masked = glosses.copy()
    masked[:, 7] = -np.inf
    out = ReverseDictionary.fuse({**scores, "glosses": masked}, weights, token_missing=0.0)
    assert np.isneginf(out[:, 7]).all() and np.isfinite(np.delete(out, 7, axis=1)).all()


def _plain_z(row: list[float], missing: float) -> list[float]:
    """A z-score written out by hand: mean and population sd over the finite values of one row."""
    vals = [v for v in row if np.isfinite(v)]
    mu = sum(vals) / len(vals)
    sd = max((sum((v - mu) ** 2 for v in vals) / len(vals)) ** 0.5, 1e-9)
    return [missing if np.isnan(v) else (-np.inf if not np.isfinite(v) else (v - mu) / sd) for v in row]


def test_fusion_room_against_a_plain_loop() -> None:
    """`fusion.fuse` and `fusion.sense_scales` (torch kernels over arrays) against loops over Python floats."""
    from definitionemb.index.reverse_dictionary import fusion

    rng = np.random.default_rng(1)
    n, w = 3, 50
    a = rng.standard_normal((n, w)).astype(np.float32)
    b = rng.standard_normal((n, w)).astype(np.float32)
    b[:, ::4] = np.nan
    a[1, 3] = -np.inf
    weights = {"glosses": 0.7, "tokens": 0.2}
    got = fusion.fuse({"glosses": a, "tokens": b}, weights, token_missing=-0.5)
    for i in range(n):
        za = _plain_z(a[i].tolist(), -np.inf)
        zb = _plain_z(b[i].tolist(), -0.5)
        want = [0.7 * x + 0.2 * y for x, y in zip(za, zb, strict=True)]
        np.testing.assert_allclose(got[i], np.asarray(want, dtype=np.float32), rtol=0, atol=1e-4)
    sc = fusion.sense_scales({"glosses": a}, {"glosses": 0.7})
    for i in range(n):
        vals = [v for v in a[i].tolist() if np.isfinite(v)]
        mu = sum(vals) / len(vals)
        sd = (sum((v - mu) ** 2 for v in vals) / len(vals)) ** 0.5
        assert sc["glosses"][i] == pytest.approx(0.7 / sd, rel=1e-4)
    top = fusion.top_k(np.asarray([[0.1, 0.9, 0.5, 0.7]], dtype=np.float32), 2)
    assert sorted(top[0].tolist()) == [1, 3]


def test_a_run_of_a_plain_encoder_gets_the_regressor_lexical_and_prior_scorers(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    """A base model that is no sentence encoder (RoBERTa, BART, a plain BERT) has no gloss or headword
    embeddings; the reverse dictionary still answers, from the regressor, BM25 and the priors."""
    from definitionemb.index.reverse_dictionary import NO_SENTENCE_WEIGHTS, ReverseDictionary, build_reverse

    run, _ = _trained_run(tmp_path, tiny_bert_dir)
    build_reverse(run, cache_dir=tmp_path / "cache", progress=False)
    rd = ReverseDictionary(run, cache_dir=tmp_path / "cache", device="cpu")
    assert rd.scorers == ("tokens", "senses", "lexical", "frequency", "lemma")
    assert rd._weights(None, None) == {s: v for s, v in NO_SENTENCE_WEIGHTS.items() if v}
    assert not (tmp_path / "cache").exists()  # nothing sentence-level was built
    frame = rd.search(["a young dog", "the act of moving quickly"], k=5)
    assert frame.height == 10 and frame.filter(pl.col("query") == 0)["score"].is_sorted(descending=True)
    with pytest.raises(IndexStageError, match="sentence-encoder"):
        rd.search("a young dog", scorers=["glosses"])


def test_second_pass_rescoring_equals_scoring_every_word(world) -> None:
    """The two-pass search gives the first pass's best words the remaining scorers; with every word in
    the statistics sample (this lexicon is smaller than it) each answer's score is the one exhaustive
    scoring gives, and a cut past the answers changes nothing."""
    import definitionemb.index.reverse_dictionary.dictionary as R

    run, db, cache = world
    rd = _rd(world)
    n = rd.headwords.n_words
    assert n <= R._SAMPLE and set(R.SECOND_PASS) <= set(rd.scorers)
    queries = ["a small domestic animal", "to hit with the hand", _gloss_of(db, _split_word(rd))]
    # The tiny random regressor gives every sense nearly the same vector (cosines 0.99999 ± 1e-5), so the
    # `senses` z-scores would be float noise; the other second-pass scorers carry the comparison.
    w = {s: v for s, v in rd._weights(None, None).items() if s != "senses"}
    assert {"lexical", "headwords"} <= set(w)
    every = rd.search(queries, k=n, rerank=0, weights=w)
    for cut in (40, n - 1):
        two = rd.search(queries, k=10, rerank=cut, weights=w)
        assert two.height == 30
        got = two.join(every, on=["query", "word"], suffix="_all")
        assert got.height == 30
        np.testing.assert_allclose(got["score"].to_numpy(), got["score_all"].to_numpy(), rtol=0, atol=2e-3)
        assert got["gloss"].to_list() == got["gloss_all"].to_list()  # the same best sense
    assert two["word"].to_list() == every.filter(pl.col("rank") <= 10)["word"].to_list()
    wide = rd.search(queries, k=60, rerank=40, weights=w)  # a k past the cut still gets k answers
    assert wide.filter(pl.col("query") == 0).height == 60
    pos = rd.search(queries, k=5, rerank=40, pos="noun")  # every default scorer, senses too
    assert set(pos["pos"].to_list()) == {"noun"}
    with pytest.raises(IndexStageError, match="rerank"):
        rd.search(queries, rerank=-1)


def test_rows_of_and_bm25_rows_match_their_full_versions(world) -> None:
    from definitionemb.index.lexical import GlossBM25

    rd = _rd(world)
    hw = rd.headwords
    words = np.asarray([5, 0, hw.n_words - 1, 17])
    rows, seg = hw.rows_of(words)
    assert rows.tolist() == [r for w in words for r in hw.senses_of(int(w)).tolist()]
    assert seg.tolist() == [i for i, w in enumerate(words) for _ in hw.senses_of(int(w))]
    bm = rd.lexical
    assert isinstance(bm, GlossBM25)
    texts = ["a small domestic animal", "to hit with the hand"]
    np.testing.assert_allclose(bm.scores_of(rows, texts), bm.scores(texts)[rows], rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["table", "csv", "tsv", "nl", "json"])
def test_reverse_answers_in_every_format(world, fmt: str, tmp_path: Path) -> None:
    run, _, cache = world
    base = ["reverse", "--run", str(run), "a small domestic animal", "-k", "3", "--cache-dir", str(cache)]
    res = CliRunner().invoke(defemb_cli, [*base, "--fmt", fmt])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    if fmt == "json":
        assert [r["rank"] for r in json.loads(res.stdout)] == [1, 2, 3]
    elif fmt == "nl":
        assert [json.loads(x)["rank"] for x in lines] == [1, 2, 3]
    elif fmt in ("csv", "tsv"):
        assert len(lines) == 4 and "word" in lines[0].split("," if fmt == "csv" else "\t")
    else:
        assert len(lines) == 5 and "shape:" not in res.stdout and lines[0].split()[:2] == ["rank", "word"]
    if fmt == "csv":  # one definition's answers, and a batch, into a CSV file
        out = tmp_path / "one.csv"
        assert CliRunner().invoke(defemb_cli, [*base, "--out", str(out)]).exit_code == 0
        assert pl.read_csv(out).height == 3
        src = tmp_path / "defs.txt"
        src.write_text("a small dog\nto walk slowly\n", encoding="utf-8")
        batch = tmp_path / "batch.csv"
        batch_args = [*base[:3], "--input", str(src), "-k", "2", "--out", str(batch), *base[-2:]]
        res = CliRunner().invoke(defemb_cli, batch_args)  # base: reverse --run R TEXT -k 3 --cache-dir C
        assert res.exit_code == 0, res.output
        # nothing but the outputs and, for each, its hidden ownership sidecar (core.fileio.owned)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert pl.read_csv(batch).height == 4 and [n for n in names if not n.startswith(".")] == [
            "batch.csv",
            "defs.txt",
            "one.csv",
        ]
        assert [n for n in names if n.startswith(".")] == [
            ".batch.csv.definitionemb.json",
            ".one.csv.definitionemb.json",
        ]
