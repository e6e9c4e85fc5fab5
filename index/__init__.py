"""index: FAISS neighbours, the reverse dictionary and export of embedding matrices for a run.

Public API (imported lazily so `import index` does not load faiss or torch)::

    index.build(run, kind="tokens", factory="Flat", metric="cosine")  -> list[IndexManifest]
    index.open_index(run, "generated" | "original" | "senses")         -> LoadedIndex
    index.neighbors(run, ["cat", "Ġdog", 1234], k=10)                  -> polars.DataFrame
    index.reverse(run, "a small domesticated feline", k=10)            -> polars.DataFrame
    index.reverse_vectors(run, vectors, k=10)                          -> polars.DataFrame
    index.reverse_words(run, "a young dog", k=10)                      -> polars.DataFrame (headwords)
    index.reverse_batch(run, "defs.txt", 10, "out.parquet")            -> BatchResult
    index.senses_near(run, "bank", k=10)                               -> polars.DataFrame
    index.neighbors_table(run, db, k=10)                               -> NeighborTableResult
    index.export(run, "hf", "rare", "out/", how="dirmix:0.2")          -> ExportResult (rows=None: default)
    index.select_rows(run, db, "task:train.tsv:0.2")                   -> numpy bool mask
    index.policy_matrix(run, db, index.RowPolicy("covered", "mix:0.3")) -> (V×d matrix, V bool mask)
    index.replace_rows(model, matrix, mask)                            -> SwapReport
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from index.errors import (
    ExportError,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    IndexStageError,
    SelectError,
    SwapError,
    TokenNotFound,
    TooFewVectors,
)

if TYPE_CHECKING:  # the lazy names below, spelled out for mypy and editors
    from index.exporter import ExportResult, export, export_matrix
    from index.faiss_index import IndexManifest, LoadedIndex, build, build_kind, open_index
    from index.policy import (
        RowPolicy,
        RunChoice,
        apply_how,
        blend,
        default_policy,
        policy_matrix,
        record_choice,
        run_choice,
    )
    from index.query import neighbors, reverse, reverse_vectors, senses_near
    from index.reverse_dictionary import (
        ReverseDictionary,
        build_reverse,
        open_reverse,
        reverse_batch,
        reverse_words,
    )
    from index.select import select_rows
    from index.swap import SwapReport, replace_rows
    from index.table import NeighborTableResult, neighbors_table

_LAZY = {
    "build": "index.faiss_index",
    "build_kind": "index.faiss_index",
    "open_index": "index.faiss_index",
    "IndexManifest": "index.faiss_index",
    "LoadedIndex": "index.faiss_index",
    "neighbors": "index.query",
    "reverse": "index.query",
    "reverse_vectors": "index.query",
    "senses_near": "index.query",
    "reverse_words": "index.reverse_dictionary",
    "reverse_batch": "index.reverse_dictionary",
    "build_reverse": "index.reverse_dictionary",
    "open_reverse": "index.reverse_dictionary",
    "ReverseDictionary": "index.reverse_dictionary",
    "neighbors_table": "index.table",
    "NeighborTableResult": "index.table",
    "export": "index.exporter",
    "export_matrix": "index.exporter",
    "ExportResult": "index.exporter",
    "select_rows": "index.select",
    "RowPolicy": "index.policy",
    "default_policy": "index.policy",
    "RunChoice": "index.policy",
    "record_choice": "index.policy",
    "run_choice": "index.policy",
    "policy_matrix": "index.policy",
    "blend": "index.policy",
    "apply_how": "index.policy",
    "replace_rows": "index.swap",
    "SwapReport": "index.swap",
}

__all__ = [
    "ExportError",
    "IndexCorrupt",
    "IndexMismatch",
    "IndexMissing",
    "IndexStageError",
    "SelectError",
    "SwapError",
    "TokenNotFound",
    "TooFewVectors",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'index' has no attribute {name!r}")
