"""Row policies: *which* rows of a run's vocabulary change, and *how* they change.

A policy is two short strings, spelled the same on every command (`--rows ROWS --how HOW`), in the
Python API (`RowPolicy(rows, how)`), in every export's metadata and in the run report:

- rows: `covered` | `rare` | `task:FILE[:ratio]` (see `index.select`);
- how:
  - `replace` — the generated row replaces the original (the paper's swap);
  - `mix:α` — `(1-α)·original + α·generated`;
  - `dirmix:α` — the directions are mixed and the original row's norm kept:
    `|o| · unit((1-α)·unit(o) + α·unit(g))`. The generated rows of a short CPU regressor are shorter and
    less spread than the originals, so a plain mix also shrinks the row and pulls it toward the
    generated cloud's mean; mixing directions moves only where the row points.
  - `normmix:α` — the plain mix, rescaled to the original row's norm: `|o| · unit((1-α)·o + α·g)`. It
    points exactly where `mix:α` points (so every cosine, and every word-similarity score, is the
    mix's), but the row keeps the length pre-training gave it, which a fine-tuned model sees.

The default is the run's own choice where it made one on development data (`defemb eval knobs`:
`<run>/policy.json`, :func:`record_choice`; the report of `defemb run` shows its knobs without adopting
them), else `DEFAULT_ROWS`/`DEFAULT_HOW`.

Replacing throws away what pre-training put into a row; anchoring the row to the original and moving it
toward the definition is what beats the original rows on word similarity (`benchmarks/RESULTS.md`, issue
9). Everything here is numpy in, numpy out.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from definitionemb.core.records import Record
from definitionemb.index.errors import SelectError

if TYPE_CHECKING:
    from definitionemb.embedder.binding import LexiconRef
    from definitionemb.index.vocabulary import RunLike

__all__ = [
    "DEFAULT_ROWS",
    "DEFAULT_HOW",
    "METHODS",
    "How",
    "RowPolicy",
    "parse_how",
    "default_policy",
    "as_policy",
    "chosen_for",
    "RunChoice",
    "record_choice",
    "run_choice",
    "blend",
    "apply_how",
    "policy_matrix",
]

METHODS = ("replace", "mix", "dirmix", "normmix")
# The shipped default: the winner of `defemb eval knobs --objective both` (the best mean word-similarity
# Spearman on the development thirds of the six sets among the candidates non-inferior on STS-B dev, the
# rare-bucket I(W) guard kept) on the embedded demo run with word-internal pieces left to their own rows
# (benchmarks/RESULTS.md, issue 23). mix:0.45, the static-only winner before it, costs STS-B dev −0.0017
# (95 % CI −0.0052 … +0.0015) and STS-B test −0.0044 (−0.0096 … +0.0002).
DEFAULT_ROWS = "covered"
DEFAULT_HOW = "mix:0.35"

CHOICE_FORMAT = 1

_HOW = re.compile(rf"^({'|'.join(METHODS)})(?::([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?$")


@dataclass(frozen=True)
class How:
    """A parsed `--how` value: the method and its weight α on the generated row (1.0 for replace)."""

    method: str
    alpha: float = 1.0

    def __str__(self) -> str:
        return "replace" if self.method == "replace" else f"{self.method}:{self.alpha:g}"


def parse_how(how: str | How) -> How:
    """Parse `replace`, `mix:α`, `dirmix:α` or `normmix:α` (α in [0, 1]); `mix:1` is kept as written."""
    if isinstance(how, How):
        return how
    m = _HOW.match(str(how).strip())
    if not m:
        raise SelectError(
            f"unknown --how {how!r}; use replace, mix:ALPHA, dirmix:ALPHA or normmix:ALPHA "
            "(ALPHA in [0, 1], e.g. mix:0.45)"
        )
    method, alpha = m.group(1), m.group(2)
    if method == "replace":
        if alpha is not None:
            raise SelectError(f"replace takes no weight (got {how!r}); use mix:{alpha} to weight the rows")
        return How("replace", 1.0)
    if alpha is None:
        raise SelectError(f"{method} needs a weight on the generated row, e.g. {method}:0.2")
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise SelectError(f"the weight of {how!r} must lie in [0, 1], got {a}")
    return How(method, a)


@dataclass(frozen=True)
class RowPolicy:
    """Which rows change (`rows`) and how (`how`); validated and normalised on construction."""

    rows: str = DEFAULT_ROWS
    how: str = DEFAULT_HOW

    def __post_init__(self) -> None:
        from definitionemb.index.select import (
            parse_select,  # lazily: the CLI reads the defaults without duckdb
        )

        parse_select(self.rows)
        object.__setattr__(self, "how", str(parse_how(self.how)))

    @property
    def parsed(self) -> How:
        return parse_how(self.how)

    @property
    def label(self) -> str:
        """A short column name for tables: `dirmix:0.2`, or `rare dirmix:0.2` when not every covered row."""
        if self.rows == "covered":
            return self.how
        rows = self.rows
        if rows.startswith("task:"):
            from definitionemb.index.select import parse_select

            sel = parse_select(rows)
            rows = f"task:{Path(str(sel.path)).name}" + (f":{sel.ratio:g}" if sel.ratio != 1.0 else "")
        return f"{rows} {self.how}"

    @property
    def spelling(self) -> str:
        """The command-line flags that select this policy."""
        return f"--rows {self.rows} --how {self.how}"

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "how": self.how, "spelling": self.spelling}


def default_policy(run: RunLike | None = None) -> RowPolicy:
    """The default policy: for a `run` that recorded its own choice (:func:`record_choice`, written by
    `defemb eval knobs`) and still has the vectors it was chosen on, that choice; else
    the shipped default (`DEFAULT_ROWS`, `DEFAULT_HOW`)."""
    if run is not None:
        choice = run_choice(run)
        if choice is not None:
            return RowPolicy(choice.rows, choice.how)
    return RowPolicy(DEFAULT_ROWS, DEFAULT_HOW)


def as_policy(
    rows: str | RowPolicy | None = None, how: str | None = None, run: RunLike | None = None
) -> RowPolicy:
    """A RowPolicy from `rows`/`how` strings; what is left out comes from the default policy — the
    `run`'s recorded choice (:func:`run_choice`), made for its own rows, else the shipped default."""
    if isinstance(rows, RowPolicy):
        return rows if how is None else RowPolicy(rows.rows, how)
    if rows and how:  # nothing to fill in: the run's choice is not read
        return RowPolicy(rows, how)
    d = default_policy(run)
    if rows and rows != d.rows:  # the run chose α for other rows: the shipped default's α, said aloud
        shipped = default_policy()
        if d != shipped:
            warnings.warn(
                f"the run's own choice ({d.spelling}) was made for other rows; --rows {rows} takes the "
                f"shipped --how {shipped.how} (give --how to choose, or leave out --rows for the run's choice)",
                stacklevel=2,
            )
        d = shipped
    return RowPolicy(rows or d.rows, how or d.how)


