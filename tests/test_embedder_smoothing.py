"""The neighbour step: exact search against brute force, no token reads its own row, the choice on dev only."""

from __future__ import annotations

import numpy as np
import pytest
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.inference import mean_by_token
from definitionemb.embedder.smoothing import choose, nearest_other, smoothed_rows


def _defs(n_tokens: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Definitions of 1–3 ranks per token: (token ids, ranks, predictions)."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 4, n_tokens)
    token = np.repeat(np.arange(n_tokens) * 3 + 5, per)
    rank = np.concatenate([np.arange(1, p + 1) for p in per])
    return token, rank, rng.standard_normal((len(token), dim)).astype(np.float32)


def _brute(q: np.ndarray, qt: np.ndarray, r: np.ndarray, rt: np.ndarray, k: int) -> np.ndarray:
    c = r.astype(np.float64).mean(0)
    a, b = q - c, r - c
    s = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    s[qt[:, None] == rt[None, :]] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def test_nearest_other_is_the_brute_force_search_without_the_own_token() -> None:
    token, _, pred = _defs(300, 16, 0)
    nb = nearest_other(pred, token, pred, token, 12)
    want = _brute(pred, token, pred, token, 12)
    assert np.array_equal(nb.index, want)
    assert not (token[nb.index] == token[:, None]).any()
    assert np.all(np.diff(nb.sim, axis=1) <= 1e-6)
    # queries and references apart, in several blocks
    import definitionemb.embedder.smoothing as nbm

    old = nbm._BLOCK
    nbm._BLOCK = 7
    try:
        part = nearest_other(pred[:50], token[:50], pred[50:], token[50:], 5)
    finally:
        nbm._BLOCK = old
    assert np.array_equal(part.index, _brute(pred[:50], token[:50], pred[50:], token[50:], 5))


def test_a_generated_row_never_reads_its_own_tokens_row() -> None:
    token, _, pred = _defs(120, 8, 1)
    rng = np.random.default_rng(2)
    original = rng.standard_normal((token.max() + 1, 8)).astype(np.float32)
    nb = nearest_other(pred, token, pred, token, 10)
    before = smoothed_rows(nb, original[token], 10, 0.05)
    t = token[17]
    changed = original.copy()
    changed[t] += 100.0
    after = smoothed_rows(nb, changed[token], 10, 0.05)
    mine = token == t
    assert np.allclose(before[mine], after[mine])
    assert not np.allclose(before[~mine], after[~mine])  # others may read it


def test_smoothed_rows_are_the_softmax_weighted_rows() -> None:
    token, _, pred = _defs(80, 8, 3)
    rows = np.random.default_rng(4).standard_normal((len(token), 8)).astype(np.float32)
    nb = nearest_other(pred, token, pred, token, 6)
    one = smoothed_rows(nb, rows, 1, 0.1)
    assert np.allclose(one, rows[nb.index[:, 0]])
    w = np.exp(nb.sim[:, :4] / 0.2)
    w /= w.sum(1, keepdims=True)
    assert np.allclose(
        smoothed_rows(nb, rows, 4, 0.2), (w[:, :, None] * rows[nb.index[:, :4]]).sum(1), atol=1e-5
    )
    with pytest.raises(EmbedderError, match="tau"):
        smoothed_rows(nb, rows, 4, 0.0)
    with pytest.raises(EmbedderError, match="k must be"):
        smoothed_rows(nb, rows, 7, 0.1)


def _synonyms(n_pairs: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, ...]:
    """Tokens in pairs sharing one row; each definition's prediction is that row plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_pairs, dim)).astype(np.float32)
    original = np.repeat(base, 2, axis=0)
    token = np.repeat(np.arange(2 * n_pairs), 2)
    rank = np.tile([1, 2], 2 * n_pairs)
    pred = (original[token] + noise * rng.standard_normal((len(token), dim))).astype(np.float32)
    return token, rank, pred, original


def test_choice_takes_the_step_where_synonyms_know_the_row() -> None:
    token, rank, pred, original = _synonyms(200, 32, 1.0, 5)
    held = np.arange(0, 400, 3)
    c = choose(pred, token, rank, original, held, topk=2)
    assert c.beta > 0 and c.dev_tokens + c.test_tokens == len(held)
    assert c.scores["smoothed_test"] > c.scores["plain_test"] + 0.05
    assert len(c.curve) == 3 * 3 * 11 and max(p["dev"] for p in c.curve) == pytest.approx(
        c.scores["smoothed_dev"]
    )


def test_choice_stays_off_when_the_regressor_is_exact() -> None:
    token, rank, _, original = _synonyms(100, 16, 0.0, 6)
    original = original + np.random.default_rng(7).standard_normal(original.shape).astype(np.float32)
    pred = original[token]
    c = choose(pred, token, rank, original, np.arange(0, 200, 2), topk=2)
    assert c.beta == 0 and not c.active
    assert c.scores["smoothed_all"] == pytest.approx(c.scores["plain_all"]) == pytest.approx(1.0)


def test_choice_never_reads_the_test_half() -> None:
    token, rank, pred, original = _synonyms(150, 16, 1.5, 8)
    held = np.arange(0, 300, 2)
    c = choose(pred, token, rank, original, held, topk=2)
    # the half it reports on: every held-out token not among the first dev_tokens of the seeded order
    uniq, _ = mean_by_token(
        token[np.isin(token, held)], rank[np.isin(token, held)], pred[np.isin(token, held)], 2
    )
    perm = np.random.default_rng([0, 11]).permutation(len(uniq))
    test = uniq[perm[c.dev_tokens :]]
    spoiled = original.copy()
    spoiled[test] = np.random.default_rng(9).standard_normal((len(test), 16))
    d = choose(pred, token, rank, spoiled, held, topk=2)
    assert (d.k, d.tau, d.beta) == (c.k, c.tau, c.beta)
    assert d.curve == c.curve
    assert d.scores["smoothed_test"] != c.scores["smoothed_test"]


def test_refusals() -> None:
    token, rank, pred = _defs(10, 4, 10)
    with pytest.raises(EmbedderError, match="held-out"):
        choose(pred, token, rank, np.zeros((100, 4), np.float32), np.array([token[0]]), topk=1)
    with pytest.raises(EmbedderError, match="one token id"):
        nearest_other(pred, token[:-1], pred, token, 3)
    with pytest.raises(EmbedderError, match="fewer than"):
        nearest_other(pred, token, pred[:2], np.array([token[0], token[0]]), 2)
