"""Prompts, corruption, batching: the data side of the embedder on the real tokenizers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from definitionemb.embedder.batching import (
    MicroBatchStream,
    bucketed_epoch,
    fixed_batches,
    padding_fraction,
    sorted_batches,
)
from definitionemb.embedder.config import PromptConfig, TrainConfig
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.examples import Collator, build_examples, split_heldout, word_pieces
from definitionemb.embedder.lexicon_io import Definitions


def _defs(token_ids: list[int], glosses: list[str], pos: list[str | None] | None = None) -> Definitions:
    n = len(glosses)
    return Definitions(
        token_id=np.asarray(token_ids, dtype=np.int64),
        rank=np.ones(n, dtype=np.int32),
        sense_id=np.arange(n, dtype=np.int64),
        word=["w"] * n,
        pos=pos or ["noun"] * n,
        gloss=glosses,
    )


@pytest.fixture(scope="module")
def bert_tok(minilm_tokenizer_dir: Path):  # type: ignore[no-untyped-def]
    from definitionemb.embedder.models import load_tokenizer

    return load_tokenizer(minilm_tokenizer_dir)


@pytest.fixture(scope="module")
def roberta_tok(tiny_roberta_dir: Path):  # type: ignore[no-untyped-def]
    from definitionemb.embedder.models import load_tokenizer

    return load_tokenizer(tiny_roberta_dir)


def test_prompt_puts_target_first_with_pos(bert_tok) -> None:  # type: ignore[no-untyped-def]
    cat = bert_tok.convert_tokens_to_ids("cat")
    ex = build_examples(bert_tok, PromptConfig(), _defs([cat], ["a small pet animal"]))
    seq = ex.seq(0).tolist()
    assert bert_tok.convert_ids_to_tokens(seq) == [
        "[CLS]",
        "cat",
        "(",
        "noun",
        ")",
        ":",
        "a",
        "small",
        "pet",
        "animal",
        "[SEP]",
    ]
    assert ex.target_pos[0] == 1 and ex.target_id[0] == cat


def test_prompt_without_pos_and_custom_template(bert_tok) -> None:  # type: ignore[no-untyped-def]
    cat = bert_tok.convert_tokens_to_ids("cat")
    ex = build_examples(bert_tok, PromptConfig(use_pos=False), _defs([cat], ["a pet"]))
    assert bert_tok.convert_ids_to_tokens(ex.seq(0).tolist()) == ["[CLS]", "cat", ":", "a", "pet", "[SEP]"]
    ex2 = build_examples(
        bert_tok, PromptConfig(template="definition of {target} , {pos} : {gloss}"), _defs([cat], ["a pet"])
    )
    toks = bert_tok.convert_ids_to_tokens(ex2.seq(0).tolist())
    assert toks[:4] == ["[CLS]", "definition", "of", "cat"] and ex2.target_pos[0] == 3
    with pytest.raises(EmbedderError, match="target"):
        PromptConfig(template="{gloss} only")


def test_roberta_target_is_placed_by_id(roberta_tok) -> None:  # type: ignore[no-untyped-def]
    # "Ġcat" and "cat" are different rows: the prompt must carry the aligned one, not a re-tokenisation.
    spaced, bare = roberta_tok.convert_tokens_to_ids(["Ġcat", "cat"])
    ex = build_examples(roberta_tok, PromptConfig(), _defs([spaced, bare], ["a pet", "a pet"]))
    assert ex.seq(0)[1] == spaced and ex.seq(1)[1] == bare
    assert roberta_tok.convert_ids_to_tokens(ex.seq(0).tolist())[2] == "Ġ("


def test_truncation_keeps_target_and_end(bert_tok) -> None:  # type: ignore[no-untyped-def]
    cat = bert_tok.convert_tokens_to_ids("cat")
    long = " ".join(["word"] * 200)
    ex = build_examples(bert_tok, PromptConfig(max_length=16), _defs([cat], [long]))
    seq = ex.seq(0)
    assert len(seq) == 16 and seq[1] == cat and seq[-1] == bert_tok.sep_token_id


def test_multipiece_words_one_example_per_piece(roberta_tok) -> None:  # type: ignore[no-untyped-def]
    pieces = word_pieces(roberta_tok, ["aardvarks", "cat"], "roberta", 2, 4)
    assert pieces[1] == []  # a single piece is no multi-piece word
    p = pieces[0]
    assert len(p) >= 2
    d = _defs([-1], ["plural of aardvark"])
    ex = build_examples(roberta_tok, PromptConfig(), d, [p])
    assert len(ex) == len(p)
    for j in range(len(p)):
        seq = ex.seq(j)
        assert ex.target_id[j] == p[j] and seq[ex.target_pos[j]] == p[j]
        assert seq[1 : 1 + j].tolist() == p[:j]  # earlier pieces revealed, later ones absent
        assert ex.span_start[j] == 1 and ex.target_pos[j] == 1 + j


def test_corruption_rates_and_generation_mask(bert_tok) -> None:  # type: ignore[no-untyped-def]
    cat = bert_tok.convert_tokens_to_ids("cat")
    n = 4000
    ex = build_examples(bert_tok, PromptConfig(), _defs([cat] * n, ["a pet"] * n))
    coll = Collator(bert_tok, "bert", 30522)
    b = coll(ex, np.arange(n), mode="train", seed=123)
    at = b["input_ids"][:, 1]
    masked = float((at == bert_tok.mask_token_id).float().mean())
    kept = float((at == cat).float().mean())
    assert abs(masked - 0.5) < 0.03 and abs(kept - 0.25) < 0.03
    special = set(bert_tok.all_special_ids)
    assert not any(int(t) in special for t in at[(at != bert_tok.mask_token_id) & (at != cat)])
    assert b["input_ids"][:, 2:].eq(coll(ex, np.arange(n), mode="generate")["input_ids"][:, 2:]).all()
    again = coll(ex, np.arange(n), mode="train", seed=123)["input_ids"]
    assert again.equal(b["input_ids"])  # seeded per micro-batch: resumes see the same corruption
    gen = coll(ex, np.arange(n), mode="generate")["input_ids"][:, 1]
    assert (gen == bert_tok.mask_token_id).all()


def test_bart_decoder_inputs(roberta_tok) -> None:  # type: ignore[no-untyped-def]
    p = word_pieces(roberta_tok, ["aardvarks"], "bart", 2, 4)[0]
    ex = build_examples(roberta_tok, PromptConfig(), _defs([-1], ["plural of aardvark"]), [p])
    coll = Collator(roberta_tok, "bart", 50265, decoder_start_id=2)
    b = coll(ex, np.arange(len(ex)), mode="generate")
    last = len(p) - 1
    dec = b["decoder_input_ids"][last, : int(b["decoder_pos"][last]) + 1].tolist()
    assert dec == [2, 0, *p[:last]]


def test_budget_batches_cover_everything_once_with_little_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, 64, size=5000).astype(np.int32)
    batches = bucketed_epoch(lengths, 1024, seed=1, epoch=0)
    allidx = np.concatenate(batches)
    assert np.array_equal(np.sort(allidx), np.arange(5000))
    assert all(len(b) * lengths[b].max() <= 1024 for b in batches)
    naive = fixed_batches(5000, 1024 // int(lengths.mean()), seed=1)
    assert padding_fraction(batches, lengths) < 0.05 < padding_fraction(naive, lengths)
    assert [b.tolist() for b in bucketed_epoch(lengths, 1024, 1, 0)] == [b.tolist() for b in batches]
    sb = sorted_batches(lengths, 2048)
    assert np.array_equal(np.sort(np.concatenate(sb)), np.arange(5000))


def test_microbatch_stream_is_addressable_across_epochs() -> None:
    lengths = np.full(50, 10, dtype=np.int32)
    s1, s2 = MicroBatchStream(lengths, 100, 3), MicroBatchStream(lengths, 100, 3)
    first = [s1.get(k)[1].tolist() for k in range(12)]  # 5 batches per epoch: crosses two epochs
    assert s1.get(11)[0] == 2
    assert [s2.get(k)[1].tolist() for k in (11, 3, 7)] == [first[11], first[3], first[7]]


def test_heldout_split_is_seeded_and_by_token() -> None:
    ids = np.repeat(np.arange(100), 3)
    a, b, c = split_heldout(ids, 0.1, 0), split_heldout(ids, 0.1, 0), split_heldout(ids, 0.1, 1)
    assert len(a) == 10 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_config_refuses_bad_values(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="schedule"):
        TrainConfig(db="x", model="y", run="z", schedule="linear")
    with pytest.raises(EmbedderError, match="batch_tokens"):
        TrainConfig(db="x", model="y", run="z", batch_tokens=10)
    from definitionemb.embedder.config import preset

    paper = preset("paper", db="x", model="y", run="z")
    assert (paper.lr, paper.warmup, paper.schedule, paper.loss, paper.clip) == (
        1e-4,
        24000,
        "inverse_sqrt",
        "mse",
        0.1,
    )
    assert TrainConfig.from_dict(paper.to_dict()) == paper