def chosen_for(run: RunLike, policy: RowPolicy) -> RunChoice | None:
    """The run's recorded choice when `policy` is it (None when the policy was given or shipped)."""
    choice = run_choice(run)
    return choice if choice is not None and (choice.rows, choice.how) == (policy.rows, policy.how) else None


@dataclass(frozen=True)
class RunChoice(Record):
    """`<run>/policy.json`: the policy chosen for this run on development data, and on which vectors.

    How much of the generated row helps depends on how good the rows are: the quick preset's rows are
    best mixed at α 0.35, the standard preset's at 0.55 (`benchmarks/RESULTS.md`). A run that measured
    its own winner exports and evaluates with it when no `--how` is given.
    """

    rows: str
    how: str
    reason: str
    command: str
    token_vectors_digest: str
    original_vectors_digest: str
    format: int = CHOICE_FORMAT


def _vector_digests(run: RunLike) -> tuple[str, str]:
    from definitionemb.index.faiss_index import source_digest
    from definitionemb.index.vocabulary import as_run

    r = as_run(run)
    return source_digest(r.array_path("token_vectors.npy")), source_digest(
        r.array_path("original_vectors.npy")
    )


def record_choice(run: RunLike, rows: str, how: str, reason: str, command: str) -> RunChoice:
    """Write `<run>/policy.json` (atomically), bound to the run's current vectors; returns it."""
    from definitionemb.core.fileio import write_bytes
    from definitionemb.index.vocabulary import as_run

    r = as_run(run)
    p = RowPolicy(rows, how)  # validated
    tok, orig = _vector_digests(r)
    choice = RunChoice(p.rows, p.how, reason, command, tok, orig)
    write_bytes(r.policy_path, json.dumps(choice.to_dict(), indent=2).encode())
    return choice


