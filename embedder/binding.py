"""A run bound to its lexicon: the one place that decides which lexicon a run reads and what it says.

Every later stage that needs the lexicon for a run (token look-up, frequency buckets, special rows, row
selection, coverage) goes through :class:`RunLexicon`. It opens the database once, read-only, checks
the run's `lexicon_fingerprint` once, and caches the tokenizer id, the token table, the bucket labels
and the special rows. A library call makes one with :func:`bound` and passes it down in place of the
`db` argument, so one call reads the lexicon through one connection::

    with bound(run, db) as lex:          # db: a path, None (the run's lexicon_db) or a RunLexicon
        lex.tokenizer_id, lex.token_table(), lex.bucket_labels(), lex.special_ids()

Which lexicon: `db` when given (it must exist), else the `lexicon_db` the run recorded, when that file
is still there. Without either the run is unbound (`available` is False): buckets are then up to the
caller, and the special rows come from the model's tokenizer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import definitionemb.lexicon.db as lexicon_db
import numpy as np
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.rundir import RunDir

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "LexiconMissing",
    "LexiconRef",
    "RunLexicon",
    "RunLike",
    "as_run",
    "bound",
    "bucket_labels",
    "tokenizer_id_of",
    "tokenizer_special_ids",
]

RunLike = Union[RunDir, str, "os.PathLike[str]"]
# What a stage function takes as its `db` argument: a lexicon path, None (the run's own), or a binding.
LexiconRef = Union[str, "os.PathLike[str]", "RunLexicon", None]


class LexiconMissing(EmbedderError):
    """The run has no lexicon to read (none recorded, moved away) or it lacks the run's tokenizer."""


def as_run(run: RunLike) -> RunDir:
    """A :class:`RunDir` from a run or its folder (checked by `RunDir.open`)."""
    return run if isinstance(run, RunDir) else RunDir.open(run)


def bucket_labels(table: pl.DataFrame, n_rows: int) -> np.ndarray:
    """Per-row labels from a token table: `special`, its bucket, or `unknown` where the table lacks it."""
    labels = np.full(n_rows, "unknown", dtype=object)
    ids = table["token_id"].to_numpy()
    special = table["special"].fill_null(False).to_numpy()
    bucket = np.asarray(table["bucket"].fill_null("unknown").to_list(), dtype=object)
    keep = (ids >= 0) & (ids < n_rows)
    labels[ids[keep]] = np.where(special[keep], "special", bucket[keep])
    return labels.astype(str)


