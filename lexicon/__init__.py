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

from definitionemb.lexicon.errors import (
    DefembError,
    LexiconError,
    SchemaMismatch,
    SourceError,
    TokenizerError,
)

if TYPE_CHECKING:  # the lazy names below, spelled out for mypy and editors
    from definitionemb.lexicon.aligner import AlignReport, align, tokenizer_id
    from definitionemb.lexicon.builder import BuildReport, build
    from definitionemb.lexicon.db import connect, fingerprint
    from definitionemb.lexicon.queries import coverage, coverage_frame, definitions, export_parquet, query
    from definitionemb.lexicon.tokenizers import Vocab, load_vocab, vocab_fingerprint

_LAZY = {
    "build": "definitionemb.lexicon.builder",
    "BuildReport": "definitionemb.lexicon.builder",
    "align": "definitionemb.lexicon.aligner",
    "AlignReport": "definitionemb.lexicon.aligner",
    "tokenizer_id": "definitionemb.lexicon.aligner",
    "coverage": "definitionemb.lexicon.queries",
    "coverage_frame": "definitionemb.lexicon.queries",
    "definitions": "definitionemb.lexicon.queries",
    "query": "definitionemb.lexicon.queries",
    "export_parquet": "definitionemb.lexicon.queries",
    "load_vocab": "definitionemb.lexicon.tokenizers",
    "Vocab": "definitionemb.lexicon.tokenizers",
    "vocab_fingerprint": "definitionemb.lexicon.tokenizers",
    "connect": "definitionemb.lexicon.db",
    "fingerprint": "definitionemb.lexicon.db",
}

__all__ = ["DefembError", "LexiconError", "SchemaMismatch", "SourceError", "TokenizerError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'definitionemb.lexicon' has no attribute {name!r}")
