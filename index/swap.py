"""Swapping embedding rows into a pre-trained model — the one place that knows the tied-weight rules.

RoBERTa and BERT tie their masked-LM decoder to the input embedding; BART shares one matrix between
`model.shared`, the encoder's and decoder's `embed_tokens` and the LM head. When these are one tensor
(as transformers loads them), writing the input rows changes them all; when a model was loaded with
the ties broken but its config still asks for tied weights, every copy is written so they stay equal.
An LM head that is untied on purpose (`tie_word_embeddings=False`, T5 v1.1) is a matrix of its own and
is left alone (reported in `SwapReport.untied`) unless `output=True` asks for it too.

T5 feeds both stacks from one `shared` table (v1.0 ties the LM head to it as well). T5Gemma keeps one
table per stack, the LM head tied to the decoder's: there `target` (the run's `target_table`, the table
its rows were regressed onto) picks the stack, and the other stack's table is never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from definitionemb.core.records import Record
from definitionemb.index.errors import SwapError

__all__ = ["SwapReport", "replace_rows", "embedding_tables", "target_weight", "run_target"]

# Model types whose encoder and decoder keep separate input tables by design (not a broken tie).
_SEPARATE_STACK_TABLES = ("t5gemma",)


@dataclass(frozen=True)
class SwapReport(Record):
    """Rows written, and the distinct weight tensors they were written into (tied names joined by '=')."""

    rows: int
    tables: tuple[str, ...]
    untied: tuple[str, ...]


def _ties_requested(model: torch.nn.Module) -> bool:
    config = getattr(model, "config", None)
    if config is None:
        return True
    get_text = getattr(config, "get_text_config", None)
    text = get_text() if callable(get_text) else config
    # transformers 5 forces T5's `tie_word_embeddings` to True and keeps what the checkpoint said in
    # `scale_decoder_outputs` (v1.0 True: tied; v1.1 False: an LM head of its own).
    scale = getattr(text, "scale_decoder_outputs", None)
    if isinstance(scale, bool):
        return scale
    return bool(getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", True)))


def _sub_input_embeddings(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    found: list[tuple[str, torch.nn.Module]] = []
    for getter in ("get_encoder", "get_decoder"):
        fn = getattr(model, getter, None)
        if not callable(fn):
            continue
        try:
            sub = fn()
            emb = sub.get_input_embeddings() if sub is not None else None
        except (AttributeError, NotImplementedError, TypeError):
            continue
        if isinstance(emb, torch.nn.Module):
            found.append((getter.removeprefix("get_"), emb))
    return found


def _separate_stacks(model: torch.nn.Module) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) in _SEPARATE_STACK_TABLES


def run_target(manifest: dict[str, Any]) -> str | None:
    """The table a run regressed onto (`config.target_table`); None for runs made before the choice."""
    target = (manifest.get("config") or {}).get("target_table")
    return str(target) if target else None


def target_weight(model: torch.nn.Module, target: str | None = None) -> torch.Tensor:
    """The weight of the table a run's rows belong to: the decoder's for `target="decoder"` on a model
    with separate stack tables, else the model's input embedding."""
    if target == "decoder" and _separate_stacks(model):
        for label, emb in _sub_input_embeddings(model):
            w = getattr(emb, "weight", None)
            if label == "decoder" and isinstance(w, torch.Tensor):
                return w
    get_in = getattr(model, "get_input_embeddings", None)
    inp = get_in() if callable(get_in) else None
    w_in = getattr(inp, "weight", None)
    if not isinstance(w_in, torch.Tensor):
        raise SwapError(f"{type(model).__name__} exposes no input embedding matrix")
    return w_in


def embedding_tables(
    model: torch.nn.Module, target: str | None = None, output: bool = False
) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """(tables to write, untied heads left alone): distinct vocabulary×d weights fed by the input rows.

    `target` (encoder|decoder) matters only for a model with separate stack tables (T5Gemma): the
    other stack's table is left out, and the LM head (tied to the decoder's) counts as tied only for
    `decoder`. `output=True` writes an untied LM head too.
    """
    w_in = target_weight(model, target)
    separate = _separate_stacks(model)
    aliases: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), []).append(n)
    # A tied tensor is reported under all its names ("…word_embeddings.weight=lm_head.decoder.weight").
    names = {k: "=".join(v) for k, v in aliases.items()}
    tables: dict[int, tuple[str, torch.Tensor]] = {}

    def add(w: torch.Tensor, fallback: str) -> None:
        tables.setdefault(id(w), (names.get(id(w), fallback), w))

    add(w_in, "input_embeddings")
    if not separate:
        for label, emb in _sub_input_embeddings(model):
            w = getattr(emb, "weight", None)
            if isinstance(w, torch.Tensor) and w.shape == w_in.shape:
                add(w, f"{label}.embed_tokens")
    untied: list[str] = []
    get_out = getattr(model, "get_output_embeddings", None)
    out = get_out() if callable(get_out) else None
    w_out = getattr(out, "weight", None)
    if isinstance(w_out, torch.Tensor) and w_out.shape == w_in.shape and id(w_out) not in tables:
        tied = _ties_requested(model) and (not separate or target == "decoder")
        if tied or output:
            add(w_out, "output_embeddings")
        else:
            untied.append(names.get(id(w_out), "output_embeddings"))
    return list(tables.values()), untied


def replace_rows(
    model: torch.nn.Module,
    matrix: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    target: str | None = None,
    output: bool = False,
) -> SwapReport:
    """Write `matrix[mask]` into the model's embedding rows `mask`, in place, honouring tied weights.

    `matrix` is the full V×d matrix (only the masked rows are read); `mask` a boolean vector of length
    V. The model's vocabulary must have exactly V rows of dimension d. `target` is the run's
    `target_table` (`run_target`), `output` also writes an untied LM head (`embedding_tables`).
    """
    sel = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.array(mask, copy=True))
    if sel.dtype != torch.bool:
        raise SwapError(f"mask must be boolean, got {sel.dtype}")
    shape = tuple(matrix.shape)
    tables, untied = embedding_tables(model, target, output)
    v, d = tables[0][1].shape
    if len(shape) != 2 or shape != (v, d):
        raise SwapError(
            f"matrix has shape {shape}, the model's embedding is {v}×{d}; export from a run "
            "made for this model (same tokenizer and hidden size)"
        )
    if tuple(sel.shape) != (v,):
        raise SwapError(f"mask has shape {tuple(sel.shape)}, expected ({v},)")
    # Only the chosen rows are copied (fancy indexing), so a read-only memory map is fine as input.
    if isinstance(matrix, torch.Tensor):
        new_rows = matrix[sel]
    else:
        new_rows = torch.from_numpy(np.asarray(matrix)[sel.cpu().numpy()].astype(np.float32, copy=False))
    if not torch.isfinite(new_rows).all():
        raise SwapError("the rows to swap contain NaN or Inf; regenerate the run's vectors")
    rows = torch.nonzero(sel, as_tuple=True)[0]
    with torch.no_grad():
        for _, w in tables:
            idx = rows.to(w.device)
            w.index_copy_(0, idx, new_rows.to(device=w.device, dtype=w.dtype))
    return SwapReport(rows=int(rows.numel()), tables=tuple(n for n, _ in tables), untied=tuple(untied))
