"""Isotropy of an embedding matrix: I(W), IsoScore, mean pairwise cosine, top-PC variance share, ABTT.

Everything is computed in float64. I(W) uses one eigendecomposition of the d x d Gram matrix and one
(row-chunked) matrix product, so a 50,265 x 768 matrix takes seconds rather than the minutes of a loop
over eigenvectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from definitionemb.core.records import Record
from definitionemb.evaluation.errors import EvaluationError

__all__ = [
    "CLIP",
    "IsotropyMetrics",
    "isotropy",
    "isotropy_naive",
    "isoscore",
    "mean_cosine",
    "top_pc_share",
    "all_but_the_top",
    "measure",
    "measure_by_bucket",
    "BUCKETS",
]

# The reference clips every c^T w to this range before exp; the bound also keeps n * e^50 far below
# float64's maximum, so the plain sum is exact enough and no log-sum-exp is needed.
CLIP = 50.0
_CHUNK = 8192


def _as_matrix(w: np.ndarray, what: str = "matrix") -> np.ndarray:
    a = np.asarray(w)
    if a.dtype.kind not in "biuf":
        raise EvaluationError(f"{what} must hold numbers, not {a.dtype} values; give a float matrix (.npy)")
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 1:
        raise EvaluationError(f"{what} must be a 2-D array with at least 2 rows, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise EvaluationError(
            f"{what} contains NaN or Inf rows; regenerate the vectors (defemb embed generate) or drop them"
        )
    return a


def _gram(w: np.ndarray) -> np.ndarray:
    d = w.shape[1]
    g = np.zeros((d, d), dtype=np.float64)
    for s in range(0, w.shape[0], _CHUNK):
        blk = np.asarray(w[s : s + _CHUNK], dtype=np.float64)
        g += blk.T @ blk
    return g


def _fix_signs(vecs: np.ndarray) -> np.ndarray:
    """Flip each eigenvector so its largest-magnitude component is positive.

    LAPACK returns eigenvectors with an arbitrary sign, and Z(c) != Z(-c): without a convention the value
    would depend on the routine (eig vs eigh) and the machine.
    """
    idx = np.abs(vecs).argmax(axis=0)
    signs = np.sign(vecs[idx, np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vecs * signs


def isotropy(w: np.ndarray) -> float:
    """I(W) = min_c Z(c) / max_c Z(c), Z(c) = sum_w exp(clip(c^T w, -50, 50)).

    c runs over the eigenvectors of the uncentred W^T W (Mu & Viswanath's partition-function measure,
    as the DefinitionEMB code computes it), signs fixed by `_fix_signs`. Returns a value in (0, 1]; 1 is perfectly isotropic.
    """
    w = _as_matrix(w)
    return _isotropy_with_gram(w, _gram(w))


def _isotropy_with_gram(w: np.ndarray, gram: np.ndarray) -> float:
    _, vecs = np.linalg.eigh(gram)
    vecs = _fix_signs(vecs)
    z = np.zeros(vecs.shape[1], dtype=np.float64)
    for s in range(0, w.shape[0], _CHUNK):
        proj = np.asarray(w[s : s + _CHUNK], dtype=np.float64) @ vecs
        np.clip(proj, -CLIP, CLIP, out=proj)
        np.exp(proj, out=proj)
        z += proj.sum(axis=0)
    return float(z.min() / z.max())


def isotropy_naive(w: np.ndarray) -> float:
    """A direct transcription of the formula: general eig of W^T W, then one pass over W per eigenvector.

    Kept as the baseline of the benchmark and the oracle of the tests; do not use it on large matrices.
    """
    w = np.asarray(w, dtype=np.float64)
    _, vecs = np.linalg.eig(w.T @ w)
    vecs = _fix_signs(np.real(vecs))
    zs = []
    for i in range(vecs.shape[1]):
        c = vecs[:, i]
        zs.append(sum(np.exp(np.clip(w @ c, -CLIP, CLIP))))
    return float(min(zs) / max(zs))


def _centred_eigenvalues(w: np.ndarray, gram: np.ndarray | None = None) -> np.ndarray:
    """Eigenvalues (descending) of the covariance of the rows: the variance along each principal axis.

    The covariance comes from the uncentred Gram matrix minus n * mean mean^T, so one Gram serves I(W)
    and the PCA-based measures alike.
    """
    n = w.shape[0]
    mean = np.zeros(w.shape[1], dtype=np.float64)
    for s in range(0, n, _CHUNK):
        mean += np.asarray(w[s : s + _CHUNK], dtype=np.float64).sum(axis=0)
    mean /= n
    g = _gram(w) if gram is None else gram
    cov = (g - n * np.outer(mean, mean)) / max(n - 1, 1)
    vals = np.linalg.eigvalsh(cov)[::-1]
    return np.clip(vals, 0.0, None)


def isoscore(w: np.ndarray) -> float:
    """IsoScore (Rudman et al., 2022): how uniformly the point cloud uses its dimensions, in [0, 1].

    The cloud is reoriented along its principal components; its variance vector is scaled to norm sqrt(d),
    its distance delta from the isotropic diagonal (1, ..., 1) is normalised by the largest possible
    distance, turned into the fraction phi of dimensions used isotropically, and rescaled so that a
    rank-1 cloud scores 0 and an isotropic one 1.
    """
    w = _as_matrix(w)
    return _isoscore_of_variances(_centred_eigenvalues(w))


def _isoscore_of_variances(var: np.ndarray) -> float:
    d = var.shape[0]
    if d == 1:
        return 1.0
    norm = np.linalg.norm(var)
    if norm == 0.0:
        raise EvaluationError("IsoScore is undefined for a matrix whose rows are all identical")
    var_hat = np.sqrt(d) * var / norm
    delta = np.linalg.norm(var_hat - 1.0) / np.sqrt(2.0 * (d - np.sqrt(d)))
    phi = (d - delta**2 * (d - np.sqrt(d))) ** 2 / d**2
    score = (d * phi - 1.0) / (d - 1.0)
    return float(np.clip(score, 0.0, 1.0))


def mean_cosine(w: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct non-zero rows, exactly, in O(n d).

    sum_{i != j} u_i . u_j = |sum_i u_i|^2 - n for unit rows u_i, so no n x n matrix and no sampling is needed.
    """
    w = _as_matrix(w)
    total = np.zeros(w.shape[1], dtype=np.float64)
    n = 0
    for s in range(0, w.shape[0], _CHUNK):
        blk = np.asarray(w[s : s + _CHUNK], dtype=np.float64)
        norms = np.linalg.norm(blk, axis=1)
        keep = norms > 0
        total += (blk[keep] / norms[keep, None]).sum(axis=0)
        n += int(keep.sum())
    if n < 2:
        raise EvaluationError("mean cosine needs at least two non-zero rows")
    return float((total @ total - n) / (n * (n - 1)))


