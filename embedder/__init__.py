"""embedder: the DefinitionEMB regressor — train it on lexicon definitions, generate definition vectors.

Public API (torch loads only when a trainer/generator name is first used, so `import embedder.rundir`
stays light)::

    embedder.train(embedder.preset("quick", db=..., model=..., run=...))  -> TrainResult
    embedder.generate(GenerateConfig(db=..., run=..., senses=True))       -> GenerateResult
    embedder.encode_definitions(run, ["a small domesticated feline"])    -> np.ndarray (n×d float32)
    embedder.models.load_pretrained("path/to/model")                     -> (model, tokenizer, family)
    embedder.RunDir.open("runs/x")                                       -> the run folder contract
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from definitionemb.embedder.errors import EmbedderError, NonFiniteOutput, RunMismatch
from definitionemb.embedder.rundir import RunDir

if TYPE_CHECKING:  # the lazy names below, spelled out for mypy and editors
    from definitionemb.embedder import (
        batching,
        checkpoint,
        config,
        errors,
        examples,
        generator,
        inference,
        lexicon_io,
        models,
        rundir,
        smoothing,
        trainer,
    )
    from definitionemb.embedder.checkpoint import load_regressor
    from definitionemb.embedder.config import (
        PRESETS,
        GenerateConfig,
        GenerateResult,
        PromptConfig,
        TrainConfig,
        TrainResult,
        preset,
    )
    from definitionemb.embedder.generator import DefinitionEncoder, encode_definitions, generate
    from definitionemb.embedder.models import Regressor, load_pretrained
    from definitionemb.embedder.trainer import train

_LAZY = {
    "train": "definitionemb.embedder.trainer",
    "generate": "definitionemb.embedder.generator",
    "encode_definitions": "definitionemb.embedder.generator",
    "DefinitionEncoder": "definitionemb.embedder.generator",
    "TrainConfig": "definitionemb.embedder.config",
    "GenerateConfig": "definitionemb.embedder.config",
    "PromptConfig": "definitionemb.embedder.config",
    "TrainResult": "definitionemb.embedder.config",
    "GenerateResult": "definitionemb.embedder.config",
    "PRESETS": "definitionemb.embedder.config",
    "preset": "definitionemb.embedder.config",
    "load_pretrained": "definitionemb.embedder.models",
    "load_regressor": "definitionemb.embedder.checkpoint",
    "Regressor": "definitionemb.embedder.models",
}
_SUBMODULES = {
    "models",
    "trainer",
    "generator",
    "config",
    "examples",
    "batching",
    "checkpoint",
    "inference",
    "lexicon_io",
    "rundir",
    "errors",
    "smoothing",
}

__all__ = ["EmbedderError", "NonFiniteOutput", "RunMismatch", "RunDir", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod = importlib.import_module(_LAZY[name])
        return getattr(mod, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"definitionemb.embedder.{name}")
    raise AttributeError(f"module 'definitionemb.embedder' has no attribute {name!r}")