def run_choice(run: RunLike) -> RunChoice | None:
    """The run's recorded choice, or None when it has none or its vectors changed since (a warning
    says so: the vectors were regenerated, choose again with `defemb eval knobs`)."""
    from definitionemb.index.vocabulary import as_run

    r = as_run(run)
    path = r.policy_path
    if not path.is_file():
        return None
    try:
        choice = RunChoice(**json.loads(path.read_text(encoding="utf-8")))
        RowPolicy(choice.rows, choice.how)
    except (OSError, ValueError, TypeError, SelectError) as exc:
        raise SelectError(
            f"{path} is not a readable policy choice ({exc}); delete it or rerun `defemb eval knobs --run {r.path}`"
        ) from exc
    if choice.format != CHOICE_FORMAT:
        raise SelectError(f"{path} has format {choice.format}, this definitionemb reads {CHOICE_FORMAT}")
    if (choice.token_vectors_digest, choice.original_vectors_digest) != _vector_digests(r):
        warnings.warn(
            f"{path} was chosen on other vectors (regenerated since?); using the shipped default "
            f"{DEFAULT_HOW}: choose again with `defemb eval knobs --run {r.path}`",
            stacklevel=2,
        )
        return None
    return choice


def _unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0), n


def blend(original: np.ndarray, generated: np.ndarray, how: str | How) -> np.ndarray:
    """Row-wise blend of two n×d arrays by `how` (float32). `mix:α` is exactly the weighted sum."""
    h = parse_how(how)
    o = np.asarray(original, dtype=np.float64)
    g = np.asarray(generated, dtype=np.float64)
    if o.shape != g.shape or o.ndim != 2:
        raise SelectError(
            f"original {o.shape} and generated {g.shape} rows must be two arrays of one n×d shape"
        )
    if h.method == "replace":
        out = g
    elif h.method == "mix":
        out = (1.0 - h.alpha) * o + h.alpha * g
    else:  # dirmix and normmix keep the original row's norm and differ in the direction they mix
        uo, no = _unit(o)
        if h.method == "dirmix":
            d, _ = _unit((1.0 - h.alpha) * uo + h.alpha * _unit(g)[0])
        else:
            d, _ = _unit((1.0 - h.alpha) * o + h.alpha * g)
        # A zero original row has no norm to keep; a direction that cancels out keeps the original.
        out = np.where(np.linalg.norm(d, axis=1, keepdims=True) > 0, d * no, o)
    return out.astype(np.float32)


def apply_how(original: np.ndarray, generated: np.ndarray, mask: np.ndarray, how: str | How) -> np.ndarray:
    """The V×d float32 matrix: original rows, with the `mask` rows blended by `how`."""
    o = np.asarray(original)
    m = np.asarray(mask)
    if m.dtype != np.bool_ or m.shape != (o.shape[0],):
        raise SelectError(f"mask must be a boolean vector of length {o.shape[0]}, got {m.dtype}{m.shape}")
    out = np.array(o, dtype=np.float32, order="C", copy=True)
    if m.any():
        out[m] = blend(o[m], np.asarray(generated)[m], how)
    return out


def policy_matrix(
    run: RunLike, db: LexiconRef, policy: RowPolicy | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(V×d matrix, V bool mask) of `policy` (default: :func:`default_policy` of the run) over its rows.

    The mask is `select_rows(run, db, policy.rows)` (always within the covered rows); `db` (a path or a
    bound lexicon) defaults to the run's own lexicon where the rows need one.
    """
    from definitionemb.index.select import select_rows
    from definitionemb.index.vocabulary import as_run

    r = as_run(run)
    p = policy or default_policy(r)
    original = r.original_vectors()
    generated = r.token_vectors()
    if original.shape != generated.shape:
        raise SelectError(
            f"{r.path}: original_vectors {original.shape} and token_vectors {generated.shape} differ in shape"
        )
    mask = np.asarray(select_rows(r, db, p.rows), dtype=bool)
    matrix = apply_how(original, generated, mask, p.how)
    if not np.isfinite(matrix[mask]).all():
        raise SelectError(f"run {r.path} has NaN/Inf in the rows to change; regenerate its vectors")
    return matrix, mask
