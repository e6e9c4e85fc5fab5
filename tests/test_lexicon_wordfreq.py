"""Frequency buckets from wordfreq's English word list, counted by the real MiniLM and RoBERTa tokenizers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from definitionemb.lexicon.frequencies import Frequencies, ranks_and_buckets
from definitionemb.lexicon.tokenizers import Vocab, load_vocab
from definitionemb.lexicon.wordfreq_counts import from_wordfreq

# Letters a byte-level BPE piece stands for, e.g. "Ã©" → "é"; GPT-2's printable stand-ins for bytes.
_LATIN = re.compile(r"[\x00-\u024f]*")


def _gpt2_bytes() -> dict[str, int]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _text(vocab: Vocab, piece: str) -> str:
    if vocab.kind == "bpe":
        table = _gpt2_bytes()
        return bytes(table[c] for c in piece).decode("utf-8", errors="replace").strip()
    return piece.removeprefix("##")


def _buckets(vocab: Vocab, freq: Frequencies) -> np.ndarray:
    special = np.zeros(len(vocab.pieces), dtype=bool)
    special[list(vocab.special_ids)] = True
    _, names = ranks_and_buckets(freq, special)
    return np.asarray(names)


def _bucket_of(vocab: Vocab, buckets: np.ndarray, piece: str) -> str:
    return str(buckets[vocab.pieces.index(piece)])


def _foreign_share(vocab: Vocab, buckets: np.ndarray, name: str) -> float:
    ids = np.flatnonzero(buckets == name)
    foreign = sum(not _LATIN.fullmatch(_text(vocab, vocab.pieces[i])) for i in ids)
    return foreign / len(ids)


@pytest.fixture(scope="module")
def minilm(minilm_tokenizer_dir: Path) -> tuple[Vocab, Frequencies]:
    vocab = load_vocab(minilm_tokenizer_dir)
    return vocab, from_wordfreq(vocab)


@pytest.mark.slow
def test_minilm_buckets_mean_english_frequency(minilm: tuple[Vocab, Frequencies]) -> None:
    vocab, freq = minilm
    assert freq.source.startswith("wordfreq:en:best:")
    buckets = _buckets(vocab, freq)
    for piece in ("the", "of", "cat", "##ing", "1990"):
        assert _bucket_of(vocab, buckets, piece) == "frequent", piece
    for piece in ("shrieked", "gaped", "squealed"):  # real English words, rare ones
        assert _bucket_of(vocab, buckets, piece) == "rare", piece
    counts = freq.counts
    ix = vocab.pieces.index
    assert counts[ix("the")] > counts[ix("cat")] > counts[ix("squealed")] > 0
    # Pieces English never produces sit at the bottom, but most of the rare bucket is rare English.
    rare = np.flatnonzero(buckets == "rare")
    assert (counts[rare] > 0).mean() > 0.6
    assert _foreign_share(vocab, buckets, "rare") < 0.4
    assert _foreign_share(vocab, buckets, "frequent") == 0.0


@pytest.mark.slow
def test_roberta_buckets_count_spaced_and_cased_pieces(roberta_tokenizer_dir: Path) -> None:
    vocab = load_vocab(roberta_tokenizer_dir)
    freq = from_wordfreq(vocab)
    buckets = _buckets(vocab, freq)
    for piece in ("Ġthe", "ĠThe", "The", "Ġcat", "Ġ1990"):
        assert _bucket_of(vocab, buckets, piece) == "frequent", piece
    for piece in ("Ġleptin", "Ġcannabinoid"):  # whole rare words; rarer ones the BPE splits
        assert _bucket_of(vocab, buckets, piece) == "rare", piece
    ix = vocab.pieces.index
    # a word after a space is the common case; the same word opening a text is rarer
    assert freq.counts[ix("Ġthe")] > freq.counts[ix("the")] > 0
    assert _foreign_share(vocab, buckets, "rare") < 0.4


def test_cached_per_vocabulary(minilm: tuple[Vocab, Frequencies]) -> None:
    vocab, freq = minilm
    assert from_wordfreq(vocab) is freq