def top_pc_share(w: np.ndarray, k: int = 10) -> float:
    """Share of the total (centred) variance carried by the top `k` principal components."""
    vals = _centred_eigenvalues(_as_matrix(w))
    total = vals.sum()
    return float(vals[:k].sum() / total) if total > 0 else 0.0


def all_but_the_top(w: np.ndarray, d: int = 10, exclude: np.ndarray | None = None) -> np.ndarray:
    """Mu & Viswanath's post-processing: subtract the mean, then the projection on the top `d` PCs.

    `exclude` (bool per row) marks rows (special tokens) that do not shape the mean and directions;
    they are still transformed. Returns float32, like the matrices it is compared with.
    """
    w = _as_matrix(w)
    fit = np.asarray(w if exclude is None else w[~np.asarray(exclude, dtype=bool)], dtype=np.float64)
    if fit.shape[0] < 2:  # the mean of no rows is NaN, which would be reported as NaN in the input
        raise EvaluationError(
            f"all-but-the-top needs at least 2 ordinary (non-special) rows to fit; this {w.shape[0]}-row "
            f"matrix has {fit.shape[0]}"
        )
    mean = fit.mean(axis=0)
    centred = fit - mean
    d = min(d, centred.shape[1])
    cov = centred.T @ centred
    _, vecs = np.linalg.eigh(cov)
    top = vecs[:, ::-1][:, :d]
    out = np.asarray(w, dtype=np.float64) - mean
    out -= (out @ top) @ top.T
    return out.astype(np.float32)


@dataclass(frozen=True)
class IsotropyMetrics(Record):
    """The isotropy measures of one set of rows."""

    rows: int
    isotropy: float
    isoscore: float
    mean_cosine: float
    top1_share: float
    top10_share: float


def measure(w: np.ndarray) -> IsotropyMetrics:
    """All isotropy measures of the rows of `w`."""
    w = _as_matrix(w)
    gram = _gram(w)
    vals = _centred_eigenvalues(w, gram)
    total = vals.sum()
    return IsotropyMetrics(
        rows=int(w.shape[0]),
        isotropy=_isotropy_with_gram(w, gram),
        isoscore=_isoscore_of_variances(vals),
        mean_cosine=mean_cosine(w),
        top1_share=float(vals[:1].sum() / total) if total > 0 else 0.0,
        top10_share=float(vals[:10].sum() / total) if total > 0 else 0.0,
    )


BUCKETS = ("frequent", "medium", "rare")


def measure_by_bucket(w: np.ndarray, buckets: np.ndarray) -> dict[str, dict[str, Any] | None]:
    """`{"all": ..., "frequent": ..., "medium": ..., "rare": ...}`, special rows excluded everywhere.

    `buckets` holds one label per row (frequent | medium | rare | special; any other label, e.g. a row
    the lexicon does not know, is left out of every group). Each bucket's measures are
    computed on that bucket's own rows (its own eigenvectors); a bucket with fewer than 2 rows gives None.
    """
    w = _as_matrix(w)
    labels = np.asarray(buckets)
    if labels.shape != (w.shape[0],):
        raise EvaluationError(f"{labels.shape[0]} bucket labels for a matrix of {w.shape[0]} rows")
    out: dict[str, dict[str, Any] | None] = {}
    groups: Mapping[str, np.ndarray] = {
        "all": np.isin(labels, BUCKETS),
        **{b: labels == b for b in BUCKETS},
    }
    for name, sel in groups.items():
        out[name] = measure(w[sel]).to_dict() if int(sel.sum()) >= 2 else None
    return out
