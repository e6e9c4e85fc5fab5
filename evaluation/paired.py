"""Paired resampling shared by the evaluations that compare two score lists example by example."""

from __future__ import annotations

import numpy as np

__all__ = ["resampled_mean_differences"]


def resampled_mean_differences(
    a: np.ndarray, b: np.ndarray, samples: int = 1000, seed: int = 0
) -> np.ndarray:
    """Mean of `b − a` over each of `samples` bootstrap resamples of the examples (the same examples for
    both sides, so what they share cancels out)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, d.size, size=(samples, d.size))
    return d[idx].mean(axis=1)
