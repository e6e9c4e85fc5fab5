"""A base model used as a sentence encoder (e.g. all-MiniLM-L6-v2: mean pooling, then L2-normalised).

Only models that declare themselves sentence encoders are used this way: a sentence-transformers folder
whose `modules.json` lists a Pooling module (mean or CLS). :func:`sentence_spec` tells which;
:class:`SentenceEncoder` reproduces what `SentenceTransformer.encode` computes, but tokenises everything
once, runs length-sorted batches under a token budget (little padding) in `torch.inference_mode`, and puts
each vector back at its input's row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from definitionemb.core.progress import bar_disable
from definitionemb.core.records import Record
from definitionemb.index.errors import IndexStageError

__all__ = ["SentenceSpec", "sentence_spec", "SentenceEncoder"]


@dataclass(frozen=True)
class SentenceSpec(Record):
    """How a sentence-transformers folder pools and normalises (read from its own config files)."""

    pooling: str  # mean | cls
    normalize: bool
    max_length: int


def sentence_spec(model_dir: str | os.PathLike[str]) -> SentenceSpec | None:
    """The pooling of a sentence-transformers model folder, or None when it is not one."""
    p = Path(model_dir)
    modules_file = p / "modules.json"
    if not modules_file.is_file():
        return None
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        types = {str(m.get("type", "")).rsplit(".", 1)[-1]: m for m in modules}
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    pool = types.get("Pooling")
    if pool is None:
        return None
    try:
        cfg = json.loads((p / str(pool.get("path", "1_Pooling")) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if cfg.get("pooling_mode_mean_tokens"):
        pooling = "mean"
    elif cfg.get("pooling_mode_cls_token"):
        pooling = "cls"
    else:  # max / sqrt-len pooling: not reproduced here, so not claimed
        return None
    max_length = 256
    sbert = p / "sentence_bert_config.json"
    if sbert.is_file():
        with contextlib.suppress(OSError, json.JSONDecodeError, TypeError, ValueError):
            max_length = int(json.loads(sbert.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return SentenceSpec(pooling=pooling, normalize="Normalize" in types, max_length=max_length)


def _budget_batches(lengths: np.ndarray, batch_tokens: int, max_batch: int) -> list[np.ndarray]:
    """Indices longest-first, cut so each padded batch holds about `batch_tokens` tokens."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    i, n = 0, len(order)
    while i < n:
        longest = int(lengths[order[i]])
        size = max(1, min(max_batch, batch_tokens // max(longest, 1)))
        batches.append(order[i : i + size])
        i += size
    return batches


class SentenceEncoder:
    """A sentence-transformers model folder loaded for encoding (CPU or CUDA)."""

    def __init__(
        self, model_dir: str | os.PathLike[str], device: str = "cpu", max_length: int | None = None
    ) -> None:
        spec = sentence_spec(model_dir)
        if spec is None:
            raise IndexStageError(
                f"{model_dir} is not a sentence encoder (no sentence-transformers modules.json with mean or "
                "CLS pooling); the sentence-embedding scorer needs one, e.g. all-MiniLM-L6-v2"
            )
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.spec = spec
        self.max_length = int(max_length or spec.max_length)
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir)).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)

    def encode(
        self,
        texts: Sequence[str],
        batch_tokens: int = 8192,
        max_batch: int = 512,
        progress: bool = False,
        desc: str = "sentences",
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """n×dim float32 sentence embeddings in input order (normalised when the model says so).

        `out` may be a memory-mapped array to fill in place.
        """
        import torch
        from tqdm import tqdm

        n = len(texts)
        if out is None:
            out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        enc = self.tokenizer(
            [str(t) for t in texts], add_special_tokens=True, truncation=True, max_length=self.max_length
        )["input_ids"]
        lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=n)
        pad = int(self.tokenizer.pad_token_id or 0)
        bar = tqdm(
            total=n, desc=desc, unit="text", file=sys.stderr, disable=bar_disable(progress), leave=False
        )
        try:
            with torch.inference_mode():
                for idx in _budget_batches(lengths, batch_tokens, max_batch):
                    width = int(lengths[idx].max())
                    ids = np.full((len(idx), width), pad, dtype=np.int64)
                    mask = np.zeros((len(idx), width), dtype=np.int64)
                    for row, i in enumerate(idx):
                        ids[row, : lengths[i]] = enc[i]
                        mask[row, : lengths[i]] = 1
                    t_ids = torch.from_numpy(ids).to(self.device)
                    t_mask = torch.from_numpy(mask).to(self.device)
                    hidden = self.model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
                    if self.spec.pooling == "cls":
                        vec = hidden[:, 0]
                    else:
                        m = t_mask.unsqueeze(-1).to(hidden.dtype)
                        vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                    if self.spec.normalize:
                        vec = torch.nn.functional.normalize(vec, p=2, dim=1)
                    out[idx] = vec.float().cpu().numpy()
                    bar.update(len(idx))
        finally:
            bar.close()
        return out
