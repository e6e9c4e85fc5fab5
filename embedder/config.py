"""Configs and results of the embedder, as small frozen dataclasses (`to_dict()` is what `--json` prints).

Presets:
    quick  the CPU demo: MiniLM over Open Dictionary in about 2 minutes of training on 2 cores. The head
           starts from a closed-form ridge regression on frozen target-position features (up to 20,000
           examples), then everything fine-tunes gently for 150 steps of 1,024 tokens (encoder lr 2e-5,
           head lr 1e-4, 10 warm-up steps, cosine schedule, MSE + 0.05 × cosine term, target always masked
           as at generation, prompts cut at 32 tokens). The ridge start is what beats the baseline; the
           fine-tune first costs held-out cosine and then wins it back and more (numbers below).
           Since issue 9 the head reads the target state and the prompt's mean side by side
           (`pooling="target+mean"`) and a token's row averages its top senses (`topk=6` since the seventh
           pass; 3 before: RESULTS.md).
    standard  the CPU recipe: the quick one, 800 steps of 2,048 tokens (11× the tokens), encoder lr
           3e-5, 2 senses per token, no dropout; about 19 minutes of training on 2 idle cores (1,000
           steps took 24 minutes at 1,460 tokens/s and reached 0.377; 800 without dropout reach 0.3765:
           RESULTS.md). Generation takes the smoothing step (`smoothing="auto"`): held-out cosine of
           the top-6 rows 0.418 -> 0.514 on the half of the held-out tokens the step's choice never read.
    gpu    the same recipe for one GPU: 20k steps of 8,192 tokens, 3 senses per token, ridge on 100k
           examples (config only; unmeasured).
    paper  the authors' RoBERTa-base recipe: Adam(0.9, 0.98), wd 0.01, clip 0.1, lr 1e-4, inverse-sqrt
           schedule with 24k warm-up updates, 4,096-token batches, 400k updates, reference MSE loss,
           random N(0, d^-1/2) head, BERT-style 50/25/25 target corruption, multi-piece words included.

Measured (real MiniLM, full Open Dictionary aligned by lexicon.align: 19,985 tokens, 999 held out; CPU with
2 contended cores). Held-out mean cosine of generated vs original rows; the definition-mean baseline of
this split is 0.141 (0.214 in the reference note's split):
    ridge head on frozen target-position features, no fine-tuning: 2k examples 0.258, 4k 0.287, 6k 0.299,
        8k 0.309, 20k (3 senses/token) 0.305; alpha 1e-3..1e-2 of the mean eigenvalue is best
    ridge 6k + 40 steps (enc lr 2e-5, head lr 2e-4, MSE + 1.0×cos, 50/25/25 corruption): 0.187 at step 10,
        0.266 at 40 (the cosine term at weight 1 swamps the MSE and lets row norms drift)
    same with cos weight 0.05: 0.218 at 10, 0.263 at 40; and with the target always masked: 0.247, 0.279
    head lr 1e-3, enc lr 5e-5, cos weight 1, 3 steps on the small test lexicon: 0.300 → 0.177 (diverges)
    ridge 6k + 40 steps, head lr 1e-4, warm-up 10 (41 s on 2 idle cores): 0.299 → 0.267 at 20 → 0.277 at 40
    quick as shipped, ridge on all 18,986 training examples + 150 steps (119 s): 0.315 → 0.297 at 50
        → 0.317 at 100 → 0.322 at 150
    the same start + 300 steps of 2,048 tokens, enc lr 3e-5: 0.335 at 100 → 0.349 at 200 → 0.352 at 300
    paper-style from a random head (MSE, 50/25/25, lr 1e-4, 150 steps of 1,024): 0.098 — the average row
        (the mean training row alone scores 0.099), as the reference note found

Issue 9, on the fixed split (`split_seed` 0: 1,000 held-out tokens, definition-mean baseline 0.137), frozen
ridge probes (cosine / top-3 sense mean): target position 0.307 / 0.328, prompt mean 0.345 / 0.374,
both side by side 0.352 / 0.379; 3 senses per token in training 0.352 / 0.389 (scripts/probe_regressor.py).
The quick preset with the target+mean head: 0.352 at step 0 → 0.335 at 50 → 0.344 at 100 → 0.349 at 150
(top-3 0.374): still climbing, 0.003 short of its own ridge start (2,443 s at load 10-12). The same without
dropout (`dropout=0.0`, shipped): 0.352 → 0.338 → 0.350 → 0.356 at 150 (top-3 0.381), above every probe.

"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from definitionemb.core.records import Record
from definitionemb.embedder.errors import EmbedderError

SMOOTHING_MODES = ("auto", "off")  # TrainConfig.smoothing / GenerateConfig.smoothing (embedder.smoothing)
SCHEDULES = ("inverse_sqrt", "cosine", "constant")
LOSSES = ("mse", "mse+cos")
HEAD_INITS = ("random", "ridge")
TRAINABLE = ("auto", "all", "no-embeddings", "head")  # embedder.models.set_trainable
POOLINGS = ("target", "mean", "target+mean")  # what the head reads (embedder.models.Regressor)
TARGET_TABLES = ("encoder", "decoder")  # whose rows the head predicts (embedder.models.Regressor)


def option(
    default: Any, help: str, choices: tuple[str, ...] | None = None, aliases: tuple[str, ...] = ()
) -> Any:
    """A config field that is also a command-line option: its help (and choices, and older spellings)
    live here, once; `definitionemb._cli.config_options` turns the field into `--its-name`."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if aliases:
        meta["aliases"] = aliases
    return field(default=default, metadata=meta)


