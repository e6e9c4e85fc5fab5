"""lexicon: Wiktionary definitions in DuckDB, aligned to subword vocabularies.

Public API (imported lazily so `import lexicon` stays cheap)::

    lexicon.build(db, ["open-dictionary:path/to/api"])      -> BuildReport
    lexicon.align(db, "path/to/tokenizer", frequencies=...) -> AlignReport
    lexicon.coverage(db, "path/to/tokenizer")               -> dict
    lexicon.definitions(db, "path/to/tokenizer", tokens)    -> polars.DataFrame
    lexicon.query(db, "SELECT ...")                         -> polars.DataFrame
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lexicon.errors import DefembError, LexiconError, SchemaMismatch, SourceError, TokenizerError

if TYPE_CHECKING:  # the lazy names below, spelled out for mypy and editors
    from lexicon.aligner import AlignReport, align, tokenizer_id
    from lexicon.builder import BuildReport, build
    from lexicon.db import connect, fingerprint
    from lexicon.queries import coverage, coverage_frame, definitions, export_parquet, query
    from lexicon.tokenizers import Vocab, load_vocab, vocab_fingerprint

_LAZY = {
    "build": "lexicon.builder",
    "BuildReport": "lexicon.builder",
    "align": "lexicon.aligner",
    "AlignReport": "lexicon.aligner",
    "tokenizer_id": "lexicon.aligner",
    "coverage": "lexicon.queries",
    "coverage_frame": "lexicon.queries",
    "definitions": "lexicon.queries",
    "query": "lexicon.queries",
    "export_parquet": "lexicon.queries",
    "load_vocab": "lexicon.tokenizers",
    "Vocab": "lexicon.tokenizers",
    "vocab_fingerprint": "lexicon.tokenizers",
    "connect": "lexicon.db",
    "fingerprint": "lexicon.db",
}

__all__ = ["DefembError", "LexiconError", "SchemaMismatch", "SourceError", "TokenizerError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lexicon' has no attribute {name!r}")
