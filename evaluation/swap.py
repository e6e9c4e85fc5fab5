"""Putting a run's rows into its PLM and saving the result with `save_pretrained`.

The tied-weight rules (RoBERTa's LM head, BART's shared/encoder/decoder/LM-head tables, BERT) live in
one place, `index.swap.replace_rows`; this module only loads, calls it, and saves atomically.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedder.binding import LexiconRef
from embedder.rundir import RunDir
from evaluation.errors import EvaluationError
from evaluation.rows import swap_mask
from lexicon.fileio import claim_output, output_dir

__all__ = ["SwapResult", "replace_rows", "load_model", "swap_into", "save_swapped"]


def replace_rows(model: Any, matrix: np.ndarray, mask: np.ndarray) -> Any:
    """`index.swap.replace_rows` on private copies of the run's arrays."""
    from index.swap import replace_rows as _replace

    # A copy: run arrays are read-only memory maps, and torch must not wrap a read-only buffer.
    return _replace(model, np.array(matrix, dtype=np.float32), np.array(mask, dtype=bool))


def load_model(model: str | os.PathLike[str], head: str = "native") -> Any:
    """Load a PLM from a local folder.

    head = "native": the class named in its config (`RobertaForMaskedLM`, `BartForConditionalGeneration`, ...);
    "sequence-classification" or "seq2seq": the matching Auto class.
    """
    import transformers

    src = str(model)
    try:
        if head == "sequence-classification":
            return transformers.AutoModelForSequenceClassification.from_pretrained(src)
        if head == "seq2seq":
            return transformers.AutoModelForSeq2SeqLM.from_pretrained(src)
        cfg = transformers.AutoConfig.from_pretrained(src)
        archs = list(getattr(cfg, "architectures", None) or [])
        cls = getattr(transformers, archs[0], None) if archs else None
        if cls is None:
            return transformers.AutoModel.from_pretrained(src)
        return cls.from_pretrained(src)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot load the model at {src}: {exc}. Pass a local model folder.") from exc


@dataclass(frozen=True)
class SwapResult:
    """Where the swapped model went and how many rows changed."""

    out_dir: str
    select: str
    replaced_rows: int
    vocab_size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def swap_into(model: Any, run: RunDir, db: LexiconRef, select: str | None) -> int:
    """Replace the selected rows of `model` in place with the run's generated rows; returns how many."""
    mask = swap_mask(run, db, select)
    vectors = np.asarray(run.token_vectors(), dtype=np.float32)
    replace_rows(model, vectors, mask)
    return int(mask.sum())


def save_swapped(
    run: RunDir,
    db: str | os.PathLike[str] | None = None,
    select: str = "covered",
    out_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> SwapResult:
    """Load the run's model, swap the selected rows in, and `save_pretrained` it (with its tokenizer).

    The folder is written next to its destination and renamed into place, so `out_dir` (default
    `<run>/model`) is either the old model or the complete new one. The run's own `<run>/model` is
    rewritten freely; another existing `out_dir` only with `force`, and only if the toolkit wrote it
    (:func:`lexicon.fileio.claim_output`).
    """
    from transformers import AutoTokenizer

    m = run.manifest()
    if not m.get("model"):
        raise EvaluationError(f"{run.manifest_path} names no model; the run cannot be swapped")
    out = Path(out_dir) if out_dir is not None else run.path / "model"
    own = out.resolve() == (run.path / "model").resolve()
    claim_output(out, "dir", force or own, "swapped model")
    model = load_model(m["model"])
    n = swap_into(model, run, db, select)
    import json

    result = SwapResult(str(out), select, n, int(np.asarray(run.covered_mask()).shape[0]))
    with output_dir(out, force or own, "swapped model", {"run_id": run.run_id}) as tmp:
        model.save_pretrained(str(tmp))
        AutoTokenizer.from_pretrained(str(m["model"])).save_pretrained(str(tmp))
        meta = {**result.to_dict(), "run_id": run.run_id, "source_model": str(m["model"])}
        (tmp / "definitionemb_swap.json").write_text(json.dumps(meta, indent=2))
    return result
