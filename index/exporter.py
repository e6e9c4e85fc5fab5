"""Export of a run's embedding matrix: the model's V×d matrix with the selected rows replaced by the
generated ones, plus the replaced-row mask, as npy, safetensors, a torch dict or a complete HF model.

Every export is written into a temporary file or folder beside `out` and moved into place at the end.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedder.rundir import RunDir
from index.errors import ExportError
from index.select import select_rows
from index.vocabulary import RunLike, as_run
from lexicon.fileio import claim_output, output_dir, output_file, save_npy

__all__ = ["FORMATS", "ExportResult", "export", "export_matrix", "load_base_model"]

FORMATS = ("npy", "safetensors", "pt", "hf")


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    format: str
    out: str
    run_id: str
    select: str
    rows_replaced: int
    vocab_size: int
    dim: int
    seconds: float
    tables: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_matrix(run: RunLike, mask: np.ndarray) -> np.ndarray:
    """The V×d float32 matrix: original rows, with `mask & covered` rows taken from token_vectors."""
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
    matrix = np.array(original, dtype=np.float32, order="C", copy=True)
    matrix[mask] = tokens[mask]
    if not np.isfinite(matrix[mask]).all():
        raise ExportError(f"run {r.path} has NaN/Inf in the rows to export; regenerate its vectors")
    return matrix


def _meta(run: RunDir, select: str, fmt: str, rows: int) -> dict[str, str]:
    return {"run_id": run.run_id, "select": select, "format": fmt, "rows_replaced": str(rows)}


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


def _write_hf(
    run: RunDir, matrix: np.ndarray, mask: np.ndarray, out: Path, meta: dict[str, str], force: bool
) -> tuple[str, ...]:
    import torch

    from index.swap import replace_rows

    model_path = run.manifest().get("model")
    if not model_path:
        raise ExportError(f"run {run.path} records no model; the hf format needs the base model")
    model, tokenizer = load_base_model(model_path)
    emb = model.get_input_embeddings().weight
    if tuple(emb.shape) != matrix.shape:
        raise ExportError(
            f"the model at {model_path} has a {tuple(emb.shape)} embedding, the run {matrix.shape}; "
            "export with the model the run was trained from"
        )
    # Unreplaced rows come from the model itself; they must be the run's original rows, or the run was
    # made from another checkpoint and the exported matrix would not be the one asked for.
    keep = np.flatnonzero(~mask)[:4096]
    base = emb.detach()[torch.as_tensor(keep)].float().cpu().numpy()
    if keep.size and not np.allclose(base, matrix[keep], atol=1e-3, rtol=1e-3):
        raise ExportError(
            f"the model at {model_path} is not the one run {run.run_id} started from (its embedding rows "
            "differ from original_vectors.npy); export with the run's own base model"
        )
    report = replace_rows(model, matrix, mask)
    with output_dir(out, force, "hf export", meta) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        np.save(tmp / "replaced_mask.npy", mask)
        (tmp / "definitionemb_export.json").write_text(
            json.dumps({**meta, "tables": list(report.tables), "untied": list(report.untied)}, indent=2)
        )
    return report.tables


def export(
    run: RunLike,
    fmt: str,
    select: str,
    out: str | os.PathLike[str],
    db: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> ExportResult:
    """Export the run's matrix with the `select` rows replaced, in format `fmt`, atomically to `out`.

    An existing `out` is replaced only with `force`, and only when it is an earlier export (never a
    run folder, a lexicon or a folder the toolkit did not write: :func:`lexicon.fileio.claim_output`).

    - `npy`: folder `out` with matrix.npy (V×d float32), mask.npy (V bool), export.json; or, for an `out`
      named `*.npy`, that file (the matrix) and `*.mask.npy` beside it;
    - `safetensors`: file `out` with tensors "embeddings" and "mask" (+ metadata);
    - `pt`: file `out`, a torch dict {"embeddings", "mask", "run_id", "select"};
    - `hf`: folder `out`, the base model with swapped rows (`save_pretrained`) + its tokenizer.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    t0 = time.perf_counter()
    r = as_run(run)
    out_path = Path(out)
    npy_file = fmt == "npy" and out_path.name.endswith(".npy")
    mask_path = out_path.with_name(out_path.name.removesuffix(".npy") + ".mask.npy") if npy_file else out_path
    # Refused before any work: an output that may not be written is known up front.
    claim_output(
        out_path, "file" if fmt in ("safetensors", "pt") or npy_file else "dir", force, f"{fmt} export"
    )
    if npy_file:
        claim_output(mask_path, "file", force, "npy export mask")
    mask = select_rows(r, db, select)
    matrix = export_matrix(r, mask)
    meta = _meta(r, select, fmt, int(mask.sum()))
    tables: tuple[str, ...] = ()
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
            tables = _write_hf(r, matrix, mask, out_path, meta, force)
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise ExportError(f"cannot write {fmt} export to {out_path}: {exc}") from exc
    return ExportResult(
        format=fmt,
        out=str(out_path),
        run_id=r.run_id,
        select=select,
        rows_replaced=int(mask.sum()),
        vocab_size=int(matrix.shape[0]),
        dim=int(matrix.shape[1]),
        seconds=round(time.perf_counter() - t0, 3),
        tables=tables,
    )
