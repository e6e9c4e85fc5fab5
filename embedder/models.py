"""Model families and the DefinitionEMB regressor.

This is the one module that knows where each family keeps its input embedding, what is tied, and which
parameters train by default. Everything else asks it.

Families (chosen from the config by `detect_family`, never by a flag the user must know):
    roberta     RoBERTa, XLM-R, CamemBERT — encoder; `<s> … </s>`
    bert        BERT, MiniLM — encoders with `[CLS] … [SEP]`
    encoder     any other masked-LM encoder transformers knows (MPNet, DeBERTa-v2/v3, ModernBERT, ELECTRA,
                DistilBERT, …): the RoBERTa recipe on `AutoModel`
    bart        BART / mBART — the encoder reads the prompt, the decoder is teacher-forced on the target pieces
    t5          T5 v1.0 / v1.1, mT5 (`T5ForConditionalGeneration`): as BART, the decoder led by a sentinel
    t5-encoder  a `T5EncoderModel` checkpoint: the encoder recipe on the T5 encoder
    t5gemma     T5Gemma: as t5; its encoder and decoder keep separate tables (`target_table` picks one)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from definitionemb.embedder.config import POOLINGS, TARGET_TABLES, TRAINABLE
from definitionemb.embedder.errors import EmbedderError
from torch import nn

__all__ = [
    "FAMILIES",
    "SEQ2SEQ",
    "TARGET_TABLES",
    "decoder_start_id",
    "mask_token_id",
    "word_prefix",
    "supported_types",
    "DEFAULT_TRAINABLE",
    "POOLINGS",
    "Regressor",
    "detect_family",
    "load_pretrained",
    "load_tokenizer",
    "model_sha256",
    "set_trainable",
]

FAMILIES = ("roberta", "bert", "encoder", "bart", "t5", "t5-encoder", "t5gemma")
SEQ2SEQ = ("bart", "t5", "t5gemma")  # the head reads the decoder; the encoder reads the prompt
# TARGET_TABLES: which embedding table the regressor regresses onto. T5 feeds both stacks from one
# `shared` table; T5Gemma has one per stack. The encoder's input table is the default: it is where a
# rare token enters the model.
_MODEL_TYPES = {
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "xlm-roberta-xl": "roberta",
    "bert": "bert",
    "bart": "bart",
    "mbart": "bart",
    "t5": "t5",
    "mt5": "t5",
    "t5gemma": "t5gemma",
}
_ENCODER_ONLY_ARCHS = ("T5EncoderModel", "MT5EncoderModel")
# The paper's choices: RoBERTa trains everything including its embedding matrix; BART keeps the shared
# embedding matrix frozen (it is tied to the LM head and to both stacks). The later version's T5 and
# T5Gemma scripts are read the same way as BART's: the target tables stay frozen, the rest trains.
DEFAULT_TRAINABLE = {
    "roberta": "all",
    "bert": "all",
    "encoder": "all",
    "bart": "no-embeddings",
    "t5": "no-embeddings",
    "t5-encoder": "all",
    "t5gemma": "no-embeddings",
}
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


def _masked_lm_types() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return set(MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def supported_types() -> str:
    """The supported model types, as one line for an error message."""
    named = sorted(_MODEL_TYPES)
    return (
        f"{', '.join(named)}, and any other encoder with a masked-LM head in transformers "
        "(e.g. mpnet, deberta-v2, modernbert, electra, distilbert)"
    )


def detect_family(config: Any) -> str:
    """Map an HF config to one of FAMILIES, or refuse with the supported list."""
    mt = getattr(config, "model_type", None)
    archs = list(getattr(config, "architectures", None) or [])
    fam = _MODEL_TYPES.get(str(mt))
    if fam == "t5" and any(a in _ENCODER_ONLY_ARCHS for a in archs):
        return "t5-encoder"
    if fam is not None:
        return fam
    if not getattr(config, "is_encoder_decoder", False) and mt in _masked_lm_types():
        return "encoder"
    raise EmbedderError(
        f"model type {mt!r} ({', '.join(archs) or 'no architecture named'}) is not supported; "
        f"supported: {supported_types()}"
    )


def mask_token_id(tokenizer: Any) -> int | None:
    """The id that hides the target: the mask token, else T5's first sentinel `<extra_id_0>`."""
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id)
    sentinel = tokenizer.convert_tokens_to_ids("<extra_id_0>")
    if sentinel is not None and sentinel != tokenizer.unk_token_id:
        return int(sentinel)
    return None


