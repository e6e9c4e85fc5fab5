"""Export of a run's embedding matrix under a row policy (`index.policy`): the model's V×d matrix with
the policy's rows changed, plus the changed-row mask, as npy, safetensors, a torch dict or a complete
HF model — the one writer of a swapped model (`evaluation.save_swapped` calls it too).

Every export is written into a temporary file or folder beside `out` and moved into place at the end,
and records its policy (`--rows … --how …`) in its metadata.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.fileio import claim_output, output_dir, output_file, save_npy
from definitionemb.embedder.binding import LexiconRef
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import ExportError
from definitionemb.index.policy import RowPolicy, apply_how, as_policy, chosen_for, policy_matrix
from definitionemb.index.vocabulary import RunLike, as_run

__all__ = [
    "FORMATS",
    "ExportResult",
    "export",
    "export_matrix",
    "load_base_model",
    "write_model",
    "as_policy",
]

FORMATS = ("npy", "safetensors", "pt", "hf")
META_FILE = "definitionemb_export.json"


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    format: str
    out: str
    run_id: str
    rows: str
    how: str
    rows_replaced: int
    vocab_size: int
    dim: int
    seconds: float
    tables: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # sentence-transformers files kept beside the weights (hf)

    @property
    def policy(self) -> str:
        return f"--rows {self.rows} --how {self.how}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "policy": self.policy}


def export_matrix(run: RunLike, mask: np.ndarray, how: str = "replace") -> np.ndarray:
    """The V×d float32 matrix: original rows, with the `mask` rows blended with token_vectors by `how`."""
    r = as_run(run)
    original = r.original_vectors()
    tokens = r.token_vectors()
    if original.shape != tokens.shape:
        raise ExportError(
            f"original_vectors {original.shape} and token_vectors {tokens.shape} differ in shape"
        )
    if mask.shape != (original.shape[0],) or mask.dtype != np.bool_:
        raise ExportError(
            f"mask must be a boolean vector of length {original.shape[0]}, got {mask.dtype}{mask.shape}"
        )
    matrix = apply_how(original, tokens, mask, how)
    if not np.isfinite(matrix[mask]).all():
        raise ExportError(f"run {r.path} has NaN/Inf in the rows to export; regenerate its vectors")
    return matrix


def _meta(run: RunDir, policy: RowPolicy, fmt: str, rows: int) -> dict[str, str]:
    choice = chosen_for(run, policy)
    return {
        "run_id": run.run_id,
        "rows": policy.rows,
        "how": policy.how,
        "policy": policy.spelling,
        # where the policy came from: the run's own choice on development data, or as asked/shipped
        "policy_source": f"run choice ({choice.command})" if choice else "given or shipped default",
        **({"policy_reason": choice.reason} if choice else {}),
        "format": fmt,
        "rows_replaced": str(rows),
    }


def load_base_model(model: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder, in the head class its config names (masked-LM/seq2seq).

    The config's `architectures` picks the class, so a RoBERTa/BERT masked LM keeps its LM head and a
    BART keeps its conditional-generation head; a bare encoder (e.g. MiniLM's BertModel) stays bare.
    """
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read the model config at {model}: {exc}") from exc
    arch = (getattr(config, "architectures", None) or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        cls = (
            transformers.AutoModelForSeq2SeqLM
            if getattr(config, "is_encoder_decoder", False)
            else transformers.AutoModelForMaskedLM
        )
    try:
        loaded = cls.from_pretrained(str(model))
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot load the base model or tokenizer from {model}: {exc}") from exc
    return loaded, tokenizer


def _check_base(model: Any, run: RunDir, model_path: str) -> None:
    """The base model must be the one the run started from: its rows equal `original_vectors.npy`."""
    import torch
    from definitionemb.index.swap import run_target, target_weight

    original = run.original_vectors()
    emb = target_weight(model, run_target(run.manifest()))
    if tuple(emb.shape) != tuple(original.shape):
        raise ExportError(
            f"the model at {model_path} has a {tuple(emb.shape)} embedding, the run {tuple(original.shape)}; "
            "export with the model the run was trained from"
        )
    # A spread of rows (not only the first ones, which are often special or unused) is enough to tell
    # another checkpoint apart; comparing all 50k×768 would double the export's time for nothing.
    keep = np.unique(np.linspace(0, original.shape[0] - 1, num=min(4096, original.shape[0])).astype(np.int64))
    base = emb.detach()[torch.as_tensor(keep)].float().cpu().numpy()
    if not np.allclose(base, np.asarray(original[keep], dtype=np.float32), atol=1e-3, rtol=1e-3):
        raise ExportError(
            f"the model at {model_path} is not the one run {run.run_id} started from (its embedding rows "
            "differ from original_vectors.npy); export with the run's own base model"
        )


def _card_inputs(run: RunDir, db: LexiconRef) -> list[tuple[str, str]]:
    from definitionemb.embedder.binding import bound
    from definitionemb.index.card import lexicon_sources

    try:
        with bound(run, db) as lex:
            return lexicon_sources(lex.con) if lex.available else []
    except Exception:  # an unreadable lexicon: the card names none rather than failing the export
        return []


def write_model(
    run: RunLike,
    matrix: np.ndarray,
    mask: np.ndarray,
    out: str | os.PathLike[str],
    policy: RowPolicy,
    db: LexiconRef = None,
    meta: dict[str, Any] | None = None,
    force: bool = False,
    output_head: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Write the run's base model with `matrix[mask]` swapped in as a complete folder at `out`.

    The one writer of a swapped model: checks the base model against the run's `original_vectors.npy`,
    replaces the rows through `index.swap.replace_rows` (tied weights), then writes atomically
    `save_pretrained` + tokenizer + `replaced_mask.npy` + `definitionemb_export.json` + a model card
    (README.md), and, when the base is a sentence-transformers folder, its modules and configs. The
    rows go into the table the run regressed onto (its `target_table`); `output_head` also writes an
    untied LM head (T5 v1.1), which is otherwise left alone.
    An existing `out` is replaced only with `force` (:func:`lexicon.fileio.claim_output`). Returns
    (tables written, sentence-transformers files kept).
    """
    from definitionemb.index.card import (
        copy_sentence_transformers,
        is_sentence_transformers,
        model_card,
        stored_wordsim,
    )
    from definitionemb.index.swap import replace_rows, run_target

    r = as_run(run)
    claim_output(Path(out), "dir", force, "hf export")  # refused before the model is loaded
    model_path = r.manifest().get("model")
    if not model_path:
        raise ExportError(f"run {r.path} records no model; a model export needs the base model")
    model, tokenizer = load_base_model(model_path)
    _check_base(model, r, str(model_path))
    report = replace_rows(
        model,
        np.asarray(matrix, dtype=np.float32),
        np.asarray(mask, dtype=bool),
        run_target(r.manifest()),
        output_head,
    )
    st = is_sentence_transformers(model_path)
    info = meta or _meta(r, policy, "hf", int(np.asarray(mask).sum()))
    reason = info.get("policy_reason")
    card = model_card(
        r,
        policy,
        int(np.asarray(mask).sum()),
        int(np.asarray(mask).shape[0]),
        str(model_path),
        _card_inputs(r, db),
        stored_wordsim(r),
        st,
        chosen=f"{reason} ({info['policy_source']})" if reason else None,
    )
    kept: list[str] = []
    with output_dir(Path(out), force, "hf export", info) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if st:
            kept = copy_sentence_transformers(model_path, tmp)
        np.save(tmp / "replaced_mask.npy", np.asarray(mask, dtype=bool))
        info = {
            **info,
            "source_model": str(model_path),
            "tables": list(report.tables),
            "untied": list(report.untied),
            "sentence_transformers": kept,
        }
        (tmp / META_FILE).write_text(json.dumps(info, indent=2))
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return report.tables, tuple(kept)


def export(
    run: RunLike,
    fmt: str,
    rows: str | RowPolicy | None,
    out: str | os.PathLike[str],
    db: LexiconRef = None,
    force: bool = False,
    how: str | None = None,
    output_head: bool = False,
) -> ExportResult:
    """Export the run's matrix under the policy `rows` × `how`, atomically (what is left out: the run's
    default policy, `index.policy.as_policy`).

    An existing `out` is replaced only with `force`, and only when it is an earlier export (never a
    run folder, a lexicon or a folder the toolkit did not write: :func:`lexicon.fileio.claim_output`).

    - `npy`: folder `out` with matrix.npy (V×d float32), mask.npy (V bool), export.json; or, for an `out`
      named `*.npy`, that file (the matrix) and `*.mask.npy` beside it;
    - `safetensors`: file `out` with tensors "embeddings" and "mask" (+ metadata);
    - `pt`: file `out`, a torch dict {"embeddings", "mask", "run_id", "rows", "how", ...};
    - `hf`: folder `out`, the base model with the changed rows (`write_model`): `save_pretrained`,
      tokenizer, model card, and the sentence-transformers modules of an ST base.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    t0 = time.perf_counter()
    r = as_run(run)
    policy = as_policy(rows, how, r)
    out_path = Path(out)
    npy_file = fmt == "npy" and out_path.name.endswith(".npy")
    mask_path = out_path.with_name(out_path.name.removesuffix(".npy") + ".mask.npy") if npy_file else out_path
    # Refused before any work: an output that may not be written is known up front.
    claim_output(
        out_path, "file" if fmt in ("safetensors", "pt") or npy_file else "dir", force, f"{fmt} export"
    )
    if npy_file:
        claim_output(mask_path, "file", force, "npy export mask")
    matrix, mask = policy_matrix(r, db, policy)
    meta = _meta(r, policy, fmt, int(mask.sum()))
    tables: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    try:
        if npy_file:
            save_npy(mask_path, mask)
            save_npy(out_path, matrix)
        elif fmt == "npy":
            with output_dir(out_path, force, "npy export", meta) as tmp:
                np.save(tmp / "matrix.npy", matrix)
                np.save(tmp / "mask.npy", mask)
                (tmp / "export.json").write_text(json.dumps(meta, indent=2))
        elif fmt == "safetensors":
            from safetensors.numpy import save_file

            with output_file(out_path, force, "safetensors export") as tmp:
                save_file({"embeddings": matrix, "mask": mask}, str(tmp), metadata=meta)
        elif fmt == "pt":
            import torch

            with output_file(out_path, force, "pt export") as tmp:
                torch.save(
                    {"embeddings": torch.from_numpy(matrix), "mask": torch.from_numpy(mask), **meta}, str(tmp)
                )
        else:
            tables, kept = write_model(r, matrix, mask, out_path, policy, db, meta, force, output_head)
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise ExportError(f"cannot write {fmt} export to {out_path}: {exc}") from exc
    return ExportResult(
        format=fmt,
        out=str(out_path),
        run_id=r.run_id,
        rows=policy.rows,
        how=policy.how,
        rows_replaced=int(mask.sum()),
        vocab_size=int(matrix.shape[0]),
        dim=int(matrix.shape[1]),
        seconds=round(time.perf_counter() - t0, 3),
        tables=tables,
        kept=kept,
    )
