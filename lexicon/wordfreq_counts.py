"""Piece counts from real English word frequencies (the `wordfreq` package), for any tokenizer.

WordPiece and SentencePiece models ship no pre-training counts. Counting pieces in the lexicon's own
glosses ranks a piece by how often dictionaries use it, which leaves the rare bucket full of pieces that
no English text produces. wordfreq merges several corpora (Wikipedia, subtitles, news, books, web text)
into one frequency per word; tokenizing every word of its list with the model's own tokenizer, weighted
by that frequency, gives each piece its expected count in English text, so "rare" means rare English.

What the list does not hold, and how it is filled in:
    case     wordfreq words are case-folded. For a cased tokenizer each word also counts in title case
             (8 % of its weight after a space, 2 % at the start of a text; the rest lower case), so
             "ĠThe" and "The" get counts. An uncased tokenizer reads all three the same way.
    numbers  multi-digit numbers are stored with their digits smashed to 0 ("0000"); those entries
             are dropped and the numbers 0-2099 are counted instead, each with wordfreq's own estimate
             (`word_frequency("1990")` spreads the smashed count over digits and years).
    symbols  punctuation is not in the list, so pieces such as "," get no count and rank, in id
             order, after every counted piece (as every piece without a count does).

Counts are the expected occurrences in 10^10 words of English, rounded. The result is cached per
vocabulary and list in the process: aligning several lexicons to one tokenizer counts once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from definitionemb.lexicon.errors import TokenizerError
from definitionemb.lexicon.frequencies import Frequencies, from_chunks
from definitionemb.lexicon.tokenizers import Vocab, open_tokenizer

__all__ = ["from_wordfreq", "wordfreq_version", "SCALE"]

SCALE = 1e10
_TITLE_SPACED = 0.08
_TITLE_FIRST = 0.02
_NUMBERS = range(0, 2100)
_CACHE: dict[tuple[str, str, str], Frequencies] = {}


def wordfreq_version() -> str:
    """The installed wordfreq version (recorded in the frequency source)."""
    from importlib.metadata import version

    return version("wordfreq")


def _words(lang: str, wordlist: str) -> Iterator[tuple[str, float]]:
    import wordfreq

    try:
        freqs = wordfreq.get_frequency_dict(lang, wordlist=wordlist)
    except (LookupError, ValueError) as exc:
        raise TokenizerError(f"wordfreq has no {wordlist!r} word list for language {lang!r}: {exc}") from exc
    if not freqs:
        raise TokenizerError(f"wordfreq's {wordlist!r} list for {lang!r} is empty")
    for word, f in freqs.items():
        if not any(c.isdigit() for c in word):
            yield word, float(f)
    for n in _NUMBERS:
        s = str(n)
        yield s, float(wordfreq.word_frequency(s, lang, wordlist=wordlist))


def _cased(vocab: Vocab) -> bool:
    tok = open_tokenizer(vocab)
    return bool(
        tok.encode("The", add_special_tokens=False).ids != tok.encode("the", add_special_tokens=False).ids
    )


def from_wordfreq(
    vocab: Vocab, lang: str = "en", wordlist: str = "best", progress: bool = False
) -> Frequencies:
    """Each piece's expected count in 10^10 words of `lang` text, from wordfreq's `wordlist`."""
    key = (vocab.sha256, lang, wordlist)
    if key in _CACHE:
        return _CACHE[key]
    cased = _cased(vocab)
    # Only a byte-level BPE tells a word after a space from one that opens a text.
    first_share = _TITLE_FIRST if vocab.kind == "bpe" else 0.0
    weights: dict[tuple[str, bool], float] = {}

    def add(chunk: str, first: bool, w: float) -> None:
        weights[(chunk, first)] = weights.get((chunk, first), 0.0) + w

    for word, f in _words(lang, wordlist):
        if f <= 0:
            continue
        title = word.capitalize() if cased else word
        title_share = _TITLE_SPACED if title != word else 0.0
        add(word, False, f * (1.0 - title_share - first_share))
        if title_share:
            add(title, False, f * title_share)
        if first_share:
            add(title, True, f * first_share)
    keys = list(weights)
    freq = from_chunks(
        [k[0] for k in keys],
        [k[1] for k in keys],
        np.fromiter(weights.values(), dtype=np.float64, count=len(keys)) * SCALE,
        vocab,
        f"wordfreq:{lang}:{wordlist}:{wordfreq_version()}",
        progress=progress,
    )
    _CACHE[key] = freq
    return freq