def _check_smoothing(mode: str) -> None:
    if mode not in SMOOTHING_MODES:
        raise EmbedderError(f"smoothing must be {' or '.join(map(repr, SMOOTHING_MODES))}, not {mode!r}")


__all__ = [
    "PromptConfig",
    "TrainConfig",
    "GenerateConfig",
    "TrainResult",
    "GenerateResult",
    "PRESETS",
    "preset",
]


@dataclass(frozen=True)
class PromptConfig(Record):
    """How a definition becomes a prompt.

    The authors did not release their prompt. Ours puts the target piece(s) first, then the part of
    speech in parentheses, then a colon and the gloss — the layout of a printed dictionary line
    ("cat (noun): a small domesticated carnivore"). Target first keeps the masked position at a fixed
    place right after the start token, so every prompt has the same reading order and the gloss is
    truncated from its tail, never the target. `{target}` must occur once; `{pos}` and `{gloss}` are
    filled from the lexicon. Set `use_pos=False` (or give a template without `{pos}`) to drop the POS.
    """

    template: str = "{target} ( {pos} ) : {gloss}"
    template_no_pos: str = "{target} : {gloss}"
    use_pos: bool = True
    max_length: int = 64

    def __post_init__(self) -> None:
        for t in (self.template, self.template_no_pos):
            if t.count("{target}") != 1 or "{gloss}" not in t:
                raise EmbedderError(f"prompt template {t!r} needs exactly one {{target}} and a {{gloss}}")
        if "{pos}" in self.template_no_pos:
            raise EmbedderError("template_no_pos must not contain {pos}")
        if self.max_length < 8:
            raise EmbedderError("max_length must be at least 8 tokens")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `embedder.train` needs. Flags of `defemb embed train` map 1:1 onto these fields."""

    db: str
    model: str
    run: str
    family: str | None = None
    preset: str = "quick"
    steps: int = option(150, "Optimizer updates.")
    batch_tokens: int = option(1024, "Padded tokens per micro-batch.")
    grad_accum: int = option(1, "Micro-batches per update.")
    lr: float = option(2e-5, "Learning rate of the encoder (and of the embeddings when they train).")
    head_lr: float | None = option(1e-4, "Learning rate of the head (None: the encoder's).")
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    clip: float = 1.0
    schedule: str = option("cosine", "Learning-rate schedule after the linear warm-up.", SCHEDULES)
    warmup: int = option(10, "Warm-up updates.")
    min_lr_ratio: float = 0.05  # floor of the cosine schedule
    loss: str = option("mse+cos", "mse = the reference loss; mse+cos adds a cosine term.", LOSSES)
    cos_weight: float = 0.05
    head_init: str = option(
        "ridge", "random = N(0, d^-1/2), the reference; ridge = fitted on frozen features.", HEAD_INITS
    )
    ridge_alpha: float = 1e-2
    ridge_examples: int = 20000
    trainable: str = option("auto", "Which parameters train.", TRAINABLE)
    mask_prob: float = 1.0  # target corruption in training: mask token ... (paper: 0.5)
    random_prob: float = 0.0  # ... or a random token; kept otherwise (paper: 0.25)
    dropout: float | None = option(
        None, "Override the model's dropout (0 for exact DDP checks; None keeps it)."
    )
    senses_per_token: int = option(1, "Train on each token's top-k ranked senses.")
    pooling: str = option(
        "target", "What the head reads: the target position, the prompt's mean, or both.", POOLINGS
    )
    target_table: str = option(
        "encoder",
        "Which embedding table the regressor predicts (T5Gemma keeps one per stack).",
        TARGET_TABLES,
    )
    topk: int = option(1, "Senses averaged per token at generation (generate's default for this run).")
    smoothing: str = option(
        "off",
        "The smoothing step generation takes for this run (see `embed generate`).",
        SMOOTHING_MODES,
        ("--neighbours",),
    )
    heldout_senses: int = 3  # held-out scores: first sense ("cosine") and mean over top-2.. this many
    split_seed: int = option(
        0, "Seed of the held-out split alone: runs with other seeds or presets share it."
    )
    probes: bool = True  # score ridge probes on frozen features and the definition mean on the split
    multipiece_words: bool = False  # also train on words the tokenizer splits (one example per piece)
    max_pieces: int = 4
    heldout_frac: float = 0.05
    heldout_max: int = 1000
    eval_every: int = 50
    ckpt_every: int = 200
    stop_after: int | None = None  # stop (with a checkpoint) after this many steps of this call
    resume: bool = False
    device: str = "auto"
    compile: bool = False
    seed: int = 0
    prompt: PromptConfig = field(default_factory=lambda: PromptConfig(max_length=32))
    progress: bool = True
    align_if_missing: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise EmbedderError("steps must be >= 1")
        if self.batch_tokens < self.prompt.max_length:
            raise EmbedderError(
                f"batch_tokens ({self.batch_tokens}) must be >= prompt.max_length ({self.prompt.max_length})"
            )
        if self.schedule not in SCHEDULES:
            raise EmbedderError(f"schedule must be inverse_sqrt|cosine|constant, got {self.schedule!r}")
        if self.loss not in LOSSES:
            raise EmbedderError(f"loss must be mse|mse+cos, got {self.loss!r}")
        if self.head_init not in HEAD_INITS:
            raise EmbedderError(f"head_init must be random|ridge, got {self.head_init!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise EmbedderError(f"device must be auto|cpu|cuda, got {self.device!r}")
        if not 0.0 <= self.heldout_frac < 1.0:
            raise EmbedderError("heldout_frac must be in [0, 1)")
        if not (self.mask_prob >= 0 and self.random_prob >= 0 and self.mask_prob + self.random_prob <= 1):
            raise EmbedderError("mask_prob and random_prob must be >= 0 with a sum <= 1")
        if self.grad_accum < 1 or self.senses_per_token < 1 or self.topk < 1 or self.heldout_senses < 1:
            raise EmbedderError("grad_accum, senses_per_token, topk and heldout_senses must be >= 1")
        if self.pooling not in POOLINGS:
            raise EmbedderError(f"pooling must be target|mean|target+mean, got {self.pooling!r}")
        if self.target_table not in TARGET_TABLES:
            raise EmbedderError(f"target_table must be encoder|decoder, got {self.target_table!r}")
        _check_smoothing(self.smoothing)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        if isinstance(d.get("prompt"), dict):
            d["prompt"] = PromptConfig(**d["prompt"])
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


PRESETS: dict[str, dict[str, Any]] = {
    # quick: the dataclass defaults, but the head reads target state and prompt mean side by side and a
    # token's row averages its top senses (both measured on the fixed split, see the docstring). No
    # dropout: the ridge head is fitted on dropout-free features, and training it on noisy ones first
    # pulls it off that fit (0.349 with the model's 0.1, 0.356 without; RESULTS.md).
    # topk=6: on the quick run's rows (full Open Dictionary, real MiniLM) the development thirds of the six
    # word-similarity sets score top-3 / top-6 / top-10 averaging at +0.026 / +0.031 / +0.030 over the
    # original rows (each at its own dev α), held-out cosine 0.381 / 0.391 / 0.396; 6 costs 1.7× the
    # definitions of 3 at generation, 10 costs 2.4× (benchmarks/HISTORY.md, "Top-6 rows, seventh pass").
    # smoothing="auto" in standard/gpu, not quick: on the standard run the step wins the development
    # thirds of word similarity (+0.004 mean at top-6, +0.009 at top-3) and the carved CoLA split (0.121
    # vs 0.114 over 3 seeds), and lifts held-out cosine 0.418 -> 0.514; on the quick run the thirds tie
    # (+0.0005), so the ~25 s it costs buys nothing there (RESULTS.md, ninth pass).
    "quick": {"pooling": "target+mean", "topk": 6, "dropout": 0.0},
    "standard": {  # the CPU recipe: under 20 minutes of training on 2 idle cores (MiniLM)
        "pooling": "target+mean",
        "topk": 6,
        "smoothing": "auto",
        "dropout": 0.0,
        "steps": 800,
        "batch_tokens": 2048,
        "lr": 3e-5,
        "head_lr": 1e-4,
        "warmup": 30,
        "senses_per_token": 2,
        "eval_every": 200,
        "ckpt_every": 200,
    },
    "gpu": {  # one GPU (config only: not measured on one yet): the same recipe, a longer schedule
        "pooling": "target+mean",
        "topk": 6,
        "smoothing": "auto",
        "steps": 20_000,
        "batch_tokens": 8192,
        "lr": 5e-5,
        "head_lr": 2e-4,
        "warmup": 500,
        "senses_per_token": 3,
        "ridge_examples": 100_000,
        "eval_every": 1000,
        "ckpt_every": 2000,
        "device": "auto",
    },
    "paper": {
        "steps": 400_000,
        "batch_tokens": 4096,
        "lr": 1e-4,
        "head_lr": None,
        "weight_decay": 0.01,
        "betas": (0.9, 0.98),
        "clip": 0.1,
        "schedule": "inverse_sqrt",
        "warmup": 24_000,
        "loss": "mse",
        "head_init": "random",
        "trainable": "auto",
        "senses_per_token": 1,
        "multipiece_words": True,
        "mask_prob": 0.5,
        "random_prob": 0.25,
        "cos_weight": 1.0,
        "prompt": PromptConfig(max_length=64),
        "heldout_max": 2000,
        "eval_every": 2000,
        "ckpt_every": 5000,
    },
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a named preset, with explicit fields taking precedence."""
    if name not in PRESETS:
        raise EmbedderError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    fields = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(preset=name, **fields)


