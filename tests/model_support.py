"""Tiny random-weight models and tokenizers built from tests/data (no tests here, no pytest).

The fixtures in conftest.py and the family tests build their models here; the benchmarks import this
module too (`from tests.model_support import ...`, run from the repository root as they all are), so a
benchmark's model and tokenizer are built exactly as the tests build theirs, only at its own shape.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
ROBERTA_TOKENIZER = DATA / "roberta-bart"
MINILM_TOKENIZER = DATA / "minilm-tokenizer"
DEFINITIONS_TSV = DATA / "embedder" / "definitions.tsv"

#: The real RoBERTa/BART byte-level BPE vocabulary's size and special ids (<s> 0, <pad> 1, </s> 2).
BPE_IDS: dict[str, Any] = dict(vocab_size=50265, pad_token_id=1, bos_token_id=0, eos_token_id=2)
#: The shape every tiny encoder of the tests shares: hidden 32, 2 layers of 2 heads, feed-forward 64.
TINY: dict[str, Any] = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def definition_rows() -> list[list[str]]:
    """The (word, pos, gloss) rows of tests/data/embedder/definitions.tsv; the header row (key, pos,
    definition) is one of them, as it always was in the SentencePiece text and the benchmark's prompts."""
    lines = DEFINITIONS_TSV.read_text(encoding="utf-8").splitlines()
    return [ln.split("\t") for ln in lines if ln.count("\t") >= 2]


def save_random(
    out: Path, model_cls: Any, config: Any, tokenizer_cls: Any = None, tokenizer_dir: Path = ROBERTA_TOKENIZER
) -> Path:
    """`model_cls(config)` with random weights drawn under torch seed 0, saved into `out`, and (given a
    tokenizer class) the tokenizer of `tokenizer_dir` loaded by that class and saved next to it."""
    import torch

    torch.manual_seed(0)
    model_cls(config).save_pretrained(str(out))
    if tokenizer_cls is not None:
        tokenizer_cls.from_pretrained(str(tokenizer_dir)).save_pretrained(str(out))
    return out


def save_random_roberta(out: Path, tokenizer_dir: Path = ROBERTA_TOKENIZER, **shape: Any) -> Path:
    """A random RoBERTa masked-LM over the real byte-level BPE vocabulary: TINY unless `shape` says."""
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    cfg = RobertaConfig(max_position_embeddings=130, type_vocab_size=1, **BPE_IDS, **{**TINY, **shape})
    return save_random(out, RobertaForMaskedLM, cfg, RobertaTokenizerFast, tokenizer_dir)


def save_tiny_bart(out: Path) -> Path:
    """A random BART (d_model 32, 1+1 layers) with the real tokenizer, tied embeddings."""
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizerFast

    cfg = BartConfig(
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
        **BPE_IDS,
    )
    return save_random(out, BartForConditionalGeneration, cfg, BartTokenizerFast)


def save_tiny_bert(out: Path) -> Path:
    """A random BERT (MiniLM's WordPiece vocabulary, TINY shape); the tokenizer files are copied as they are."""
    from transformers import BertConfig, BertForMaskedLM

    save_random(out, BertForMaskedLM, BertConfig(vocab_size=30522, max_position_embeddings=128, **TINY))
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(MINILM_TOKENIZER / f, out / f)
    return out


def gloss_sentencepiece(out: Path, **ids: Any) -> list[tuple[str, float]]:
    """A unigram SentencePiece model (1500 pieces) trained in `out` on the test lexicon's glosses, with the
    special ids and pieces `ids` gives: its (piece, score) list in id order."""
    import sentencepiece as spm

    text = out / "glosses.txt"
    text.write_text("\n".join(row[2] for row in definition_rows()), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(out / "sp"),
        vocab_size=1500,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
        num_threads=1,
        **ids,
    )
    sp = spm.SentencePieceProcessor(model_file=str(out / "sp.model"))
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]


def t5_tokenizer(out: Path) -> Any:
    """A T5 tokenizer (T5's special ids, 100 sentinels) over `gloss_sentencepiece`'s vocabulary."""
    from transformers import T5Tokenizer

    vocab = gloss_sentencepiece(out, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    return T5Tokenizer(vocab=vocab, extra_ids=100)
