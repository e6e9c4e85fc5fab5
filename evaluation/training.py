"""Shared pieces of the fine-tuning loops: seeding, device, AdamW with linear warm-up and decay."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from definitionemb.core.device import resolve_device

__all__ = ["seed_everything", "pick_device", "optimizer_and_schedule"]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so that the original and the swapped model see the same run."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> str:
    """The device name for `model.to(...)`: `core.device.resolve_device`, as a string."""
    return str(resolve_device(device))


def optimizer_and_schedule(
    model: Any, lr: float, total_steps: int, warmup_ratio: float = 0.06, weight_decay: float = 0.01
) -> tuple[Any, Any]:
    """AdamW (no decay on biases and LayerNorm weights) and a linear warm-up then linear decay to 0."""
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    warm = max(1, int(round(warmup_ratio * total_steps)))
    total = max(total_steps, warm + 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / (total - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def optimizer_step(model: Any, loss: Any, opt: Any, sched: Any, clip: float = 1.0) -> None:
    """Backpropagate `loss`, clip the gradient norm, and step the optimizer and its schedule."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
