"""Loading a pre-trained language model from a local folder, once for every stage that needs one."""

from __future__ import annotations

import os
from typing import Any

from definitionemb.core.errors import DefembError

__all__ = ["HEADS", "ModelLoadError", "load_plm", "load_tokenizer"]

HEADS = ("native", "sequence-classification", "seq2seq")


class ModelLoadError(DefembError):
    """A model folder that transformers cannot load (missing, unreadable, or an unknown architecture)."""


def load_plm(model: str | os.PathLike[str], head: str = "native") -> Any:
    """A PLM from a local folder (a Hub id works only where the hub is reachable).

    head = "native": the class its config's `architectures` names, so a masked LM keeps its LM head, BART
    its generation head and a bare encoder (MiniLM's `BertModel`) stays bare; a config that names none
    gives `AutoModelForSeq2SeqLM` for encoder–decoders and the bare `AutoModel` otherwise (no randomly
    initialised head is invented). "sequence-classification" / "seq2seq": that Auto class.
    """
    import transformers

    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, not {head!r}")
    src = str(model)
    try:
        if head == "sequence-classification":
            return transformers.AutoModelForSequenceClassification.from_pretrained(src)
        if head == "seq2seq":
            return transformers.AutoModelForSeq2SeqLM.from_pretrained(src)
        config = transformers.AutoConfig.from_pretrained(src)
        arch = (getattr(config, "architectures", None) or [None])[0]
        cls = getattr(transformers, arch, None) if arch else None
        if cls is None:
            cls = (
                transformers.AutoModelForSeq2SeqLM
                if getattr(config, "is_encoder_decoder", False)
                else transformers.AutoModel
            )
        return cls.from_pretrained(src)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the model at {src}: {exc}. Pass a local model folder.") from exc


def load_tokenizer(model: str | os.PathLike[str]) -> Any:
    """The tokenizer saved beside a model."""
    import transformers

    try:
        return transformers.AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer at {model}: {exc}") from exc
