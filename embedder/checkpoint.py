"""Regressor checkpoints under `runs/<id>/regressor/`, written so a crash never leaves a half checkpoint.

Layout::

    regressor/LATEST                 name of the newest complete checkpoint (written atomically, last)
    regressor/ckpt-00000300/
        model.safetensors            the regressor (backbone + head); tied tensors stored once
        backbone/config.json         the backbone's HF config, to rebuild it without the original folder
        trainer.pt                   optimizer, scheduler, RNG states, step (only what resuming needs)
        meta.json                    step, family, dim
    regressor/tokenizer/             the model's tokenizer files

A checkpoint folder is filled under a temporary name and renamed into place; LATEST is switched only
then, and older checkpoints are deleted after that.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from definitionemb.core.fileio import atomic_dir, write_bytes
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.models import Regressor, backbone_from_config, load_tokenizer
from definitionemb.embedder.rundir import RunDir

__all__ = ["save_checkpoint", "latest_checkpoint", "load_regressor", "load_trainer_state", "save_tokenizer"]

KEEP = 2


def _regdir(run_path: Path) -> Path:
    return RunDir(Path(run_path)).regressor_dir


def save_tokenizer(run_path: Path, tokenizer: Any) -> None:
    target = RunDir(Path(run_path)).tokenizer_dir
    if target.is_dir():
        return
    with atomic_dir(target) as tmp:
        tokenizer.save_pretrained(str(tmp))


def save_checkpoint(
    run_path: Path, model: Regressor, step: int, trainer_state: dict[str, Any] | None
) -> Path:
    from safetensors.torch import save_model

    reg = _regdir(run_path)
    reg.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:08d}"
    final = reg / name
    with atomic_dir(final) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        model.backbone.config.save_pretrained(str(tmp / "backbone"))
        if trainer_state is not None:
            torch.save(trainer_state, tmp / "trainer.pt")
        (tmp / "meta.json").write_text(
            json.dumps(
                {
                    "step": step,
                    "family": model.family,
                    "dim": model.dim,
                    "pooling": model.pooling,
                    "target_table": model.target_table,
                }
            )
        )
    write_bytes(RunDir(Path(run_path)).latest_file, name.encode())
    olds = sorted(p for p in reg.glob("ckpt-*") if p.name != name)
    for p in olds[: max(0, len(olds) - (KEEP - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_path: Path) -> Path | None:
    f = RunDir(Path(run_path)).latest_file
    if not f.is_file():
        return None
    p = _regdir(run_path) / f.read_text().strip()
    if not (p / "model.safetensors").is_file():
        raise EmbedderError(f"{f} points at {p.name}, which is incomplete; delete LATEST to start over")
    return p


def load_regressor(
    run_path: Path, device: torch.device | str = "cpu"
) -> tuple[Regressor, Any, dict[str, Any]]:
    """The trained regressor (eval mode) and tokenizer of a run, with the checkpoint's meta."""
    from safetensors.torch import load_model
    from transformers import AutoConfig

    ck = latest_checkpoint(run_path)
    if ck is None:
        raise EmbedderError(
            f"{run_path} has no trained regressor. Train one with: defemb embed train --run {run_path} ..."
        )
    meta = json.loads((ck / "meta.json").read_text())
    config = AutoConfig.from_pretrained(str(ck / "backbone"))
    model = Regressor(
        backbone_from_config(config, meta["family"]),
        meta["family"],
        meta.get("pooling", "target"),
        meta.get("target_table", "encoder"),
    )
    load_model(model, str(ck / "model.safetensors"), device=str(device))
    model.to(device).eval()
    tok = load_tokenizer(RunDir(Path(run_path)).tokenizer_dir)
    return model, tok, meta


def load_trainer_state(ckpt: Path) -> dict[str, Any]:
    f = ckpt / "trainer.pt"
    if not f.is_file():
        raise EmbedderError(f"{ckpt} has no trainer state; it cannot be resumed")
    state: dict[str, Any] = torch.load(f, map_location="cpu", weights_only=False)
    return state
