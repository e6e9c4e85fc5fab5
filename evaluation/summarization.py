"""Sequence-to-sequence summarisation (BART-style models) scored with ROUGE, original vs swapped.

Data: a local folder with `train` and `test` (or `validation`/`dev`/`val`) splits as JSONL (objects with
`document` and `summary`) or TSV (a `document<TAB>summary` header, or two headerless columns).
Decoding settings of the paper's datasets are presets; BillSum's are our choice (see `PRESETS`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.progress import bar_disable
from definitionemb.core.records import Record
from definitionemb.embedder.binding import LexiconRef
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import DataFormatError, EvaluationError
from definitionemb.evaluation.paired import resampled_mean_differences
from definitionemb.evaluation.training import (
    optimizer_and_schedule,
    optimizer_step,
    pick_device,
    seed_everything,
)

__all__ = [
    "Decoding",
    "PRESETS",
    "SummarizationConfig",
    "SummaryPairs",
    "read_split",
    "load_splits",
    "rouge",
    "paired_bootstrap",
    "summarize_once",
    "compare_summarization",
    "SummarizationResult",
]


@dataclass(frozen=True)
class Decoding(Record):
    """Beam-search settings passed to `generate`."""

    num_beams: int
    max_length: int
    min_length: int
    length_penalty: float
    no_repeat_ngram_size: int


PRESETS: dict[str, Decoding] = {
    "xsum": Decoding(6, 60, 10, 1.0, 3),
    "cnndm": Decoding(4, 140, 55, 2.0, 3),
    # BillSum's reference summaries (~200 words) are longer than CNN/DM's, so we keep CNN/DM's beam and
    # length penalty and lengthen the bounds: beam 4, max 256, min 64, lenpen 2.0, no-repeat 3.
    "billsum": Decoding(4, 256, 64, 2.0, 3),
}


@dataclass(frozen=True)
class SummaryPairs:
    documents: tuple[str, ...]
    summaries: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.documents)

    def head(self, n: int | None) -> SummaryPairs:
        return self if n is None or n >= len(self) else SummaryPairs(self.documents[:n], self.summaries[:n])


def read_split(path: str | os.PathLike[str]) -> SummaryPairs:
    """Read one JSONL or TSV file of (document, summary) pairs."""
    p = Path(path)
    docs: list[str] = []
    sums: list[str] = []
    if p.suffix == ".jsonl":
        with p.open(encoding="utf-8") as fh:
            for no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    docs.append(str(obj["document"]))
                    sums.append(str(obj["summary"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DataFormatError(
                        f"{p}:{no}: expected a JSON object with `document` and `summary`: {exc}"
                    ) from exc
    elif p.suffix == ".tsv":
        with p.open(encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if r]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["document", "summary"]:
            rows = rows[1:]
        for no, r in enumerate(rows, 1):
            if len(r) < 2:
                raise DataFormatError(f"{p}: row {no} has {len(r)} columns, expected document<TAB>summary")
            docs.append(r[0])
            sums.append(r[1])
    else:
        raise DataFormatError(f"{p}: summarisation files must be .jsonl or .tsv")
    if not docs:
        raise DataFormatError(f"{p} holds no (document, summary) pairs")
    return SummaryPairs(tuple(docs), tuple(sums))


def _find_split(d: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        for ext in (".jsonl", ".tsv"):
            if (d / f"{n}{ext}").is_file():
                return d / f"{n}{ext}"
    return None


def load_splits(data_dir: str | os.PathLike[str]) -> tuple[SummaryPairs | None, SummaryPairs]:
    """(train or None, evaluation split) from a folder; the evaluation split is test, else validation."""
    d = Path(data_dir)
    if not d.is_dir():
        raise DataFormatError(f"{d} is not a folder of summarisation splits")
    ev = _find_split(d, ("test", "validation", "dev", "val"))
    if ev is None:
        raise DataFormatError(f"{d} has no test.jsonl / test.tsv (or validation/dev/val) split")
    tr = _find_split(d, ("train",))
    return (read_split(tr) if tr else None), read_split(ev)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-example ROUGE-1/2/L F1 (stemmed), as arrays so they can be averaged or bootstrapped."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    out: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    for pred, ref in zip(predictions, references, strict=True):
        s = scorer.score(ref, pred)
        for k in out:
            out[k].append(s[k].fmeasure)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = 1000, seed: int = 0) -> float:
    """Share of bootstrap resamples of the examples in which b does not beat a (a one-sided p-value)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise EvaluationError("paired bootstrap needs two equally long, non-empty score lists")
    return float((resampled_mean_differences(a, b, samples, seed) <= 0).mean())


@dataclass(frozen=True)
class SummarizationConfig:
    """Fine-tuning (optional: train_steps=0 only decodes) and decoding settings."""

    data_dir: str = ""
    preset: str = "xsum"
    rows: str = "covered"  # the row policy of the swapped model (index.policy): which rows …
    how: str | None = None  # … and how they change (None: the run's default policy, index.policy)
    seed: int = 1
    train_steps: int = 0
    lr: float = 3e-5
    batch_size: int = 8
    max_source_len: int = 512
    max_target_len: int = 128
    max_train: int | None = None
    max_eval: int | None = None
    eval_batch_size: int = 8
    device: str = "auto"
    decoding: Decoding | None = None

    def settings(self) -> Decoding:
        if self.decoding is not None:
            return self.decoding
        if self.preset not in PRESETS:
            raise EvaluationError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[self.preset]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decoding": self.settings().to_dict()}


