"""Which rows of the vocabulary an export (or evaluation) replaces: `covered`, `rare`, `task:FILE[:ratio]`.

Every selection is intersected with the run's covered mask: a row without a generated vector has
nothing to be replaced with.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from definitionemb.embedder.binding import LexiconRef, bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import SelectError
from definitionemb.index.vocabulary import RunLike, as_run

__all__ = ["Selection", "parse_select", "select_rows", "task_texts", "task_token_counts"]


@dataclass(frozen=True)
class Selection:
    """A parsed `--select` value."""

    kind: str  # covered | rare | task
    path: Path | None = None
    ratio: float = 1.0


def parse_select(select: str) -> Selection:
    """Parse `covered`, `rare` or `task:FILE[:ratio]` (ratio in (0, 1], default 1.0)."""
    if select in ("covered", "rare"):
        return Selection(select)
    if select.startswith("task:"):
        rest = select[len("task:") :]
        ratio = 1.0
        head, sep, tail = rest.rpartition(":")
        if sep and head:
            try:
                ratio = float(tail)
                rest = head
            except ValueError:
                pass  # a colon inside the file name, no ratio given
        if not rest:
            raise SelectError("task: needs a file, e.g. --select task:train.tsv or task:train.tsv:0.2")
        if not 0.0 < ratio <= 1.0:
            raise SelectError(f"the task ratio must lie in (0, 1], got {ratio}")
        return Selection("task", Path(rest), ratio)
    raise SelectError(f"unknown selection {select!r}; use covered, rare or task:FILE[:ratio]")


def task_texts(path: Path) -> list[str]:
    """The text of a task file: each line of a text file; for .tsv, every field that contains a space.

    Labels, ids and source codes in a TSV are single words, so "fields with a space" keeps the
    sentences (CoLA's sentence, RTE/MRPC's sentence pairs) without naming columns per task.
    """
    if not path.is_file():
        raise SelectError(f"task file {path} does not exist")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            if path.suffix.lower() in (".tsv", ".tab"):
                reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
                texts = [f for row in reader for f in row if " " in f.strip()]
            else:
                texts = [line.strip() for line in fh if line.strip()]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SelectError(
            f"task file {path} is not UTF-8 text ({exc}); task: needs the task's text file"
        ) from exc
    if not texts:
        raise SelectError(f"task file {path} holds no text to tokenize")
    return texts


def task_token_counts(run: RunDir, path: Path) -> np.ndarray:
    """How often each token id occurs in the task file, tokenized with the run's tokenizer (V counts)."""
    model = run.model_path()
    if not model:
        raise SelectError(f"run {run.path} records no model, so its tokenizer for task:FILE is unknown")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(model))
    except Exception as exc:
        raise SelectError(f"cannot load the run's tokenizer from {model}: {exc}") from exc
    vocab = int(run.manifest().get("vocab_size") or len(tok))
    counts = np.zeros(vocab, dtype=np.int64)
    texts = task_texts(path)
    for start in range(0, len(texts), 4096):
        enc = tok(texts[start : start + 4096], add_special_tokens=False)["input_ids"]
        flat = np.fromiter((i for ids in enc for i in ids), dtype=np.int64)
        if flat.size and flat.max() >= vocab:
            raise SelectError(
                f"the tokenizer at {model} yields id {flat.max()} ≥ the run's vocab_size {vocab}"
            )
        counts += np.bincount(flat, minlength=vocab)
    for sid in tok.all_special_ids:
        if 0 <= sid < vocab:
            counts[sid] = 0
    return counts


def select_rows(run: RunLike, db: LexiconRef, select: str) -> np.ndarray:
    """Boolean V mask of the rows to replace.

    - `covered`: every covered token;
    - `rare`: covered tokens in the lexicon's `rare` bucket (token.bucket) — needs the lexicon;
    - `task:FILE[:ratio]`: the tokens of FILE ordered by their count there (most frequent first, ties by
      id) and cut to the last `ceil(ratio·n)` — the task's rare tail; ratio 1.0 takes them all. The
      cut is made among all task tokens, then uncovered ones are dropped.
    """
    r = as_run(run)
    sel = parse_select(select)
    covered = np.asarray(r.covered_mask(), dtype=bool)
    if sel.kind == "covered":
        return covered.copy()
    if sel.kind == "rare":
        with bound(r, db) as lex:
            ids = lex.bucket_ids("rare")
        if not ids.size:
            raise SelectError("the lexicon has no tokens in the rare bucket for this tokenizer; re-run align")
        rare = np.zeros_like(covered)
        rare[ids[ids < rare.size]] = True
        return rare & covered
    assert sel.path is not None
    counts = task_token_counts(r, sel.path)
    present = np.flatnonzero(counts > 0)
    # Most frequent first, ties by id, so the tail is the task's rarest tokens, deterministically.
    order = present[np.lexsort((present, -counts[present]))]
    n_take = math.ceil(sel.ratio * order.size)
    mask = np.zeros_like(covered)
    mask[order[order.size - n_take :]] = True
    return mask & covered
