"""Zero-shot STS: the scorer against hand-computed Spearman, the rare-token subset, and the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
from definitionemb.evaluation.errors import DataFormatError, EvaluationError
from definitionemb.evaluation.rows import changed_rare_rows, rare_examples
from definitionemb.evaluation.sts import bootstrap_difference, compare_sts, read_sts, sts_file, sts_line
from evaluation_support import make_lexicon, make_run

STS = Path(__file__).parent / "data" / "eval" / "sts"


def test_read_sts_slice() -> None:
    pairs = read_sts(sts_file(STS, "test"))
    assert len(pairs) == 24
    assert (pairs.s1[0], pairs.s2[0], pairs.score[0]) == (
        "A girl is styling her hair.",
        "A girl is brushing her hair.",
        2.5,
    )
    assert sts_file(STS / "sts-dev.csv", "test").name == "sts-dev.csv"  # a file is taken as given
    with pytest.raises(EvaluationError, match="unknown STS part"):
        sts_file(STS, "validation")


def test_read_sts_refuses_a_line_without_score(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a\tb\tc\td\tnot-a-score\tx\ty\n" * 3)
    with pytest.raises(DataFormatError, match=r"bad.csv:1"):
        read_sts(bad)


def test_spearman_difference_against_hand_computation() -> None:
    gold = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    a = np.array([0.1, 0.3, 0.2, 0.5, 0.4])  # ranks 1 3 2 5 4: d² sums to 4, rho = 1 - 6·4/(5·24) = 0.8
    b = np.array([0.1, 0.2, 0.3, 0.4, 0.5])  # rho = 1
    res = bootstrap_difference(gold, a, b, n=500, seed=1)
    assert res["delta"] == pytest.approx(0.2)
    assert 0.0 <= res["ci_low"] <= res["ci_high"] <= 1.0 + 1e-12  # b is never worse on a resample
    same = bootstrap_difference(gold, a, a, n=200)
    assert (same["delta"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)


def test_rare_subset_selection_from_buckets_and_mask() -> None:
    labels = np.array(["special", "frequent", "rare", "rare", "medium", "rare"])
    mask = np.array([False, True, True, False, True, True])
    rows = changed_rare_rows(mask, labels)
    assert rows.tolist() == [False, False, True, False, False, True]  # 3 is rare but unchanged
    examples = [[1, 4], [3, 4], [0, 2], [5], [], [99]]  # ids outside the vocabulary are ignored
    assert rare_examples(examples, rows).tolist() == [False, False, True, True, False, False]
    with pytest.raises(EvaluationError, match="differ in length"):
        changed_rare_rows(mask[:3], labels)


@pytest.mark.slow
def test_compare_sts_on_the_real_minilm(tmp_path: Path, minilm_dir: Path) -> None:
    import torch
    from definitionemb.index.policy import as_policy, policy_matrix
    from scipy.stats import spearmanr
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    vocab = tok.vocab_size
    db = tmp_path / "lex.duckdb"
    covered = np.zeros(vocab, dtype=bool)
    words = ["guitar", "onion", "cucumber", "zebras", "harp"]
    ids = [tok.convert_tokens_to_ids(w) for w in words if w in tok.vocab]
    covered[ids] = True
    covered[[tok.convert_tokens_to_ids(w) for w in ("man", "woman", "playing")]] = True
    make_lexicon(db, vocab, tuple(tok.all_special_ids), covered)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE token SET bucket = CASE WHEN token_id IN ? THEN 'rare' ELSE 'frequent' END", [ids]
        )
    run = make_run(tmp_path / "run", minilm_dir, db=db)
    res = compare_sts(run, STS, "test", db, "covered", ["mix:0", "replace"], bootstrap=300)

    pairs = read_sts(STS / "sts-test.csv")
    # hand-computed: mean pooling over the mask, normalised, cosine, then scipy's Spearman
    model = AutoModel.from_pretrained(str(minilm_dir)).eval()

    def enc(texts: tuple[str, ...]) -> np.ndarray:
        batch = tok(list(texts), padding=True, return_tensors="pt")
        with torch.no_grad():
            h = model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(v, dim=1).numpy()

    cos = (enc(pairs.s1) * enc(pairs.s2)).sum(axis=1)
    assert res.spearman["original"]["all"] == pytest.approx(spearmanr(pairs.score, cos).statistic, abs=1e-4)
    # α = 0 keeps every row: the same scores, no difference; replacing the rows moves them
    assert res.spearman["mix:0"]["all"] == pytest.approx(res.spearman["original"]["all"], abs=1e-6)
    assert res.difference["mix:0"]["all"]["delta"] == pytest.approx(0.0, abs=1e-6)
    assert res.spearman["replace"]["all"] != pytest.approx(res.spearman["original"]["all"], abs=1e-4)
    # the rare subset: pairs holding a rare row (guitar, onion, …) that the policy changed
    _, mask = policy_matrix(run, db, as_policy("covered", "replace", run))
    rare_rows = np.isin(np.arange(vocab), ids) & mask
    assert 0 < rare_rows.sum() < len(ids)  # the run changed some of them, not all
    expect = [
        bool(set(tok(a + " " + b)["input_ids"]) & set(np.flatnonzero(rare_rows).tolist()))
        for a, b in zip(pairs.s1, pairs.s2, strict=True)
    ]
    assert res.rare_pairs == sum(expect) and 3 <= res.rare_pairs < res.pairs
    assert res.rare_rows == int(rare_rows.sum())
    assert "rare-token subset" in sts_line(res)
    # evaluate_run (what `defemb run` calls) scores STS for a sentence encoder and reports both subsets
    from definitionemb.evaluation.report import evaluate_run, is_sentence_encoder

    assert is_sentence_encoder(run)
    rep = evaluate_run(run, db, how="replace", sts=STS, plots=False)
    (st,) = rep.content["sts"]
    assert st["spearman"]["replace"] == pytest.approx(res.spearman["replace"])
    md = (Path(rep.report_dir) / "report.md").read_text()
    assert "## Sentence similarity: STS test" in md and "| replace |" in md
