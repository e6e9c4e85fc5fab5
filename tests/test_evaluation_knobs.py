"""Choosing α on development parts: the split, that the choice never reads a test pair, that it finds
the informative rows, the wins arithmetic, and `defemb eval knobs` / `wordsim` over a folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_support import invoke, invoke_json
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.evaluation.knobs import (
    choose_for_use,
    choose_how,
    neighbours_kept,
    pair_part,
    split_pairs,
    wins,
    wins_line,
)
from definitionemb.evaluation.wordsim import WordPairs, read_pairs
from evaluation_support import DATA, make_lexicon, make_run

TOK_DIR = Path(__file__).parent / "data" / "minilm-tokenizer"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TOK_DIR))


def _vocab_words(n: int, seed: int) -> list[str]:
    words = [
        w
        for w in (TOK_DIR / "vocab.txt").read_text().split("\n")
        if w.isalpha() and w.islower() and len(w) > 3
    ]
    return list(np.random.default_rng(seed).choice(words, size=n, replace=False))


def _synthetic(tokenizer, signal: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, WordPairs]:
    """Rows and a pair set whose gold scores follow the `signal` rows ("generated" or "original")."""
    rng = np.random.default_rng(seed)
    v, d = len(tokenizer), 16
    original = rng.standard_normal((v, d)).astype(np.float32)
    generated = rng.standard_normal((v, d)).astype(np.float32)
    mask = np.ones(v, dtype=bool)
    words = _vocab_words(400, seed)
    w1, w2 = words[:200], words[200:]
    ids1 = [tokenizer.convert_tokens_to_ids(w) for w in w1]
    ids2 = [tokenizer.convert_tokens_to_ids(w) for w in w2]
    src = generated if signal == "generated" else original
    u = src / np.linalg.norm(src, axis=1, keepdims=True)
    gold = (u[ids1] * u[ids2]).sum(axis=1) + 0.05 * rng.standard_normal(200)
    return original, generated, mask, WordPairs("synthetic", tuple(w1), tuple(w2), gold)


def test_split_is_fixed_by_the_words_alone() -> None:
    assert pair_part("Tiger", "cat") == pair_part("cat", "tiger")
    pairs = read_pairs(DATA / "word-similarity" / "EN-RW-STANFORD-head200.txt")
    dev, test = split_pairs(pairs)
    assert len(dev.score) + len(test.score) == 200 and 40 < len(dev.score) < 95
    both = set(zip(dev.word1, dev.word2, strict=True)) & set(zip(test.word1, test.word2, strict=True))
    assert not both
    rev = WordPairs("r", pairs.word1[::-1], pairs.word2[::-1], pairs.score[::-1])
    assert sorted(split_pairs(rev)[0].word1) == sorted(dev.word1)  # file order does not matter


def test_choice_never_reads_the_test_part(tokenizer, tmp_path: Path) -> None:
    original, generated, mask, pairs = _synthetic(tokenizer, "generated")
    first = choose_how(original, generated, mask, tokenizer, [pairs], neighbours=False)
    # Scramble every test-part gold score: the development curve and the choice must not move.
    rng = np.random.default_rng(5)
    score = pairs.score.copy()
    test = np.array([pair_part(a, b) == "test" for a, b in zip(pairs.word1, pairs.word2, strict=True)])
    score[test] = rng.permutation(score[test]) * -3.0
    second = choose_how(
        original,
        generated,
        mask,
        tokenizer,
        [WordPairs(pairs.name, pairs.word1, pairs.word2, score)],
        neighbours=False,
    )
    assert second.chosen == first.chosen and second.dev == first.dev
    assert second.test != first.test  # the test curve is scored, only after the choice
    assert first.pairs["synthetic"]["dev"] + first.pairs["synthetic"]["test"] == 200


def test_choice_follows_the_informative_rows(tokenizer) -> None:
    o, g, m, pairs = _synthetic(tokenizer, "generated", seed=1)
    got = choose_how(o, g, m, tokenizer, [pairs], neighbours=False)
    assert float(got.chosen.split(":")[1]) >= 0.5 and got.dev_value > got.original_dev_value + 0.3
    o, g, m, pairs = _synthetic(tokenizer, "original", seed=2)
    got = choose_how(o, g, m, tokenizer, [pairs], neighbours=False)
    assert float(got.chosen.split(":")[1]) <= 0.1  # the original rows carry the signal: stay near them
    assert "development third" in got.reason and got.chosen in got.dev


def test_guard_keeps_the_rare_rows_as_isotropic_as_the_original(tokenizer) -> None:
    o, g, m, pairs = _synthetic(tokenizer, "generated", seed=1)
    free = choose_how(o, g, m, tokenizer, [pairs], neighbours=False)
    rare = np.zeros(len(m), dtype=bool)
    rare[-3000:] = True
    rare[[tokenizer.convert_tokens_to_ids(w) for w in pairs.word1 + pairs.word2]] = False  # rows no pair uses
    # Generated rare rows that copy the original ones leave I(W) as it was: the choice is unchanged.
    same = g.copy()
    same[rare] = o[rare]
    kept = choose_how(o, same, m, tokenizer, [pairs], neighbours=False, guard_rows=rare)
    assert kept.chosen == free.chosen and kept.guard["original"] == pytest.approx(kept.guard[kept.chosen])
    # Generated rare rows crowded around one direction: every blend lowers their I(W), none is eligible.
    crowded = g.copy()
    rng = np.random.default_rng(3)
    crowded[rare] = 5.0 + 0.01 * rng.standard_normal((int(rare.sum()), o.shape[1])).astype(np.float32)
    got = choose_how(o, crowded, m, tokenizer, [pairs], neighbours=False, guard_rows=rare)
    blends = {h: v for h, v in got.guard.items() if h != "original" and float(h.split(":")[1]) > 0}
    assert blends and all(v < got.guard["original"] for v in blends.values())
    assert got.chosen == "mix:0" and "rare rows' I(W)" in got.reason
    with pytest.raises(EvaluationError, match="guard rows"):
        choose_how(o, g, m, tokenizer, [pairs], neighbours=False, guard_rows=rare[:-1])


def test_normmix_scores_as_mix_and_only_the_guard_tells_them_apart(tokenizer) -> None:
    o, g, m, pairs = _synthetic(tokenizer, "generated", seed=1)
    rare = np.zeros(len(m), dtype=bool)
    rare[-3000:] = True
    got = choose_how(o, g, m, tokenizer, [pairs], ("mix", "normmix"), neighbours=False, guard_rows=rare)
    for a in (0.2, 0.45, 1.0):
        assert got.dev[f"normmix:{a:g}"] == pytest.approx(got.dev[f"mix:{a:g}"], abs=1e-9)
        assert got.test[f"normmix:{a:g}"] == pytest.approx(got.test[f"mix:{a:g}"], abs=1e-9)
    assert got.guard["normmix:0.45"] != pytest.approx(got.guard["mix:0.45"])
    with pytest.raises(EvaluationError, match="among mix, dirmix, normmix"):
        choose_how(o, g, m, tokenizer, [pairs], ("scale",), neighbours=False)


def test_neighbours_kept_falls_from_one() -> None:
    rng = np.random.default_rng(0)
    o = rng.standard_normal((500, 8)).astype(np.float32)
    g = rng.standard_normal((500, 8)).astype(np.float32)
    kept = neighbours_kept(o, g, np.ones(500, bool), ["mix:0", "dirmix:0.3", "replace"], sample=50)
    assert kept["mix:0"] == 1.0 and kept["mix:0"] > kept["dirmix:0.3"] > kept["replace"]


def test_wins_line() -> None:
    per = {
        "a": {"original": 0.5, "dirmix:0.2": 0.55, "abtt": 0.4},
        "b": {"original": 0.7, "dirmix:0.2": 0.69, "abtt": float("nan")},
        "c": {"original": 0.6, "dirmix:0.2": 0.66},
    }
    w = wins(per, "dirmix:0.2")
    assert w["wins"] == 2 and w["sets"] == 3 and w["mean_delta"] == pytest.approx((0.05 - 0.01 + 0.06) / 3)
    assert wins_line(w) == "dirmix:0.2 beats original on 2 of 3 sets, mean +0.033"
    assert wins(per, "abtt")["sets"] == 1


@pytest.mark.slow
def test_cli_wordsim_folder_and_knobs(tmp_path: Path, tiny_bert_dir: Path) -> None:
    sets = tmp_path / "sets"
    sets.mkdir()
    for f in (DATA / "word-similarity").glob("*.txt"):
        shutil.copy(f, sets / f.name)
    run = make_run(tmp_path / "run", tiny_bert_dir, seed=3, covered_share=0.9)
    out = invoke_json(
        "eval",
        "wordsim",
        "--run",
        run.path,
        "--dataset",
        sets,
        "--how",
        "mix:0.5",
        "--part",
        "test",
        "--json",
    )
    assert set(out["sets"]) == {"EN-RG-65", "EN-RW-STANFORD-head200"}
    assert set(out["sets"]["EN-RG-65"]["spearman"]) == {"original", "mix:0.5", "abtt"}
    assert out["sets"]["EN-RG-65"]["part"] == "test" and out["sets"]["EN-RG-65"]["pairs"] < 65
    assert {w["name"] for w in out["wins"]} == {"mix:0.5", "abtt"}
    res = invoke("eval", "wordsim", "--run", run.path, "--dataset", sets)
    assert res.exit_code == 0 and "beats original on" in res.output and "of 2 sets" in res.output
    res = invoke("eval", "knobs", "--run", run.path, "--dataset", sets, "--no-adopt")
    assert res.exit_code == 0 and not (run.path / "policy.json").exists(), res.output
    kn = invoke_json("eval", "knobs", "--run", run.path, "--dataset", sets, "--json")
    assert kn["chosen"] in kn["dev"] and (run.path / "report" / "alpha_curve.png").is_file()
    choice = json.loads((run.path / "policy.json").read_text())  # the run's default policy from now on
    assert (choice["rows"], choice["how"]) == ("covered", kn["chosen"]) and "eval knobs" in choice["command"]
    res = invoke("eval", "report", "--run", run.path, "--json")
    assert res.exit_code == 0, res.output
    md = (run.path / "report" / "report.md").read_text()
    assert "## Row policy: choosing α" in md and "alpha_curve.png" in md
    res = invoke("eval", "wordsim", "--run", run.path, "--dataset", tmp_path / "run")
    assert res.exit_code == 1 and "no .txt word-pair sets" in res.output


def test_choose_for_use_rule() -> None:
    static = {"original": 0.50, "mix:0.2": 0.55, "mix:0.45": 0.60, "rare mix:0.45": 0.52}
    sts = {
        "mix:0.2": {"delta": -0.001, "ci_low": -0.004, "ci_high": 0.002},
        "mix:0.45": {"delta": -0.004, "ci_low": -0.009, "ci_high": 0.001},  # best static, STS-inferior
        "rare mix:0.45": {"delta": 0.002, "ci_low": -0.001, "ci_high": 0.005},
    }
    assert choose_for_use(static, sts, "both")[0] == "mix:0.2"
    assert choose_for_use(static, sts, "both", margin=0.01)[0] == "mix:0.45"
    assert choose_for_use(static, sts, "sts")[0] == "rare mix:0.45"
    worse = {k: {**v, "ci_low": -0.1} for k, v in sts.items()}
    best, why = choose_for_use(static, worse, "both")
    assert best is None and "non-inferior" in why
    with pytest.raises(EvaluationError, match="sts or both"):
        choose_for_use(static, sts, "wordsim")


@pytest.mark.slow
def test_use_objective_never_reads_a_test_part(tmp_path: Path, minilm_dir: Path, monkeypatch) -> None:
    """`--objective both` reads STS-B dev only (sts-test.csv here is not even a valid file) and the
    development thirds of the word-similarity sets only (scrambled test thirds leave the choice alone)."""
    import definitionemb.evaluation.sts as sts_mod
    from definitionemb.evaluation.report import knobs_of_run

    sts = tmp_path / "sts"
    sts.mkdir()
    shutil.copy(DATA / "sts" / "sts-dev.csv", sts / "sts-dev.csv")
    (sts / "sts-test.csv").write_text("not an STS file\n")
    read: list[str] = []
    real = sts_mod.read_sts
    monkeypatch.setattr(sts_mod, "read_sts", lambda p: read.append(Path(p).name) or real(p))
    ws = DATA / "word-similarity" / "EN-RW-STANFORD-head200.txt"
    pairs = read_pairs(ws)
    test = np.array([pair_part(a, b) == "test" for a, b in zip(pairs.word1, pairs.word2, strict=True)])
    scrambled = pairs.score.copy()
    scrambled[test] = np.random.default_rng(3).permutation(scrambled[test]) * -2.0
    ws2 = tmp_path / "ws" / ws.name
    ws2.parent.mkdir()
    ws2.write_text(
        "".join(f"{a} {b} {s}\n" for a, b, s in zip(pairs.word1, pairs.word2, scrambled, strict=True))
    )
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    db = tmp_path / "lex.duckdb"
    make_lexicon(db, tok.vocab_size, tuple(tok.all_special_ids), np.ones(tok.vocab_size, dtype=bool))
    run = make_run(tmp_path / "run", minilm_dir, db=db)
    kw = dict(methods=("mix",), guard=None, objective="both", sts=sts, sts_alphas=(0.6,))
    first = knobs_of_run(run, [ws], db, "covered", **kw)  # type: ignore[arg-type]
    second = knobs_of_run(run, [ws2], db, "covered", **kw)  # type: ignore[arg-type]
    assert set(read) == {"sts-dev.csv"}
    assert (first["chosen"], first["chosen_rows"]) == (second["chosen"], second["chosen_rows"])
    assert first["static_dev"] == second["static_dev"] and first["sts_dev"] == second["sts_dev"]
    assert set(first["sts_dev"]) == {"original", "mix:0.6", "rare mix:0.6"}
    assert first["test"] != second["test"]  # the test curve is scored, only after the choice
