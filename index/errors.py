"""The index stage's exceptions: one base class for everything it raises on purpose."""

from __future__ import annotations

from definitionemb.core.errors import DefembError

__all__ = [
    "IndexStageError",
    "IndexMismatch",
    "IndexCorrupt",
    "IndexMissing",
    "TooFewVectors",
    "TokenNotFound",
    "SelectError",
    "ExportError",
    "SwapError",
]


class IndexStageError(DefembError):
    """Base class of the index stage's errors."""


class IndexMissing(IndexStageError):
    """The index asked for has not been built for this run."""


class IndexMismatch(IndexStageError):
    """An index that does not belong to the run (other run, other dimension, other vectors)."""


class IndexCorrupt(IndexStageError):
    """An index file whose content no longer matches its manifest (truncated, edited, unreadable)."""


class TooFewVectors(IndexStageError):
    """The index type needs more training vectors than the run has (e.g. IVF nlist > rows)."""


class TokenNotFound(IndexStageError):
    """A query token that is neither an id, a piece nor a single-token word of the run's tokenizer."""


class SelectError(IndexStageError):
    """A row selection (`covered`, `rare`, `task:FILE[:ratio]`) that cannot be evaluated."""


class ExportError(IndexStageError):
    """An embedding-matrix export that cannot be written as asked."""


class SwapError(IndexStageError):
    """Rows that cannot be swapped into a model (shape or vocabulary mismatch)."""
