"""Putting a run's rows into its PLM and saving the result with `save_pretrained`.

The tied-weight rules (RoBERTa's LM head, BART's shared/encoder/decoder/LM-head tables, BERT) live in
one place, `index.swap.replace_rows`, and the swapped model has one writer, `index.exporter.export`;
this module loads models for fine-tuning and calls them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.plm import load_plm
from definitionemb.embedder.binding import LexiconRef
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import EvaluationError

__all__ = ["SwapResult", "replace_rows", "load_model", "swap_into", "save_swapped"]


def replace_rows(model: Any, matrix: np.ndarray, mask: np.ndarray, target: str | None = None) -> Any:
    """`index.swap.replace_rows` on private copies of the run's arrays (`target`: the run's table)."""
    from definitionemb.index.swap import replace_rows as _replace

    # A copy: run arrays are read-only memory maps, and torch must not wrap a read-only buffer.
    return _replace(model, np.array(matrix, dtype=np.float32), np.array(mask, dtype=bool), target)


def load_model(model: str | os.PathLike[str], head: str = "native") -> Any:
    """`core.plm.load_plm`: the PLM at a local folder, in its native head class or the one asked for."""
    return load_plm(model, head)


@dataclass(frozen=True)
class SwapResult:
    """Where the swapped model went, under which row policy, and how many rows changed."""

    out_dir: str
    rows: str
    how: str
    replaced_rows: int
    vocab_size: int

    @property
    def policy(self) -> str:
        return f"--rows {self.rows} --how {self.how}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "policy": self.policy}


def swap_into(model: Any, run: RunDir, db: LexiconRef, rows: str | None, how: str | None = None) -> int:
    """Change the policy's rows of `model` in place (`rows` × `how`, None: the default); returns how many."""
    from definitionemb.evaluation.rows import policy_swap
    from definitionemb.index.swap import run_target

    matrix, mask = policy_swap(run, db, rows, how)
    replace_rows(model, matrix, mask, run_target(run.manifest()))
    return int(mask.sum())


def save_swapped(
    run: RunDir,
    db: LexiconRef = None,
    rows: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    how: str | None = None,
) -> SwapResult:
    """The run's model with the policy's rows changed, saved with `save_pretrained` (tokenizer, model card,
    sentence-transformers modules) into `out_dir` (default `<run>/model`), atomically.

    One writer for both this and `defemb export --format hf`: `index.exporter.export`, which also checks
    that the run's base model is the one its `original_vectors.npy` came from. The run's own
    `<run>/model` is rewritten freely; another existing `out_dir` only with `force`, and only if the
    toolkit wrote it (:func:`core.fileio.claim_output`).
    """
    from definitionemb.index.exporter import export

    if not run.manifest().get("model"):
        raise EvaluationError(f"{run.manifest_path} names no model; the run cannot be swapped")
    out = Path(out_dir) if out_dir is not None else run.model_dir
    own = out.resolve() == run.model_dir.resolve()
    res = export(run, "hf", rows, out, db, force=force or own, how=how, allow_in=run.path if own else None)
    return SwapResult(str(out), res.rows, res.how, res.rows_replaced, res.vocab_size)
