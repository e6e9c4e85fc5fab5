"""Downstream fine-tuning: the original and the swapped PLM trained under the same seeds on a GLUE task.

A plain torch loop (AdamW, linear warm-up and decay) over `AutoModelForSequenceClassification`; eval
batches are sorted by length so padding costs little. Results per seed, mean ± std, and a paired t-test.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.progress import bar_disable
from definitionemb.core.records import Record
from definitionemb.embedder.binding import LexiconRef
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.evaluation.glue_data import Examples, GlueTask, read_glue_tsv, task_files
from definitionemb.evaluation.training import (
    optimizer_and_schedule,
    optimizer_step,
    pick_device,
    seed_everything,
)

__all__ = [
    "FinetuneConfig",
    "SeedResult",
    "GlueResult",
    "metrics",
    "matthews",
    "paired_test",
    "finetune_once",
    "finetune_scores",
    "compare_glue",
]


@dataclass(frozen=True)
class FinetuneConfig(Record):
    """Fine-tuning settings. Defaults follow the paper's GLUE recipe scaled for a CPU (fewer epochs)."""

    task: str = "cola"
    data_dir: str = ""
    rows: str = "covered"  # the row policy of the swapped model (index.policy): which rows …
    how: str | None = None  # … and how they change (None: the run's default policy, index.policy)
    seeds: tuple[int, ...] = (1, 2, 3)
    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    max_len: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_train: int | None = None
    max_eval: int | None = None
    device: str = "auto"


