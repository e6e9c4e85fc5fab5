"""Exact nearest neighbours through torch, and the choice between the three search back ends.

FAISS's GPU wheels need CUDA 12 and do not load on newer GPU machines; torch does. Where torch sees a
GPU and FAISS has no GPU support, a flat (exact) index is searched here: the stored vectors live on
the device in float16/bfloat16, each query batch is multiplied block by block against them and the
best `k + margin` candidates of every query are kept (`torch.topk`), then those candidates are scored
again in float32 and the best `k` returned. On data without ties this gives FAISS's neighbours; the
scores are float32 dot products (or squared L2 distances), as FAISS reports them.

Back ends (`BACKENDS`): `faiss-gpu` where FAISS loads with GPU support, `torch` where only torch sees a
GPU (flat indexes; approximate ones stay on FAISS's CPU), `faiss-cpu` otherwise. `choose_backend`
picks one; the index manifest records the choice of the machine that built the index and
`LoadedIndex.backend` the one a search uses.
"""

from __future__ import annotations

import numpy as np
import torch
from definitionemb.index.errors import IndexStageError

__all__ = ["BACKENDS", "TorchFlatSearch", "choose_backend", "torch_gpu_available"]

BACKENDS = ("faiss-cpu", "faiss-gpu", "torch")
_FLT_MAX = float(np.finfo(np.float32).max)


def torch_gpu_available() -> bool:
    return bool(torch.cuda.is_available())


def choose_backend(flat: bool, prefer: str = "auto") -> str:
    """The back end a search takes: `prefer` when given, else faiss-gpu > torch (flat only) > faiss-cpu."""
    from definitionemb.index.faiss_core import gpu_available

    if prefer not in ("auto", *BACKENDS):
        raise IndexStageError(
            f"unknown search backend {prefer!r}; choose auto or one of {', '.join(BACKENDS)}"
        )
    if prefer == "torch" and not flat:
        raise IndexStageError("the torch backend searches flat (exact) indexes only; use faiss-cpu")
    if prefer == "faiss-gpu" and not gpu_available():
        raise IndexStageError("this FAISS build has no GPU support (faiss-gpu needs CUDA 12); use torch")
    if prefer != "auto":
        return prefer
    if gpu_available():
        return "faiss-gpu"
    if flat and torch_gpu_available():
        return "torch"
    return "faiss-cpu"


class TorchFlatSearch:
    """Exact top-k over `xb` (n×d float32) on a torch device: blocked product, top-k, fp32 re-scoring.

    `precision` is the dtype of the first pass: `auto` takes bfloat16 on a GPU that multiplies it
    natively (float16 on older ones) and float32 on the CPU. `margin` extra candidates per query are
    re-scored in float32, which absorbs the first pass's rounding.
    """

    def __init__(
        self,
        xb: np.ndarray,
        l2: bool = False,
        device: str = "cuda",
        precision: str = "auto",
        block_rows: int = 65536,
        margin: int = 32,
    ) -> None:
        if xb.ndim != 2:
            raise IndexStageError(f"expected an n×d matrix, got shape {xb.shape}")
        self.device = torch.device(device)
        self.l2 = l2
        self.margin = max(0, margin)
        self.block_rows = max(1, block_rows)
        self.dtype = self._dtype(precision)
        self.n, self.d = int(xb.shape[0]), int(xb.shape[1])
        self.xb32 = torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)).to(self.device)
        self.xb = self.xb32 if self.dtype == torch.float32 else self.xb32.to(self.dtype)
        self.norms = (self.xb32 * self.xb32).sum(1) if l2 else None

    def _dtype(self, precision: str) -> torch.dtype:
        if precision == "float32":
            return torch.float32
        if precision == "float16":
            return torch.float16
        if precision == "bfloat16":
            return torch.bfloat16
        if precision != "auto":
            raise IndexStageError(f"precision must be auto|float32|float16|bfloat16, got {precision!r}")
        if self.device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _scores(self, q: torch.Tensor, xb: torch.Tensor, norms: torch.Tensor | None) -> torch.Tensor:
        """Larger is nearer: dot products, or negated squared L2 distances."""
        s = q @ xb.T
        if not self.l2:
            return s
        assert norms is not None
        qn = (q.float() * q.float()).sum(1, keepdim=True)
        return -(qn - 2.0 * s.float() + norms[None, :].float()).clamp_min(0.0)

    @torch.inference_mode()
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32, labels int64), each nq×k, best first; -1 labels pad past n, as FAISS does."""
        if k < 1:
            raise IndexStageError(f"k must be at least 1, got {k}")
        if queries.ndim != 2 or queries.shape[1] != self.d:
            raise IndexStageError(f"queries must be nq×{self.d}, got shape {queries.shape}")
        nq = queries.shape[0]
        k_eff = min(k, self.n)
        cand = min(self.n, k_eff + self.margin) if self.dtype != torch.float32 else k_eff
        out_s = np.full((nq, k), _FLT_MAX if self.l2 else -_FLT_MAX, dtype=np.float32)
        out_i = np.full((nq, k), -1, dtype=np.int64)
        if k_eff == 0 or nq == 0:
            return out_s, out_i
        q_batch = max(1, (1 << 26) // max(self.block_rows, 1))  # ~64M scores per product
        for qs in range(0, nq, q_batch):
            q32 = torch.from_numpy(np.ascontiguousarray(queries[qs : qs + q_batch], dtype=np.float32))
            q32 = q32.to(self.device)
            q = q32 if self.dtype == torch.float32 else q32.to(self.dtype)
            best_s: torch.Tensor | None = None
            best_i: torch.Tensor | None = None
            for start in range(0, self.n, self.block_rows):
                xb = self.xb[start : start + self.block_rows]
                norms = None if self.norms is None else self.norms[start : start + self.block_rows]
                s = self._scores(q, xb, norms).float()
                top_s, top_i = torch.topk(s, min(cand, s.shape[1]), dim=1)
                top_i = top_i + start
                if best_s is None or best_i is None:
                    best_s, best_i = top_s, top_i
                else:
                    merged_s = torch.cat([best_s, top_s], 1)
                    merged_i = torch.cat([best_i, top_i], 1)
                    keep_s, keep = torch.topk(merged_s, min(cand, merged_s.shape[1]), dim=1)
                    best_s, best_i = keep_s, torch.gather(merged_i, 1, keep)
            assert best_s is not None and best_i is not None
            if self.dtype != torch.float32:
                # Re-score the candidates in float32: the first pass only has to find them.
                rows = self.xb32[best_i]  # b×cand×d
                dots = torch.einsum("bd,bcd->bc", q32, rows)
                if self.l2:
                    assert self.norms is not None
                    qn = (q32 * q32).sum(1, keepdim=True)
                    best_s = -(qn - 2.0 * dots + self.norms[best_i]).clamp_min(0.0)
                else:
                    best_s = dots
            final_s, order = torch.topk(best_s, k_eff, dim=1)
            final_i = torch.gather(best_i, 1, order)
            if self.l2:
                final_s = -final_s
            out_s[qs : qs + q32.shape[0], :k_eff] = final_s.cpu().numpy()
            out_i[qs : qs + q32.shape[0], :k_eff] = final_i.cpu().numpy()
        return out_s, out_i