def word_prefix(tokenizer: Any) -> str:
    """What goes before a word to get its word-initial pieces: a space for byte-level BPE (`Ġcat`).

    WordPiece ignores the space and SentencePiece's Metaspace adds `▁` itself, so for them the bare
    word is already the word-initial spelling; a leading space would only add a lone `▁` piece.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = getattr(backend, "pre_tokenizer", None)
    return " " if pre is not None and "ByteLevel" in repr(pre) else ""


def decoder_start_id(config: Any) -> int | None:
    """The decoder's first input id: `decoder_start_token_id` (BART, T5), T5Gemma's decoder `bos`."""
    start = getattr(config, "decoder_start_token_id", None)
    if start is None and getattr(config, "decoder", None) is not None:
        start = getattr(config.decoder, "bos_token_id", None)
    return None if start is None else int(start)


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
    if mask_token_id(tok) is None:
        raise EmbedderError(
            f"{name_or_dir}: the tokenizer has no mask token (nor T5's <extra_id_0>); DefinitionEMB masks "
            "the target"
        )
    return tok


def _backbone_class(family: str) -> Any:
    import transformers

    if family == "t5-encoder":
        return transformers.T5EncoderModel
    return transformers.AutoModel


def _instantiate(build: Any, model_type: str) -> nn.Module:
    """`build(**kwargs)` with SDPA attention and no pooler, falling back where a model refuses either.

    Some encoders (MPNet, DeBERTa-v2 in transformers 5) raise ValueError for SDPA: they get the eager
    attention, which computes the same thing more slowly. Poolers are dropped because DefinitionEMB never
    uses them (an unused parameter would also break DDP); a class without the switch keeps its own.
    """
    kwargs: dict[str, Any] = {"attn_implementation": "sdpa", "add_pooling_layer": False}
    if model_type in _MODEL_TYPES and _MODEL_TYPES[model_type] in SEQ2SEQ + ("t5-encoder",):
        kwargs.pop("add_pooling_layer")
    for _ in range(3):
        try:
            return build(**kwargs)  # type: ignore[no-any-return]
        except TypeError:
            if "add_pooling_layer" not in kwargs:
                raise
            kwargs.pop("add_pooling_layer")
        except ValueError as exc:
            if kwargs.get("attn_implementation") != "sdpa" or "attention" not in str(exc).lower():
                raise
            kwargs["attn_implementation"] = "eager"
    return build(**kwargs)  # type: ignore[no-any-return]


def load_pretrained(
    name_or_dir: str | os.PathLike[str], family: str | None = None
) -> tuple[nn.Module, Any, str]:
    """Load a backbone (no LM head, SDPA attention where the model has it) and its fast tokenizer:
    `(model, tokenizer, family)`.

    `name_or_dir` is a local folder (tests and offline machines) or a hub name. The family comes from
    the config (`detect_family`); `family` overrides it.
    """
    from transformers import AutoConfig

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
        cls = _backbone_class(fam)
        model = _instantiate(lambda **kw: cls.from_pretrained(str(name_or_dir), **kw), config.model_type)
    get_in: Any = getattr(model, "get_input_embeddings", None)
    if not callable(get_in) or not isinstance(getattr(get_in(), "weight", None), torch.Tensor):
        raise EmbedderError(f"{name_or_dir}: the model exposes no input embedding matrix to regress onto")
    tok = load_tokenizer(name_or_dir)
    return model, tok, fam


def backbone_from_config(config: Any, family: str | None = None) -> nn.Module:
    """An untrained backbone of the given config (used to rebuild a saved regressor before loading it)."""
    fam = family or detect_family(config)
    cls = _backbone_class(fam)
    with _quiet_transformers():
        if cls.__name__ == "AutoModel":
            return _instantiate(lambda **kw: cls.from_config(config, **kw), config.model_type)
        return _instantiate(lambda **kw: cls._from_config(config, **kw), config.model_type)


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

    Encoder families read the hidden state at `target_pos` of the prompt. The encoder–decoder families
    (SEQ2SEQ) read the same prompt with their encoder; the decoder is teacher-forced on
    `[decoder_start, lead, revealed pieces…]` (lead: BART's `<s>`, T5's sentinel that stands for the
    masked span) and the head reads the decoder's last real position (the one that predicts the current
    piece). `target_table` names the table whose rows are the targets (TARGET_TABLES).
    """

    backbone: Any  # an HF PreTrainedModel (typed loosely: nn.Module's __getattr__ hides its API)

    def __init__(
        self, backbone: nn.Module, family: str, pooling: str = "target", target_table: str = "encoder"
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise EmbedderError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if target_table not in TARGET_TABLES:
            raise EmbedderError(f"target_table must be one of {TARGET_TABLES}, got {target_table!r}")
        if target_table == "decoder" and family not in SEQ2SEQ:
            raise EmbedderError(f"target_table 'decoder' needs an encoder-decoder model, not {family!r}")
        self.backbone = backbone
        self.family = family
        self.pooling = pooling
        self.target_table = target_table
        self.dim = int(self.target_embeddings().weight.shape[1])
        # T5Gemma may pair stacks of different widths: the target state is the decoder's, the mean the
        # encoder's, and the head maps them to the target table's width.
        d_enc = int(self.input_embeddings().weight.shape[1])
        d_dec = d_enc
        if family in SEQ2SEQ:
            dec_cfg = getattr(backbone.config, "decoder", None)
            d_dec = int(getattr(dec_cfg, "hidden_size", 0) or d_enc)
        d_target = d_dec if family in SEQ2SEQ else d_enc
        self.feature_dim = {"target": d_target, "mean": d_enc, "target+mean": d_target + d_enc}[pooling]
        self.head = nn.Linear(self.feature_dim, self.dim, bias=False)
        nn.init.normal_(self.head.weight, mean=0.0, std=self.feature_dim**-0.5)

    def input_embeddings(self) -> nn.Embedding:
        """The encoder's input table (T5: `shared`, which the decoder reads too)."""
        emb = self.backbone.get_input_embeddings()
        assert isinstance(emb, nn.Embedding)
        return emb

    def target_embeddings(self) -> nn.Embedding:
        """The table whose original rows the head learns to predict (and whose rows a swap writes)."""
        if self.target_table == "encoder":
            return self.input_embeddings()
        emb = self.backbone.get_decoder().get_input_embeddings()
        assert isinstance(emb, nn.Embedding)
        return emb

    def embedding_tables(self) -> list[nn.Embedding]:
        """The distinct input tables of the backbone (one, or T5Gemma's two)."""
        tables = [self.input_embeddings()]
        if self.family in SEQ2SEQ:
            dec = self.backbone.get_decoder().get_input_embeddings()
            if dec.weight is not tables[0].weight:
                tables.append(dec)
        return tables

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        """What the head maps, one row per example (n × feature_dim), pooled as `self.pooling` says;
        `batch` is what :meth:`pooled` takes."""
        target, mean = self.pooled(**batch)
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

        The target state is the encoder's at `target_pos` (SEQ2SEQ: the decoder's last real position);
        the mean is over the (encoder) prompt, special tokens included, as sentence-transformers pools.
        """
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        if self.family in SEQ2SEQ:
            if decoder_input_ids is None or decoder_pos is None:
                raise EmbedderError(f"{self.family} needs decoder_input_ids and decoder_pos")
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
    `no-embeddings` freezes the input-embedding matrices (and whatever is tied to them); `head` trains only
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
        for table in model.embedding_tables():
            table.weight.requires_grad_(False)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"policy": policy, "trainable": n_train, "frozen": n_frozen}