def tokenizer_special_ids(model: str | os.PathLike[str]) -> np.ndarray:
    """The special-token ids of a model's tokenizer (`<s>`, `<pad>`, `[CLS]`, …), sorted."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(model))
    except Exception as exc:  # a tokenizer that cannot be loaded is a user problem to report
        raise LexiconMissing(f"cannot load the tokenizer of {model}: {exc}") from exc
    return np.asarray(sorted(set(tok.all_special_ids)), dtype=np.int64)


class RunLexicon:
    """One run and the lexicon it reads, opened at most once (see the module docstring)."""

    def __init__(self, run: RunLike, db: str | os.PathLike[str] | None = None) -> None:
        self.run = as_run(run)
        self._manifest = self.run.manifest()
        recorded = self.run.lexicon_path()
        self.explicit = db is not None
        self.path: Path | None = Path(db) if db is not None else recorded
        self._con: duckdb.DuckDBPyConnection | None = None
        self._cache: dict[str, Any] = {}

    # --- the connection -----------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        """Whether there is a lexicon to read: the one given, or the recorded one if it still exists."""
        return self.path is not None and (self.explicit or self.path.is_file())

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The read-only connection, opened (and the fingerprint checked) on first use."""
        if self._con is None:
            if self.path is None:
                raise LexiconMissing(
                    f"run {self.run.path} records no lexicon_db in its manifest; pass the lexicon with --db PATH"
                )
            if not self.available:
                raise LexiconMissing(
                    f"run {self.run.path} was made from the lexicon {self.path}, which is not there any more; "
                    "pass the lexicon with --db PATH"
                )
            con = lexicon_db.connect(self.path, read_only=True)
            try:
                self.run.check_lexicon(lexicon_db.fingerprint(con))
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def check(self) -> Path:
        """Open the lexicon now (refusing another run's) and return its path."""
        self.con  # noqa: B018 - opening is the check
        assert self.path is not None
        return self.path

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> RunLexicon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the lexicon says about the run ----------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        n = self._manifest.get("vocab_size")
        return int(n) if n else int(self.run.original_vectors().shape[0])

    @property
    def tokenizer_id(self) -> int:
        """The lexicon's `tokenizer_id` of the run's tokenizer, found by its vocabulary hash
        (`tokenizer_sha256`): a row id alone names another tokenizer in a lexicon rebuilt or aligned in
        another order. Only a run that recorded no hash falls back on its recorded id."""
        if "tokenizer_id" not in self._cache:
            m = self._manifest
            sha = m.get("tokenizer_sha256")
            if sha:
                self._cache["tokenizer_id"] = tokenizer_id_of(self.con, str(sha), self.run, self.path)
            elif m.get("tokenizer_id") is not None:
                self._cache["tokenizer_id"] = int(m["tokenizer_id"])
            else:
                raise LexiconMissing(
                    f"run {self.run.path} records neither its tokenizer's hash nor its id; retrain it"
                )
        return int(self._cache["tokenizer_id"])

    def token_table(self) -> pl.DataFrame:
        """The run's tokenizer's `token` rows (lexicon.queries.token_table), by id."""
        if "table" not in self._cache:
            from definitionemb.lexicon.queries import token_table

            self._cache["table"] = token_table(self.con, self.tokenizer_id)
        table: pl.DataFrame = self._cache["table"]
        return table

    def bucket_labels(self) -> np.ndarray:
        """Label of every row from the lexicon: `frequent|medium|rare|special`, `unknown` where absent."""
        if "buckets" not in self._cache:
            self._cache["buckets"] = bucket_labels(self.token_table(), self.vocab_size)
        labels: np.ndarray = self._cache["buckets"]
        return labels

    def bucket_ids(self, bucket: str) -> np.ndarray:
        """Ids of the tokens in one lexicon bucket (`rare`, …)."""
        return np.flatnonzero(self.bucket_labels() == bucket).astype(np.int64)

    def special_ids(self) -> np.ndarray:
        """Ids of the special rows: from the lexicon when it holds the run's tokenizer, else the model's."""
        if "special" not in self._cache:
            if self.available and self._aligned():
                table = self.token_table()
                ids = table.filter(table["special"].fill_null(False))["token_id"].to_numpy()
                self._cache["special"] = np.sort(ids.astype(np.int64))
            elif self.run.model_path():
                self._cache["special"] = tokenizer_special_ids(str(self.run.model_path()))
            else:
                raise LexiconMissing(
                    f"cannot tell the special tokens of run {self.run.path}: it records no model and no "
                    "usable lexicon; pass --db LEXICON"
                )
        ids_: np.ndarray = self._cache["special"]
        return ids_

    def _aligned(self) -> bool:
        from definitionemb.lexicon.errors import TokenizerError

        try:
            self.token_table()
        except (LexiconMissing, TokenizerError):
            return False
        return True


def tokenizer_id_of(con: duckdb.DuckDBPyConnection, sha256: str, run: RunDir, db: Path | None) -> int:
    """The id under which `db` aligned the run's tokenizer (by its vocabulary hash); refused when absent."""
    from definitionemb.lexicon.aligner import tokenizer_id

    tid = tokenizer_id(con, sha256)
    if tid is None:
        raise LexiconMissing(
            f"the tokenizer of run {run.path} ({sha256[:12]}…) is not aligned in {db}; run: defemb lexicon "
            f"align --db {db} --tokenizer {run.model_path() or 'MODEL'}"
        )
    return tid


@contextlib.contextmanager
def bound(run: RunLike, db: LexiconRef = None) -> Iterator[RunLexicon]:
    """The binding of `run` to `db`: `db` itself when it is one (left open), else a new one closed at exit."""
    if isinstance(db, RunLexicon):
        r = as_run(run)
        if db.run.path.resolve() != r.path.resolve():
            raise EmbedderError(f"the lexicon binding of run {db.run.path} was passed for run {r.path}")
        yield db
        return
    lex = RunLexicon(run, db)
    try:
        yield lex
    finally:
        lex.close()
