"""The reverse dictionary over every headword: describe a word, get the word.

Candidates are the lexicon's headwords (:mod:`index.headwords`), split words included. Scorers, all
from the run's own model:

- `tokens`: the regressor's vector of the query (`embedder.encode_definitions`) against the token row
  (original or generated matrix) of single-token words; split words get no score from it;
- `senses`: the same query vector against every sense vector of the run, best sense per word;
- `glosses`: where the base model is a sentence encoder (MiniLM), its pooled embedding of the query
  against each gloss's, best gloss per word — the plain sentence-embedding baseline;
- `headwords`: that sentence embedding against the embedding of the headword itself;
- `lexical`: BM25 of the query's words against each gloss's (:mod:`index.lexical`), best gloss per
  word: the exact rare words a definition and the right gloss share;
- `frequency`: no similarity but a prior, the headword's Zipf frequency in real English text
  (:func:`index.headwords.word_zipf`, wordfreq) capped at :data:`ZIPF_CAP`, the same for every query:
  people describe words they use, and most of a large dictionary's headwords (64 % of Open
  Dictionary's) appear in none of wordfreq's corpora;
- `lemma`: a prior too, the share of the word's senses that are its own rather than "form of" /
  "alternative form of" another word (:func:`index.headwords.lemma_share`).

The sentence scorers embed a query of several ";"-separated clauses as the mean of its whole embedding
and its clauses' mean (:func:`index.headwords.query_clauses`; dictionary senses are one clause each).
The combination z-scores each scorer's word scores per query (over all candidates) and adds them with
weights (:data:`DEFAULT_WEIGHTS`, tuned on the development set by `benchmarks/bench_reverse.py`);
split words take `token_missing` for the `tokens` z-score. Words of the query itself are left out.
It runs in two passes: the sentence scorers and the priors score every word, and the
:data:`SECOND_PASS` scorers only the first pass's :data:`RERANK` best words of each query, their mean and
spread taken over a fixed sample of words (`rerank=0` scores every word with every scorer).

What a run needs beyond its vectors is kept in `<run>/index/reverse/` (manifest, per-word token ids, sense
norms), built by the index stage (`build_reverse`, or on first use by `open_reverse`) and refused when
stale; the sentence embeddings are shared per lexicon and base model (:mod:`index.gloss_cache`).

The package's rooms: `fusion` (the arithmetic, pure functions over arrays), `store` (the on-disk store and
its staleness checks), `build` (building it), `dictionary` (the object that opens a store and searches),
`batch` (the one-call entry points and batch output).
"""

from __future__ import annotations

from definitionemb.index.reverse_dictionary.batch import (
    BatchResult,
    open_reverse,
    reverse_batch,
    reverse_words,
)
from definitionemb.index.reverse_dictionary.build import build_reverse, ensure_reverse
from definitionemb.index.reverse_dictionary.dictionary import ReverseDictionary, check_query
from definitionemb.index.reverse_dictionary.fusion import (
    DEFAULT_WEIGHTS,
    NO_SENTENCE_WEIGHTS,
    RERANK,
    SCORERS,
    SECOND_PASS,
    TOKEN_MISSING,
    ZIPF_CAP,
    fast_bfloat16,
    fuse,
    zscore,
)
from definitionemb.index.reverse_dictionary.store import ReverseManifest

__all__ = [
    "SCORERS",
    "SECOND_PASS",
    "RERANK",
    "DEFAULT_WEIGHTS",
    "NO_SENTENCE_WEIGHTS",
    "TOKEN_MISSING",
    "ZIPF_CAP",
    "ReverseManifest",
    "ReverseDictionary",
    "open_reverse",
    "build_reverse",
    "ensure_reverse",
    "reverse_words",
    "reverse_batch",
    "BatchResult",
    "check_query",
    "fuse",
    "zscore",
    "fast_bfloat16",
]
