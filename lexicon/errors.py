"""The lexicon's exceptions: one base class, so callers can catch everything the stage raises."""

from __future__ import annotations

from definitionemb.core.errors import DefembError, OutputError

__all__ = [
    "DefembError",
    "LexiconBusy",
    "LexiconError",
    "OutputError",
    "SchemaMismatch",
    "SourceError",
    "TokenizerError",
]


class LexiconError(DefembError):
    """Base class of every error the lexicon stage raises on purpose."""


class SchemaMismatch(LexiconError):
    """The database was built by another schema version; it must be rebuilt, not migrated."""


class SourceError(LexiconError):
    """A source path or kind that cannot be read at all (wrong file, missing folder, unknown kind)."""


class TokenizerError(LexiconError):
    """A tokenizer that cannot be loaded, or that the database has not aligned yet."""


class LexiconBusy(LexiconError):
    """Another process is writing the same lexicon; one writer at a time."""