def summarize_once(
    model_dir: str | os.PathLike[str],
    train: SummaryPairs | None,
    test: SummaryPairs,
    cfg: SummarizationConfig,
    swap: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = False,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Optionally fine-tune, then decode `test` with the preset; returns predictions and per-example ROUGE."""
    import torch
    from definitionemb.evaluation.swap import replace_rows
    from tqdm.auto import tqdm
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    dec = cfg.settings()
    device = pick_device(cfg.device)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    seed_everything(cfg.seed)
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{model_dir} is not a sequence-to-sequence model (BART-style): {exc}") from exc
    if swap is not None:
        replace_rows(model, swap[0], swap[1])
    model.to(device)
    if cfg.train_steps > 0:
        if train is None:
            raise EvaluationError(f"{cfg.data_dir} has no train split; set train_steps=0 to only decode")
        rng = np.random.default_rng(cfg.seed)
        opt, sched = optimizer_and_schedule(model, cfg.lr, cfg.train_steps)
        model.train()
        bar = tqdm(
            total=cfg.train_steps, desc="summarisation fine-tune", disable=bar_disable(progress), leave=False
        )
        step = 0
        while step < cfg.train_steps:
            order = rng.permutation(len(train)).tolist()
            for s in range(0, len(order), cfg.batch_size):
                if step >= cfg.train_steps:
                    break
                idx = order[s : s + cfg.batch_size]
                batch = tok(
                    [train.documents[i] for i in idx],
                    text_target=[train.summaries[i] for i in idx],
                    max_length=cfg.max_source_len,
                    truncation=True,
                    padding=True,
                    return_tensors="pt",
                )
                labels = batch["labels"]
                labels[labels == tok.pad_token_id] = -100
                loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
                optimizer_step(model, loss, opt, sched)
                step += 1
                bar.update(1)
        bar.close()
    model.eval()
    order = sorted(range(len(test)), key=lambda i: len(test.documents[i]))
    preds: list[str] = [""] * len(test)
    with torch.no_grad():
        for s in range(0, len(order), cfg.eval_batch_size):
            idx = order[s : s + cfg.eval_batch_size]
            enc = tok(
                [test.documents[i] for i in idx],
                max_length=cfg.max_source_len,
                truncation=True,
                padding=True,
                return_tensors="pt",
            ).to(device)
            out = model.generate(
                **enc,
                num_beams=dec.num_beams,
                max_length=dec.max_length,
                min_length=dec.min_length,
                length_penalty=dec.length_penalty,
                no_repeat_ngram_size=dec.no_repeat_ngram_size,
                early_stopping=True,
            )
            for i, text in zip(idx, tok.batch_decode(out, skip_special_tokens=True), strict=True):
                preds[i] = text.strip()
    return preds, rouge(preds, test.summaries)


@dataclass(frozen=True)
class SummarizationResult(Record):
    """Mean ROUGE of both models on the same examples and the paired-bootstrap p-value per metric."""

    preset: str
    decoding: dict[str, Any]
    rows: str
    how: str
    replaced_rows: int
    train_steps: int
    eval_examples: int
    original: dict[str, float]
    definitionemb: dict[str, float]
    bootstrap_p: dict[str, float]
    examples: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def compare_summarization(
    run: RunDir, cfg: SummarizationConfig, db: LexiconRef = None, progress: bool = False
) -> SummarizationResult:
    """Decode (after optional fine-tuning) with the run's original and swapped model under one seed."""
    from definitionemb.index.policy import as_policy, policy_matrix

    t0 = time.perf_counter()
    model_dir = run.model_path()
    if not model_dir or not Path(str(model_dir)).exists():
        raise EvaluationError(f"{run.manifest_path}: model {model_dir!r} is not a local folder")
    train, test = load_splits(cfg.data_dir)
    train = None if train is None else train.head(cfg.max_train)
    test = test.head(cfg.max_eval)
    policy = as_policy(cfg.rows, cfg.how, run)
    matrix, mask = policy_matrix(run, db, policy)
    _, r_orig = summarize_once(model_dir, train, test, cfg, None, progress)
    preds, r_new = summarize_once(model_dir, train, test, cfg, (matrix, mask), progress)

    def mean(r: dict[str, np.ndarray]) -> dict[str, float]:
        return {k: float(v.mean()) if v.size else math.nan for k, v in r.items()}

    return SummarizationResult(
        preset=cfg.preset,
        decoding=cfg.settings().to_dict(),
        rows=cfg.rows,
        how=policy.how,
        replaced_rows=int(mask.sum()),
        train_steps=cfg.train_steps,
        eval_examples=len(test),
        original=mean(r_orig),
        definitionemb=mean(r_new),
        bootstrap_p={k: paired_bootstrap(r_orig[k], r_new[k], seed=cfg.seed) for k in r_orig},
        examples=[
            {"summary": test.summaries[i], "definitionemb": preds[i]} for i in range(min(3, len(test)))
        ],
        seconds=time.perf_counter() - t0,
    )
