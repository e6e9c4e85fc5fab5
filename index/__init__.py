"""index: FAISS neighbours, the reverse dictionary and export of embedding matrices for a run.

Public API (imported lazily so `import index` does not load faiss or torch)::

    index.build(run, kind="tokens", factory="Flat", metric="cosine")  -> list[IndexManifest]
    index.open_index(run, "generated" | "original" | "senses")         -> LoadedIndex (backend="auto")
    index.choose_backend(flat=True)                                    -> "faiss-gpu" | "torch" | "faiss-cpu"
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

from definitionemb.index.errors import (
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
    from definitionemb.index.exporter import ExportResult, export, export_matrix
    from definitionemb.index.faiss_index import IndexManifest, LoadedIndex, build, build_kind, open_index
    from definitionemb.index.policy import (
        RowPolicy,
        RunChoice,
        apply_how,
        blend,
        default_policy,
        policy_matrix,
        record_choice,
        run_choice,
    )
    from definitionemb.index.query import neighbors, reverse, reverse_vectors, senses_near
    from definitionemb.index.reverse_dictionary import (
        ReverseDictionary,
        build_reverse,
        ensure_reverse,
        open_reverse,
        reverse_batch,
        reverse_words,
    )
    from definitionemb.index.select import select_rows
    from definitionemb.index.swap import SwapReport, replace_rows
    from definitionemb.index.table import NeighborTableResult, neighbors_table
    from definitionemb.index.torch_search import TorchFlatSearch, choose_backend

_LAZY = {
    "build": "definitionemb.index.faiss_index",
    "build_kind": "definitionemb.index.faiss_index",
    "open_index": "definitionemb.index.faiss_index",
    "IndexManifest": "definitionemb.index.faiss_index",
    "LoadedIndex": "definitionemb.index.faiss_index",
    "choose_backend": "definitionemb.index.torch_search",
    "TorchFlatSearch": "definitionemb.index.torch_search",
    "neighbors": "definitionemb.index.query",
    "reverse": "definitionemb.index.query",
    "reverse_vectors": "definitionemb.index.query",
    "senses_near": "definitionemb.index.query",
    "reverse_words": "definitionemb.index.reverse_dictionary",
    "reverse_batch": "definitionemb.index.reverse_dictionary",
    "build_reverse": "definitionemb.index.reverse_dictionary",
    "open_reverse": "definitionemb.index.reverse_dictionary",
    "ensure_reverse": "definitionemb.index.reverse_dictionary",
    "ReverseDictionary": "definitionemb.index.reverse_dictionary",
    "neighbors_table": "definitionemb.index.table",
    "NeighborTableResult": "definitionemb.index.table",
    "export": "definitionemb.index.exporter",
    "export_matrix": "definitionemb.index.exporter",
    "ExportResult": "definitionemb.index.exporter",
    "select_rows": "definitionemb.index.select",
    "RowPolicy": "definitionemb.index.policy",
    "default_policy": "definitionemb.index.policy",
    "RunChoice": "definitionemb.index.policy",
    "record_choice": "definitionemb.index.policy",
    "run_choice": "definitionemb.index.policy",
    "policy_matrix": "definitionemb.index.policy",
    "blend": "definitionemb.index.policy",
    "apply_how": "definitionemb.index.policy",
    "replace_rows": "definitionemb.index.swap",
    "SwapReport": "definitionemb.index.swap",
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
    raise AttributeError(f"module 'definitionemb.index' has no attribute {name!r}")
