"""I(W), IsoScore, mean cosine, PC shares and ABTT against direct transcriptions and known values."""

from __future__ import annotations

import numpy as np
import pytest
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.evaluation.geometry import (
    all_but_the_top,
    isoscore,
    isotropy,
    isotropy_naive,
    mean_cosine,
    measure_by_bucket,
    top_pc_share,
)
from definitionemb.evaluation.rows import buckets_by_order


def _transcription(w: np.ndarray) -> float:
    """The formula read literally: eigenvectors of W^T W (largest component positive), Z(c) = sum_w
    exp(clip(c.w)), min/max."""
    w = w.astype(np.float64)
    _, vecs = np.linalg.eigh(w.T @ w)
    for i in range(vecs.shape[1]):
        if vecs[np.argmax(np.abs(vecs[:, i])), i] < 0:
            vecs[:, i] = -vecs[:, i]
    z = [np.sum(np.exp(np.clip(w @ vecs[:, i], -50, 50))) for i in range(w.shape[1])]
    return min(z) / max(z)


@pytest.mark.parametrize("seed,shift", [(0, 0.0), (1, 0.3), (2, 2.0), (3, 30.0)])
def test_isotropy_matches_transcription(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((700, 24)) + shift).astype(np.float32)
    got = isotropy(w)
    assert got == pytest.approx(_transcription(w), rel=1e-9)
    assert got == pytest.approx(isotropy_naive(w), rel=1e-9)
    assert 0.0 < got <= 1.0


def test_isotropy_ignores_row_order_and_lapack_sign_choice() -> None:
    rng = np.random.default_rng(9)
    w = rng.standard_normal((400, 10)) + 0.7
    assert isotropy(w[rng.permutation(400)]) == pytest.approx(isotropy(w), rel=1e-9)
    # eig (general) and eigh (symmetric) pick eigenvector signs independently; the result must not care.
    assert isotropy_naive(w) == pytest.approx(isotropy(w), rel=1e-9)


def test_isotropy_chunks_agree_on_many_rows() -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((20000, 8)).astype(np.float32) * 0.5 + 0.1
    assert isotropy(w) == pytest.approx(_transcription(w), rel=1e-9)


def test_isotropy_of_signed_axes_is_one() -> None:
    d = 16
    eye = np.eye(d, dtype=np.float32)
    w = np.vstack([eye, -eye])
    assert isotropy(w) == pytest.approx(1.0, abs=1e-12)


def test_isotropy_of_rank_one_matrix_is_known() -> None:
    v = np.array([3.0, 4.0, 0.0, 0.0])  # |v| = 5
    w = np.tile(v, (50, 1))
    # Z(v/|v|) = n e^5 (or n e^-5 for the opposite sign); every other eigenvector is orthogonal: Z = n.
    assert isotropy(w) == pytest.approx(np.exp(-5.0), rel=1e-9)
    big = np.tile(np.array([100.0, 0.0, 0.0]), (10, 1))  # c.w = 100 is clipped to 50
    assert isotropy(big) == pytest.approx(np.exp(-50.0), rel=1e-9)


def test_isotropy_refuses_nan_rows() -> None:
    w = np.ones((5, 3))
    w[2, 1] = np.nan
    with pytest.raises(EvaluationError, match="NaN"):
        isotropy(w)


def test_isoscore_known_values() -> None:
    rng = np.random.default_rng(0)
    d = 6
    # Equal variance along every axis, exactly: the signed axes are isotropic.
    eye = np.eye(d)
    assert isoscore(np.vstack([eye, -eye])) == pytest.approx(1.0, abs=1e-9)
    # A rank-1 cloud uses one dimension.
    line = np.outer(rng.standard_normal(200), rng.standard_normal(d))
    assert isoscore(line) == pytest.approx(0.0, abs=1e-9)
    # A Gaussian cloud is near 1, a stretched one far lower.
    g = rng.standard_normal((20000, d))
    assert isoscore(g) > 0.95
    assert isoscore(g * np.array([10, 1, 1, 1, 1, 1])) < 0.5


def test_isoscore_matches_paper_steps_on_random_cloud() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 5)) @ rng.standard_normal((5, 5))
    # The paper's algorithm step by step: PCA reorientation, variance vector, normalise, distance, phi.
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    var = np.var(xc @ vt.T, axis=0, ddof=1)
    n = len(var)
    v = np.sqrt(n) * var / np.linalg.norm(var)
    delta = np.linalg.norm(v - 1) / np.sqrt(2 * (n - np.sqrt(n)))
    phi = (n - delta**2 * (n - np.sqrt(n))) ** 2 / n**2
    assert isoscore(x) == pytest.approx((n * phi - 1) / (n - 1), rel=1e-9)


def test_mean_cosine_matches_pairwise() -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((300, 7)) + 0.5
    w[10] = 0.0  # a zero row has no direction and is left out
    keep = np.linalg.norm(w, axis=1) > 0
    u = w[keep] / np.linalg.norm(w[keep], axis=1, keepdims=True)
    s = u @ u.T
    n = s.shape[0]
    want = (s.sum() - np.trace(s)) / (n * (n - 1))
    assert mean_cosine(w) == pytest.approx(want, rel=1e-9)


def test_top_pc_share_and_abtt() -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((1000, 20)) * np.linspace(5, 0.5, 20) + 3.0
    vals = np.linalg.eigvalsh(np.cov(w, rowvar=False))[::-1]
    assert top_pc_share(w, 3) == pytest.approx(vals[:3].sum() / vals.sum(), rel=1e-9)
    out = all_but_the_top(w, d=3)
    assert out.shape == w.shape and out.dtype == np.float32
    assert np.abs(out.mean(axis=0)).max() < 1e-4  # the mean is gone
    # The top-3 directions are gone: what is left has no variance along them.
    top = np.linalg.eigh(np.cov(w, rowvar=False))[1][:, ::-1][:, :3]
    assert np.abs(out @ top).max() < 1e-3
    assert isotropy(out) > isotropy(w)


def test_measure_by_bucket_excludes_special_rows() -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((104, 6))
    w[:4] = 1000.0  # special rows would dominate every measure if they were counted
    labels = buckets_by_order(104)
    assert list(labels[:4]) == ["special"] * 4
    assert (
        (labels == "frequent").sum() == 30
        and (labels == "medium").sum() == 50
        and (labels == "rare").sum() == 20
    )
    out = measure_by_bucket(w, labels)
    assert set(out) == {"all", "frequent", "medium", "rare"}
    assert out["all"] is not None and out["all"]["rows"] == 100
    assert out["all"]["isotropy"] == pytest.approx(isotropy(w[4:]), rel=1e-12)
    assert out["rare"] is not None and out["rare"]["isotropy"] == pytest.approx(isotropy(w[84:]), rel=1e-12)


def test_measure_shares_one_gram_but_agrees_with_each_metric() -> None:
    from definitionemb.evaluation.geometry import measure

    rng = np.random.default_rng(8)
    w = rng.standard_normal((900, 12)) * np.linspace(3, 0.2, 12) + 0.4
    m = measure(w)
    assert m.rows == 900
    assert m.isotropy == pytest.approx(isotropy(w), rel=1e-12)
    assert m.isoscore == pytest.approx(isoscore(w), rel=1e-12)
    assert m.mean_cosine == pytest.approx(mean_cosine(w), rel=1e-12)
    assert m.top1_share == pytest.approx(top_pc_share(w, 1), rel=1e-12)
    assert m.top10_share == pytest.approx(top_pc_share(w, 10), rel=1e-12)
