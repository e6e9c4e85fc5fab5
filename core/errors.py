"""The root of every error the toolkit raises on purpose, and the errors no single stage owns."""

from __future__ import annotations

__all__ = ["DefembError", "OutputError"]


class DefembError(Exception):
    """Root of every error any stage raises on purpose (lexicon, embedder, index, evaluation, cli).

    The command line catches this one type and prints its message as one `Error:` line instead of a
    traceback.
    """


class OutputError(DefembError):
    """An output path the toolkit refuses to write (it exists, or is not the toolkit's to replace)."""