@dataclass(frozen=True)
class GenerateConfig(Record):
    """What `embedder.generate` writes into a run: token rows (always) and sense vectors (`senses`)."""

    db: str
    run: str
    senses: bool = False
    topk: int | None = None  # >1: a token's row is the mean over its top-k senses; None: the run's own
    # "auto": move each definition's row toward its nearest other definitions' token rows, with (k, τ, β)
    # chosen on half the run's held-out tokens (embedder.smoothing); "off": the regressor's rows alone;
    # None: the run's own (TrainConfig.smoothing, set by its preset).
    smoothing: str | None = None
    batch_tokens: int = 16384
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.topk is not None and self.topk < 1:
            raise EmbedderError("topk must be >= 1")
        if self.smoothing is not None:
            _check_smoothing(self.smoothing)


@dataclass(frozen=True)
class TrainResult:
    run: str
    steps: int
    tokens_per_s: float
    train_loss: float
    heldout: dict[str, float]
    seconds: float
    history: tuple[dict[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["history"] = list(self.history)
        return d


@dataclass(frozen=True)
class GenerateResult(Record):
    run: str
    tokens: int  # rows generated (covered tokens)
    vocab_size: int
    senses: int
    definitions_per_s: float
    seconds: float
    smoothing: dict[str, Any] | None = None  # the neighbour step's choice and held-out scores


def abspath(p: str | os.PathLike[str]) -> str:
    return str(Path(p).expanduser().resolve())