def matthews(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews correlation coefficient (multi-class form; 0 when a side is constant)."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    k = int(max(t.max(initial=0), p.max(initial=0))) + 1
    cm = np.zeros((k, k), dtype=np.float64)
    np.add.at(cm, (t, p), 1.0)
    n = cm.sum()
    correct = np.trace(cm)
    tk, pk = cm.sum(axis=1), cm.sum(axis=0)
    num = correct * n - tk @ pk
    den = math.sqrt(n * n - pk @ pk) * math.sqrt(n * n - tk @ tk)
    return float(num / den) if den > 0 else 0.0


def metrics(spec: GlueTask, labels: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """The task's metrics from gold labels and model outputs (logits, or scores for regression)."""
    if spec.num_labels == 1:
        from scipy.stats import pearsonr, spearmanr

        pred = outputs.reshape(-1)
        if np.std(pred) == 0 or np.std(labels) == 0:
            return {"pearson": 0.0, "spearman": 0.0}
        return {"pearson": float(pearsonr(labels, pred)[0]), "spearman": float(spearmanr(labels, pred)[0])}
    pred = outputs.argmax(axis=1)
    out = {"accuracy": float((pred == labels).mean()), "mcc": matthews(labels, pred)}
    if spec.num_labels == 2:
        tp = float(((pred == 1) & (labels == 1)).sum())
        fp = float(((pred == 1) & (labels == 0)).sum())
        fn = float(((pred == 0) & (labels == 1)).sum())
        out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0
    return out


def _encode(tokenizer: Any, ex: Examples, max_len: int) -> list[dict[str, list[int]]]:
    enc = tokenizer(
        list(ex.text_a),
        list(ex.text_b) if ex.text_b is not None else None,
        truncation=True,
        max_length=max_len,
    )
    return [{k: enc[k][i] for k in enc} for i in range(len(ex))]


def _batches(
    tokenizer: Any, feats: list[dict[str, list[int]]], order: Sequence[int], size: int
) -> list[tuple[list[int], dict[str, Any]]]:
    out = []
    for s in range(0, len(order), size):
        idx = list(order[s : s + size])
        out.append((idx, tokenizer.pad([feats[i] for i in idx], return_tensors="pt")))
    return out


def finetune_once(
    model_dir: str | os.PathLike[str],
    spec: GlueTask,
    train: Examples,
    dev: Examples,
    cfg: FinetuneConfig,
    seed: int,
    swap: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Fine-tune one model (with `swap` = (matrix, mask) rows replaced first) and score it on `dev`."""
    return finetune_scores(model_dir, spec, train, {"dev": dev}, cfg, seed, swap, progress)["dev"]


def finetune_scores(
    model_dir: str | os.PathLike[str],
    spec: GlueTask,
    train: Examples,
    evals: Mapping[str, Examples],
    cfg: FinetuneConfig,
    seed: int,
    swap: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Fine-tune one model as `finetune_once` does and score the same fine-tuned model on every set of
    `evals` (`{name: examples}` → `{name: metrics}`). One training serves a development split carved
    from the training file, for choosing a knob, and the reported dev set, never read by that choice."""
    if not evals:
        raise EvaluationError("give at least one set to score the fine-tuned model on")
    empty = [name for name, examples in evals.items() if not len(examples)]
    if empty:
        raise EvaluationError(
            f"no examples to score in {', '.join(empty)}: e.g. a carved split past the file's end"
        )
    import torch
    from definitionemb.evaluation.swap import replace_rows
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = pick_device(cfg.device)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    seed_everything(seed)  # the classifier head's initial weights come from this seed
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=spec.num_labels)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot load {model_dir} for sequence classification: {exc}") from exc
    if swap is not None:
        replace_rows(model, swap[0], swap[1])
    model.to(device)
    train_feats = _encode(tokenizer, train, cfg.max_len)
    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = max(1, int(math.ceil(cfg.epochs * steps_per_epoch)))
    opt, sched = optimizer_and_schedule(model, cfg.lr, total, cfg.warmup_ratio, cfg.weight_decay)
    dtype = torch.float32 if spec.num_labels == 1 else torch.long
    model.train()
    step = 0
    bar = tqdm(total=total, desc=f"fine-tune seed {seed}", disable=bar_disable(progress), leave=False)
    while step < total:
        for idx, batch in _batches(
            tokenizer, train_feats, rng.permutation(len(train)).tolist(), cfg.batch_size
        ):
            if step >= total:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = torch.as_tensor(train.labels[idx], dtype=dtype, device=device)
            loss = model(**batch, labels=labels).loss
            optimizer_step(model, loss, opt, sched)
            step += 1
            bar.update(1)
    bar.close()
    model.eval()
    scores: dict[str, dict[str, float]] = {}
    for name, examples in evals.items():
        feats = _encode(tokenizer, examples, cfg.max_len)
        order = sorted(range(len(examples)), key=lambda i: len(feats[i]["input_ids"]))
        outputs = np.zeros((len(examples), spec.num_labels), dtype=np.float64)
        with torch.no_grad():
            for idx, batch in _batches(tokenizer, feats, order, cfg.eval_batch_size):
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
                outputs[idx] = logits.float().cpu().numpy()
        scores[name] = metrics(spec, examples.labels, outputs)
    return scores


def paired_test(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Paired t-test of b against a over seeds: mean difference, t, p and the `level` confidence interval
    of the mean difference (`ci_low`, `ci_high`; NaN with < 2 seeds or no spread).

    At a few seeds the interval says more than p: it shows how large a gain or loss the data still allow.
    """
    from scipy.stats import t as student_t
    from scipy.stats import ttest_rel

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = y - x
    nan = float("nan")
    out = {
        "mean_diff": float(diff.mean()) if diff.size else nan,
        "t": nan,
        "p": nan,
        "ci_low": nan,
        "ci_high": nan,
    }
    if diff.size >= 2 and np.std(diff) > 0:
        res = ttest_rel(y, x)
        out["t"], out["p"] = float(res.statistic), float(res.pvalue)
        half = float(student_t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size))
        out["ci_low"], out["ci_high"] = out["mean_diff"] - half, out["mean_diff"] + half
    return out


@dataclass(frozen=True)
class SeedResult:
    seed: int
    original: dict[str, float]
    definitionemb: dict[str, float]


@dataclass(frozen=True)
class GlueResult(Record):
    """Per-seed metrics of both models, their mean ± std on the headline metric, and the paired test."""

    task: str
    metric: str
    rows: str
    how: str
    replaced_rows: int
    train_examples: int
    eval_examples: int
    seeds: list[SeedResult]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    # The rare-token subset of the evaluation set: examples with ≥1 token whose row the policy changed and
    # that lies in the rare bucket (evaluation.rows.rare_examples); each seed's models scored on it too.
    rare_examples: int = 0
    rare_seeds: list[SeedResult] = field(default_factory=list)
    rare_summary: dict[str, dict[str, float]] = field(default_factory=dict)
    rare_test: dict[str, float] = field(default_factory=dict)


def _mean_std(v: list[float]) -> dict[str, float]:
    a = np.asarray(v, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def compare_glue(
    run: RunDir,
    cfg: FinetuneConfig,
    db: LexiconRef = None,
    progress: bool = False,
) -> GlueResult:
    """Fine-tune the run's original model and its swapped twin under each seed of `cfg.seeds`."""
    from definitionemb.index.policy import as_policy, policy_matrix

    t0 = time.perf_counter()
    if not cfg.seeds:
        raise EvaluationError("give at least one seed")
    model_dir = run.model_path()
    if not model_dir or not Path(str(model_dir)).exists():
        raise EvaluationError(f"{run.manifest_path}: model {model_dir!r} is not a local folder")
    spec, train_f, dev_f = task_files(cfg.task, cfg.data_dir)
    regression = spec.num_labels == 1
    train = read_glue_tsv(train_f, regression).head(cfg.max_train)
    dev = read_glue_tsv(dev_f, regression).head(cfg.max_eval)
    policy = as_policy(cfg.rows, cfg.how, run)
    matrix, mask = policy_matrix(run, db, policy)
    rare = _rare_subset(run, db, str(model_dir), dev, mask)
    evals = {"dev": dev, **({"rare": rare} if len(rare) else {})}
    seeds, rare_seeds = [], []
    for s in cfg.seeds:
        orig = finetune_scores(model_dir, spec, train, evals, cfg, s, None, progress)
        new = finetune_scores(model_dir, spec, train, evals, cfg, s, (matrix, mask), progress)
        seeds.append(SeedResult(s, orig["dev"], new["dev"]))
        if "rare" in evals:
            rare_seeds.append(SeedResult(s, orig["rare"], new["rare"]))
    head = spec.metric
    a = [r.original[head] for r in seeds]
    b = [r.definitionemb[head] for r in seeds]
    ra = [r.original[head] for r in rare_seeds]
    rb = [r.definitionemb[head] for r in rare_seeds]
    return GlueResult(
        task=spec.name,
        metric=head,
        rows=cfg.rows,
        how=policy.how,
        replaced_rows=int(mask.sum()),
        train_examples=len(train),
        eval_examples=len(dev),
        seeds=seeds,
        summary={"original": _mean_std(a), "definitionemb": _mean_std(b)},
        test=paired_test(a, b),
        seconds=time.perf_counter() - t0,
        rare_examples=len(rare),
        rare_seeds=rare_seeds,
        rare_summary={"original": _mean_std(ra), "definitionemb": _mean_std(rb)} if rare_seeds else {},
        rare_test=paired_test(ra, rb) if rare_seeds else {},
    )


def _rare_subset(run: RunDir, db: LexiconRef, model_dir: str, dev: Examples, mask: np.ndarray) -> Examples:
    """The examples of `dev` holding a token the policy changed (`mask`) in the run's rare bucket."""
    from definitionemb.evaluation.rows import changed_rare_rows, rare_examples, run_buckets
    from transformers import AutoTokenizer

    labels, _ = run_buckets(run, db)
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(list(dev.text_a), add_special_tokens=False)["input_ids"]
    if dev.text_b is not None:
        ids = [
            a + b
            for a, b in zip(ids, tok(list(dev.text_b), add_special_tokens=False)["input_ids"], strict=True)
        ]
    keep = np.flatnonzero(rare_examples(ids, changed_rare_rows(mask, labels)))
    return Examples(
        tuple(dev.text_a[i] for i in keep),
        None if dev.text_b is None else tuple(dev.text_b[i] for i in keep),
        dev.labels[keep],
    )
