"""Which torch device a call runs on: one rule for every stage ("auto" → CUDA when torch sees one)."""

from __future__ import annotations

from typing import Any

from definitionemb.core.errors import DefembError

__all__ = ["DeviceError", "resolve_device"]


class DeviceError(DefembError):
    """A device that this machine does not have."""


def resolve_device(device: str = "auto", local_rank: int | None = None) -> Any:
    """`auto` → CUDA when available (this process's local rank under torchrun), else CPU; a `torch.device`.

    torch is imported here, not at module level, so the lexicon (which never loads torch) can import core.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu")
        if device == "cuda" and local_rank is not None:
            return torch.device("cuda", local_rank)
    return torch.device(device)
