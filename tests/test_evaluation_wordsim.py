"""Word similarity: file parsing, Spearman against scipy, single-token look-up for BPE and WordPiece."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from definitionemb.evaluation.errors import DataFormatError, EvaluationError
from definitionemb.evaluation.wordsim import read_pairs, single_token_ids, spearman, word_similarity
from evaluation_support import DATA
from scipy.stats import spearmanr

RW = DATA / "word-similarity" / "EN-RW-STANFORD-head200.txt"
RG = DATA / "word-similarity" / "EN-RG-65.txt"


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=80).astype(float)  # many ties
    b = a + rng.standard_normal(80)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(a, -b) == pytest.approx(spearmanr(a, -b).statistic, abs=1e-12)


def test_read_pairs_real_files() -> None:
    rg = read_pairs(RG)
    assert len(rg.score) == 65 and rg.word1[0] == "gem" and rg.word2[0] == "jewel"
    assert rg.score[0] == pytest.approx(3.94)
    assert len(read_pairs(RW).score) == 200


def test_read_pairs_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("cat dog 3.0\ncat dog\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:2"):
        read_pairs(bad)
    bad.write_text("cat dog x\nfoo bar 1\n")
    with pytest.raises(DataFormatError, match="not a number"):
        read_pairs(bad)
    with pytest.raises(DataFormatError, match="no word-pair file"):
        read_pairs(tmp_path / "missing.txt")


def test_single_tokens_bpe_and_wordpiece(roberta_tokenizer_dir: Path, minilm_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer, RobertaTokenizerFast

    bpe = RobertaTokenizerFast.from_pretrained(str(roberta_tokenizer_dir))
    ids = single_token_ids(bpe, ["car", "automobile", "squishing"])
    assert ids[0] == bpe.convert_tokens_to_ids("Ġcar")  # the word-initial form
    assert ids[2] is None  # several pieces
    wp = AutoTokenizer.from_pretrained(str(minilm_tokenizer_dir))
    ids = single_token_ids(wp, ["car", "Car", "undatable"])
    assert ids[0] == wp.convert_tokens_to_ids("car") and ids[1] == ids[0]  # uncased
    assert ids[2] is None


def test_word_similarity_scores_every_matrix_on_the_same_pairs(minilm_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_tokenizer_dir))
    pairs = read_pairs(RG)
    rng = np.random.default_rng(0)
    rand = rng.standard_normal((30522, 16)).astype(np.float32)
    # The Spearman reported must be scipy's on exactly the covered pairs, recomputed here by hand.
    res = word_similarity(pairs, tok, {"random": rand})
    assert res.pairs == 65 and 0 < res.covered_pairs <= 65
    ids1 = single_token_ids(tok, pairs.word1)
    ids2 = single_token_ids(tok, pairs.word2)
    keep = [k for k in range(65) if ids1[k] is not None and ids2[k] is not None]
    assert res.covered_pairs == len(keep)
    a, b = np.array([ids1[k] for k in keep]), np.array([ids2[k] for k in keep])
    cos = (rand[a] * rand[b]).sum(1) / np.linalg.norm(rand[a], axis=1) / np.linalg.norm(rand[b], axis=1)
    assert res.spearman["random"] == pytest.approx(spearmanr(pairs.score[keep], cos).statistic, abs=1e-9)
    assert res.to_dict()["coverage"] == pytest.approx(len(keep) / 65)


def test_word_similarity_refuses_a_foreign_matrix(minilm_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_tokenizer_dir))
    with pytest.raises(EvaluationError, match="another vocabulary"):
        word_similarity(read_pairs(RG), tok, {"small": np.ones((100, 4), dtype=np.float32)})
