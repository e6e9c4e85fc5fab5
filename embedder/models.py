"""Model families and the DefinitionEMB regressor.

This is the one module that knows where each family keeps its input embedding, what is tied, and which
parameters train by default. Everything else asks it.

Families:
    roberta  RoBERTa, XLM-R, CamemBERT — encoder; `<s> … </s>`
    bert     BERT, MiniLM, DistilBERT-like encoders with `[CLS] … [SEP]`
    bart     BART / mBART — the encoder reads the prompt, the decoder is teacher-forced on the target pieces
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from definitionemb.embedder.config import POOLINGS, TRAINABLE
from definitionemb.embedder.errors import EmbedderError
from torch import nn

__all__ = [
    "FAMILIES",
    "DEFAULT_TRAINABLE",
    "POOLINGS",
    "Regressor",
    "detect_family",
    "load_pretrained",
    "load_tokenizer",
    "model_sha256",
    "set_trainable",
]

FAMILIES = ("roberta", "bert", "bart")
_MODEL_TYPES = {
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "xlm-roberta-xl": "roberta",
    "bert": "bert",
    "distilbert": "bert",
    "electra": "bert",
    "mpnet": "bert",
    "bart": "bart",
    "mbart": "bart",
}
# The paper's choices: RoBERTa trains everything including its embedding matrix; BART keeps the shared
# embedding matrix frozen (it is tied to the LM head and to both stacks).
DEFAULT_TRAINABLE = {"roberta": "all", "bert": "all", "bart": "no-embeddings"}
TRAINABLE_CHOICES = TRAINABLE
# POOLINGS: what the head reads: the target position's state (the paper), the mean over the prompt (how
# sentence-transformers pool, and what a frozen MiniLM reads a gloss best by), or both side by side.


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load drown the training bar
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
        if bars:
            hf_logging.enable_progress_bar()


def detect_family(config: Any) -> str:
    """Map an HF config to one of FAMILIES, or refuse with the supported list."""
    mt = getattr(config, "model_type", None)
    if mt in _MODEL_TYPES:
        return _MODEL_TYPES[mt]
    raise EmbedderError(
        f"model type {mt!r} is not supported; supported: {sorted(_MODEL_TYPES)}. "
        "Pass family='roberta'|'bert'|'bart' if it behaves like one of those."
    )


def load_tokenizer(name_or_dir: str | os.PathLike[str]) -> Any:
    """The fast tokenizer of a model folder (or hub name when a hub is reachable)."""
    from transformers import AutoTokenizer

    with _quiet_transformers():
        try:
            tok = AutoTokenizer.from_pretrained(str(name_or_dir))
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"cannot load a tokenizer from {name_or_dir}: {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise EmbedderError(f"{name_or_dir}: a fast tokenizer (tokenizer.json) is needed for batch encoding")
    if tok.mask_token_id is None:
        raise EmbedderError(f"{name_or_dir}: the tokenizer has no mask token; DefinitionEMB masks the target")
    return tok


def load_pretrained(
    name_or_dir: str | os.PathLike[str], family: str | None = None
) -> tuple[nn.Module, Any, str]:
    """Load a backbone (no LM head, SDPA attention) and its fast tokenizer: `(model, tokenizer, family)`.

    `name_or_dir` is a local folder (tests and offline machines) or a hub name. Encoders load without
    their pooler, which DefinitionEMB never uses (an unused parameter would also break DDP).
    """
    from transformers import AutoConfig, AutoModel

    with _quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(str(name_or_dir))
        except (OSError, ValueError) as exc:
            raise EmbedderError(
                f"cannot load a model config from {name_or_dir}: {exc}. Give a folder with config.json "
                "and weights (save_pretrained layout)."
            ) from exc
        fam = family or detect_family(config)
        if fam not in FAMILIES:
            raise EmbedderError(f"family must be one of {FAMILIES}, got {fam!r}")
        kwargs: dict[str, Any] = {"attn_implementation": "sdpa"}
        if fam != "bart" and config.model_type in ("bert", "roberta", "xlm-roberta", "camembert", "electra"):
            kwargs["add_pooling_layer"] = False
        try:
            model = AutoModel.from_pretrained(str(name_or_dir), **kwargs)
        except TypeError:
            kwargs.pop("add_pooling_layer", None)
            model = AutoModel.from_pretrained(str(name_or_dir), **kwargs)
    tok = load_tokenizer(name_or_dir)
    return model, tok, fam


def backbone_from_config(config: Any) -> nn.Module:
    """An untrained backbone of the given config (used to rebuild a saved regressor before loading it)."""
    from transformers import AutoModel

    with _quiet_transformers():
        kwargs: dict[str, Any] = {"attn_implementation": "sdpa"}
        if config.model_type in ("bert", "roberta", "xlm-roberta", "camembert", "electra"):
            kwargs["add_pooling_layer"] = False
        try:
            return AutoModel.from_config(config, **kwargs)
        except TypeError:
            kwargs.pop("add_pooling_layer", None)
            return AutoModel.from_config(config, **kwargs)


def model_sha256(name_or_dir: str | os.PathLike[str]) -> str | None:
    """sha256 over the weight files of a local model folder (None for a hub name)."""
    p = Path(name_or_dir)
    if not p.is_dir():
        return None
    files = sorted(
        f
        for f in p.iterdir()
        if f.suffix in (".safetensors", ".bin") and f.is_file() and "optimizer" not in f.name
    )
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


class Regressor(nn.Module):
    """Backbone + bias-free linear head mapping pooled hidden states (see POOLINGS) to a row.

    Encoder families read the hidden state at `target_pos` of the prompt. BART's encoder reads the same
    prompt; its decoder is teacher-forced on `[decoder_start, bos, revealed pieces…]` and the head reads
    the decoder's last real position (the one that predicts the current piece).
    """

    backbone: Any  # an HF PreTrainedModel (typed loosely: nn.Module's __getattr__ hides its API)

    def __init__(self, backbone: nn.Module, family: str, pooling: str = "target") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise EmbedderError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.backbone = backbone
        self.family = family
        self.pooling = pooling
        config: Any = backbone.config
        d = int(getattr(config, "hidden_size", None) or config.d_model)
        self.dim = d
        self.feature_dim = d * (2 if pooling == "target+mean" else 1)
        self.head = nn.Linear(self.feature_dim, d, bias=False)
        nn.init.normal_(self.head.weight, mean=0.0, std=self.feature_dim**-0.5)

    def input_embeddings(self) -> nn.Embedding:
        emb = self.backbone.get_input_embeddings()
        assert isinstance(emb, nn.Embedding)
        return emb

    def features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        target_pos: torch.Tensor,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """What the head maps, one row per example (n × feature_dim), pooled as `self.pooling` says."""
        target, mean = self.pooled(
            input_ids, attention_mask, target_pos, decoder_input_ids, decoder_attention_mask, decoder_pos
        )
        if self.pooling == "target":
            return target
        if self.pooling == "mean":
            return mean
        return torch.cat([target, mean], dim=-1)

    def pooled(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        target_pos: torch.Tensor,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_pos: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(target-position state, mean over the prompt's real positions), both n×d.

        The target state is the encoder's at `target_pos` (BART: the decoder's last real position);
        the mean is over the (encoder) prompt, special tokens included, as sentence-transformers pools.
        """
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        if self.family == "bart":
            if decoder_input_ids is None or decoder_pos is None:
                raise EmbedderError("BART needs decoder_input_ids and decoder_pos")
            out = self.backbone(
                input_ids=input_ids,
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
                use_cache=False,
            )
            target = out.last_hidden_state[rows, decoder_pos]
            states = out.encoder_last_hidden_state
        else:
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
            states = out.last_hidden_state
            target = states[rows, target_pos]
        m = attention_mask.unsqueeze(-1).to(states.dtype)
        mean = (states * m).sum(1) / m.sum(1).clamp_min(1.0)
        return target, mean

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(**batch))


def set_trainable(model: Regressor, policy: str = "auto") -> dict[str, Any]:
    """Freeze/unfreeze parameters by policy; returns counts of trainable and frozen parameters.

    `auto` takes the paper's default of the family (DEFAULT_TRAINABLE); `all` trains everything;
    `no-embeddings` freezes the input-embedding matrix (and whatever is tied to it); `head` trains only
    the linear head (a probe).
    """
    if policy not in TRAINABLE_CHOICES:
        raise EmbedderError(f"trainable must be one of {TRAINABLE_CHOICES}, got {policy!r}")
    if policy == "auto":
        policy = DEFAULT_TRAINABLE[model.family]
    for p in model.parameters():
        p.requires_grad_(policy != "head")
    model.head.weight.requires_grad_(True)
    if policy == "no-embeddings":
        model.input_embeddings().weight.requires_grad_(False)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"policy": policy, "trainable": n_train, "frozen": n_frozen}
