"""Batches by a token budget with length bucketing, so that padding stays small.

Training: each epoch shuffles the examples (seeded), sorts them by length inside pools of a few thousand,
cuts each pool into batches whose padded size (rows × longest row) fits the budget, and shuffles the
batch order. The micro-batch stream is a pure function of (seed, epoch), so a resumed or distributed run
can address any micro-batch by its global index.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "budget_batches",
    "bucketed_epoch",
    "sorted_batches",
    "fixed_batches",
    "padding_fraction",
    "MicroBatchStream",
]


def budget_batches(order: np.ndarray, lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Cut `order` (already length-sorted where it matters) greedily so rows × max length <= budget."""
    out: list[np.ndarray] = []
    start, cur_max = 0, 0
    lens = lengths[order]
    for k in range(len(order)):
        m = max(cur_max, int(lens[k]))
        if (k - start + 1) * m > batch_tokens and k > start:
            out.append(order[start:k])
            start, m = k, int(lens[k])
        cur_max = m
    if start < len(order):
        out.append(order[start:])
    return out


def bucketed_epoch(
    lengths: np.ndarray, batch_tokens: int, seed: int, epoch: int, pool: int = 4096
) -> list[np.ndarray]:
    """One epoch of shuffled, length-bucketed, budget-cut batches."""
    rng = np.random.default_rng([seed, epoch, 1])
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    for s in range(0, len(perm), pool):
        chunk = perm[s : s + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(budget_batches(chunk, lengths, batch_tokens))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def sorted_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Generation: all examples sorted by length (longest first, so memory peaks early), budget-cut."""
    order = np.argsort(-lengths, kind="stable")
    return budget_batches(order, lengths, batch_tokens)


def fixed_batches(n: int, batch_size: int, seed: int | None = None) -> list[np.ndarray]:
    """The naive baseline: fixed-size batches in random (or given) order, no sorting."""
    order = np.random.default_rng(seed).permutation(n) if seed is not None else np.arange(n)
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


def padding_fraction(batches: list[np.ndarray], lengths: np.ndarray) -> float:
    """Share of padded positions among all positions the model computes."""
    real = sum(int(lengths[b].sum()) for b in batches)
    total = sum(int(lengths[b].max()) * len(b) for b in batches if len(b))
    return 1.0 - real / max(total, 1)


class MicroBatchStream:
    """Global micro-batch k → example indices, across epochs, deterministic in (seed, k)."""

    def __init__(self, lengths: np.ndarray, batch_tokens: int, seed: int) -> None:
        self.lengths = lengths
        self.batch_tokens = batch_tokens
        self.seed = seed
        self._epochs: dict[int, list[np.ndarray]] = {}
        self._starts: list[int] = [0]

    def _epoch(self, e: int) -> list[np.ndarray]:
        if e not in self._epochs:
            self._epochs = {k: v for k, v in self._epochs.items() if k >= e - 1}  # keep memory flat
            self._epochs[e] = bucketed_epoch(self.lengths, self.batch_tokens, self.seed, e)
        return self._epochs[e]

    def get(self, k: int) -> tuple[int, np.ndarray]:
        """(epoch, indices) of global micro-batch k."""
        while self._starts[-1] <= k:
            e = len(self._starts) - 1
            self._starts.append(self._starts[-1] + len(self._epoch(e)))
        e = int(np.searchsorted(self._starts, k, side="right") - 1)
        return e, self._epoch(e)[k - self._starts[e]]
