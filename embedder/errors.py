"""The embedder's exceptions: one base class for everything the stage raises on purpose."""

from __future__ import annotations

from definitionemb.core.errors import DefembError


class EmbedderError(DefembError):
    """Base class of the embedder's errors."""


class RunMismatch(EmbedderError):
    """A run directory whose pieces do not belong together (other tokenizer, lexicon or model)."""


class NonFiniteOutput(EmbedderError):
    """Generation produced NaN or Inf rows; never written silently."""
