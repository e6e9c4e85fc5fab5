"""Errors of the evaluation stage. Every message says what to do about it."""

from __future__ import annotations

from definitionemb.core.errors import DefembError

__all__ = ["EvaluationError", "DataFormatError", "MissingStage"]


class EvaluationError(DefembError):
    """Base class of every error raised by `evaluation`."""


class DataFormatError(EvaluationError):
    """An evaluation data file (word pairs, GLUE TSV, summaries) could not be read."""


class MissingStage(EvaluationError):
    """Something another stage produces (index.swap, a run array, a lexicon table) is not there yet."""
