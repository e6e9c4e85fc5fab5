"""Training the DefinitionEMB regressor: one entry point for one CPU, one GPU, or many under torchrun.

Exactness of resume: the micro-batch stream is a function of (seed, global micro-batch index), the target
corruption of each micro-batch is drawn from a generator seeded by that index, and the global torch RNG
(dropout) is reseeded from (seed, step, rank) at every step. So RNG state is a function of the step, and
a checkpoint needs only model, optimizer, scheduler and step to continue bit-for-bit on CPU.

Distributed: under `torchrun` (WORLD_SIZE > 1) each rank takes every world-th micro-batch of the same
stream; gradients are averaged by DDP. A single process with `grad_accum = a × world` sees exactly the
same micro-batches per step, which is what the DDP test compares against.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from definitionemb.core.fileio import STAMP
from definitionemb.core.progress import bar_disable
from definitionemb.embedder.batching import MicroBatchStream, sorted_batches
from definitionemb.embedder.checkpoint import (
    latest_checkpoint,
    load_trainer_state,
    save_checkpoint,
    save_tokenizer,
)
from definitionemb.embedder.config import TrainConfig, TrainResult
from definitionemb.embedder.errors import EmbedderError, RunMismatch
from definitionemb.embedder.examples import Collator, Examples, build_examples, heldout_tokens, word_pieces
from definitionemb.embedder.inference import autocast, check_finite, mean_by_token, predict, resolve_device
from definitionemb.embedder.lexicon_io import (
    fetch_definitions,
    fetch_words,
    lexicon_fingerprint,
    resolve_tokenizer,
    tokenizer_sha256,
)
from definitionemb.embedder.models import (
    POOLINGS,
    Regressor,
    decoder_start_id,
    load_pretrained,
    model_sha256,
    set_trainable,
)
from definitionemb.embedder.rundir import RunDir

__all__ = ["train", "regression_loss", "make_scheduler", "versions", "ridge_fit"]


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def versions() -> dict[str, str]:
    import platform

    import transformers

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }
    try:
        from importlib.metadata import version

        out["definitionemb"] = version("definitionemb")
    except Exception:
        pass
    return out


def regression_loss(
    pred: torch.Tensor, target: torch.Tensor, kind: str = "mse", cos_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, reference MSE). The reference MSE: summed squared error / d × 100, mean over targets.

    `mse+cos` adds `cos_weight × 100 × mean(1 − cos)`: the ×100 puts it on the scale of the reference
    term; it rewards the direction of a row, which is what neighbours and the downstream PLM read.
    """
    pred = pred.float()
    d = pred.shape[-1]
    mse = ((pred - target) ** 2).sum(-1).div(d).mul(100.0).mean()
    if kind == "mse":
        return mse, mse
    cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-8)
    return mse + cos_weight * 100.0 * (1.0 - cos).mean(), mse


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then inverse-sqrt (fairseq's), cosine to `min_lr_ratio`, or constant."""
    warm = max(1, cfg.warmup)
    total = cfg.steps

    def factor(step: int) -> float:
        s = step + 1
        if s <= warm:
            return s / warm
        if cfg.schedule == "inverse_sqrt":
            return math.sqrt(warm / s)
        if cfg.schedule == "cosine":
            prog = min(1.0, (s - warm) / max(1, total - warm))
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _param_groups(model: Regressor, cfg: TrainConfig) -> list[dict[str, Any]]:
    head = [p for p in model.head.parameters() if p.requires_grad]
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.backbone.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": head, "lr": cfg.head_lr or cfg.lr, "weight_decay": 0.0, "name": "head"}]
    if decay:
        groups.append({"params": decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay, "name": "decay"})
    if no_decay:
        groups.append({"params": no_decay, "lr": cfg.lr, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def _set_dropout(model: torch.nn.Module, p: float) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p
    cfg = getattr(model, "config", None)
    for attr in (
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "dropout",
        "attention_dropout",
        "activation_dropout",
    ):
        if cfg is not None and hasattr(cfg, attr):
            setattr(cfg, attr, p)


@dataclass(frozen=True)
class _Data:
    train: Examples
    heldout: Examples  # the held-out tokens' examples of rank <= heldout_senses, by token then rank
    heldout_first: np.ndarray  # index into `heldout` of each held-out token's first-ranked example
    heldout_gloss_ids: list[list[int]]  # the gloss of each first-ranked example, tokenized
    heldout_tokens: np.ndarray  # the held-out token ids (sorted)
    tokenizer_id: int
    n_tokens: int


def _prepare_data(cfg: TrainConfig, tok: Any, family: str, tid: int) -> _Data:
    defs = fetch_definitions(cfg.db, tid, max(cfg.senses_per_token, cfg.heldout_senses))
    if len(defs) == 0:
        raise EmbedderError(
            f"{cfg.db} has no definitions aligned to this tokenizer (tokenizer_id {tid}). "
            "Check `defemb lexicon coverage` and that the lexicon has senses."
        )
    ex = build_examples(tok, cfg.prompt, defs)
    _example_rows(defs, ex)
    held_tokens = heldout_tokens(ex.token_id, cfg.heldout_frac, cfg.heldout_max, cfg.split_seed)
    is_held = np.isin(ex.token_id, held_tokens)
    train_ex = ex.subset(np.flatnonzero(~is_held & (ex.rank <= cfg.senses_per_token)))
    held_rows = np.flatnonzero(is_held & (ex.rank <= cfg.heldout_senses))
    held_ex = ex.subset(held_rows)
    # rows are ordered by token, rank: a token's first row is its first-ranked definition
    _, first = np.unique(held_ex.token_id, return_index=True)
    glosses = [defs.gloss[held_rows[i]] for i in first]
    gloss_ids = tok(glosses, add_special_tokens=False)["input_ids"] if glosses else []
    if cfg.multipiece_words:
        words = fetch_words(cfg.db)
        pieces = word_pieces(tok, words.word, family, 2, cfg.max_pieces)
        keep = [i for i, p in enumerate(pieces) if p]
        if keep:
            from definitionemb.embedder.lexicon_io import Definitions

            sub = Definitions(
                words.token_id[keep],
                words.rank[keep],
                words.sense_id[keep],
                [words.word[i] for i in keep],
                [words.pos[i] for i in keep],
                [words.gloss[i] for i in keep],
            )
            mp = build_examples(tok, cfg.prompt, sub, [pieces[i] for i in keep])
            mp = mp.subset(np.flatnonzero(~np.isin(mp.target_id, held_tokens)))
            train_ex = Examples.concat([train_ex, mp])
    if len(train_ex) == 0:
        raise EmbedderError("no training examples left after holding out tokens; lower heldout_frac")
    return _Data(
        train_ex,
        held_ex,
        first.astype(np.int64),
        gloss_ids,
        held_tokens,
        tid,
        int(len(np.unique(ex.token_id))),
    )


def _example_rows(defs: Any, ex: Examples) -> np.ndarray:
    """Definition row of each example (build_examples emits exactly one example per row by default)."""
    if len(ex) != len(defs):
        raise EmbedderError("internal: examples and definition rows disagree (prompt prefix too long?)")
    return np.arange(len(ex))


def _baseline_cosine(original: torch.Tensor, data: _Data, special: set[int]) -> float:
    """Mean cosine of the mean of a definition's own token rows to the defined token's row."""
    if not data.heldout_gloss_ids:
        return float("nan")
    cos = []
    for i, ids in zip(data.heldout_first, data.heldout_gloss_ids, strict=True):
        ids = [t for t in ids if t not in special and t < original.shape[0]]
        if not ids:
            continue
        m = original[ids].mean(0)
        cos.append(float(F.cosine_similarity(m, original[int(data.heldout.target_id[i])], dim=0)))
    return float(np.mean(cos)) if cos else float("nan")


def _scores(pred: np.ndarray, data: _Data, original: torch.Tensor, senses: int) -> dict[str, float]:
    """Held-out scores of predictions for `data.heldout`: first sense, and means over the top 2..k.

    `cosine` (and `loss`, the reference MSE) read each token's first-ranked definition only, as the
    authors generate; `cosine_top{k}` reads the mean of its first k senses' predictions.
    """
    held = data.heldout
    first = torch.from_numpy(pred[data.heldout_first])
    tgt = original[torch.from_numpy(held.target_id[data.heldout_first])].cpu().float()
    _, mse = regression_loss(first, tgt, "mse")
    out = {
        "tokens": len(data.heldout_first),
        "loss": float(mse),
        "cosine": float(F.cosine_similarity(first, tgt, dim=-1).mean()),
    }
    for k in range(2, senses + 1):
        uniq, rows = mean_by_token(held.token_id, held.rank, pred, k)
        t = original[torch.from_numpy(uniq)].cpu().float()
        out[f"cosine_top{k}"] = float(F.cosine_similarity(torch.from_numpy(rows), t, dim=-1).mean())
    return out


def _evaluate(
    model: Regressor,
    collator: Collator,
    data: _Data,
    original: torch.Tensor,
    device: torch.device,
    batch_tokens: int,
    senses: int,
) -> dict[str, float]:
    if len(data.heldout) == 0:
        return {"tokens": 0, "loss": float("nan"), "cosine": float("nan")}
    pred = predict(model, collator, data.heldout, device, batch_tokens)
    return _scores(pred, data, original, senses)


@torch.no_grad()
def _frozen_features(
    model: Regressor, collator: Collator, ex: Examples, device: torch.device, batch_tokens: int
) -> tuple[np.ndarray, np.ndarray]:
    """(target-position, mean-pooled) states of the backbone as it is now, n×d each, target masked."""
    n = len(ex)
    target = np.empty((n, model.dim), dtype=np.float32)
    mean = np.empty((n, model.dim), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device):
            for idx in sorted_batches(ex.lengths, batch_tokens):
                batch = {k: v.to(device) for k, v in collator(ex, idx, mode="generate").items()}
                t, m = model.pooled(**batch)
                target[idx] = t.float().cpu().numpy()
                mean[idx] = m.float().cpu().numpy()
    finally:
        model.train(was_training)
    return target, mean


def _pool(target: np.ndarray, mean: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "target":
        return target
    if pooling == "mean":
        return mean
    return np.concatenate([target, mean], axis=1)


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Closed-form ridge `x @ w ≈ y` (float64), λ = alpha × the mean eigenvalue of xᵀx: (w, λ)."""
    xt = torch.from_numpy(np.asarray(x)).double()
    yt = torch.from_numpy(np.asarray(y)).double()
    gram = xt.T @ xt
    lam = alpha * float(torch.trace(gram)) / xt.shape[1]
    w = torch.linalg.solve(gram + lam * torch.eye(xt.shape[1], dtype=torch.float64), xt.T @ yt)
    return w.numpy(), lam


@torch.no_grad()
def _init_and_probes(
    model: Regressor,
    collator: Collator,
    data: _Data,
    original: torch.Tensor,
    device: torch.device,
    cfg: TrainConfig,
) -> dict[str, Any]:
    """Ridge from the frozen backbone's features to the original rows: the head's start and the probes.

    The head starts where a linear probe of its own pooling ends, instead of at a random map that the
    first hundreds of steps spend learning the average row. The same features, pooled every way the
    head can read them, give the frozen-feature probes the fine-tuned regressor has to beat, scored
    on the same held-out split.
    """
    rng = np.random.default_rng([cfg.seed, 3])
    ex = data.train
    n = min(len(ex), cfg.ridge_examples)
    idx = np.sort(rng.choice(len(ex), n, replace=False))
    sub = ex.subset(idx)
    t0 = time.perf_counter()
    target, mean = _frozen_features(model, collator, sub, device, cfg.batch_tokens * 2)
    y = original[torch.from_numpy(sub.target_id)].double().cpu().numpy()
    info: dict[str, Any] = {"ridge_examples": n}
    if cfg.head_init == "ridge":
        w, lam = ridge_fit(_pool(target, mean, cfg.pooling), y, cfg.ridge_alpha)
        model.head.weight.copy_(torch.from_numpy(w.T).to(model.head.weight.dtype))
        info["ridge_lambda"] = lam
    if cfg.probes and len(data.heldout):
        h_target, h_mean = _frozen_features(model, collator, data.heldout, device, cfg.batch_tokens * 2)
        probes: dict[str, dict[str, float]] = {}
        for pooling in POOLINGS:
            w, _ = ridge_fit(_pool(target, mean, pooling), y, cfg.ridge_alpha)
            pred = (_pool(h_target, h_mean, pooling).astype(np.float64) @ w).astype(np.float32)
            probes[f"ridge_{pooling}"] = _scores(pred, data, original, cfg.heldout_senses)
        info["probes"] = probes
    info["ridge_seconds"] = time.perf_counter() - t0
    return info


def _check_resume(run: RunDir, cfg: TrainConfig, model_hash: str | None, tok_sha: str, fp: str) -> None:
    m = run.manifest()
    for key, have in (
        ("model_sha256", model_hash),
        ("tokenizer_sha256", tok_sha),
        ("lexicon_fingerprint", fp),
    ):
        if m.get(key) and have and m[key] != have:
            raise RunMismatch(
                f"cannot resume {run.path}: its {key} is {m[key][:16]}, now {have[:16]}. "
                "Resume with the same model and lexicon, or start a new --run."
            )


@dataclass
class _Session:
    """What `_open_or_resume` hands to the loop: the model on its device, the data, where to start."""

    run: RunDir
    model: Regressor
    tok: Any
    family: str
    data: _Data
    collator: Collator
    original: torch.Tensor  # V×d on the device: the rows the regressor learns to predict
    baseline: float
    ckpt: Path | None
    start_step: int
    history: list[dict[str, float]]
    init_info: dict[str, Any]
    trainer_state: dict[str, Any] | None
    t_start: float
    t_data: float


def _refuse_foreign_folder(path: Path) -> None:
    """A run is written into a new folder or an earlier run's; never among someone else's files."""
    if path.exists() and not path.is_dir():
        raise EmbedderError(f"--run {path} is a file; name a new folder for the run")
    if (
        path.is_dir()
        and not (path / "manifest.json").is_file()
        and any(f.name != STAMP for f in path.iterdir())
    ):
        raise EmbedderError(
            f"--run {path} is a folder that holds other files and no run (no manifest.json); name a new "
            "folder for the run, so nothing there is overwritten"
        )


def _open_or_resume(cfg: TrainConfig, dist: _Dist, device: torch.device) -> _Session:
    """Load the model and data, then either resume the run's checkpoint or initialise the head.

    The order of the random draws here (seed, model load, head init) is what makes a fresh run and a
    resumed one agree bit-for-bit; keep it.
    """
    t_start = time.perf_counter()
    run = RunDir(Path(cfg.run))
    _refuse_foreign_folder(run.path)
    torch.manual_seed(cfg.seed)

    model_bb, tok, family = load_pretrained(cfg.model, cfg.family)
    if cfg.dropout is not None:
        _set_dropout(model_bb, cfg.dropout)
    tok_sha = tokenizer_sha256(cfg.model, tok)
    if dist.main:
        tid = resolve_tokenizer(cfg.db, cfg.model, tok_sha, cfg.align_if_missing, cfg.progress)
    if dist.world > 1:
        torch.distributed.barrier()
    if not dist.main:
        tid = resolve_tokenizer(cfg.db, cfg.model, tok_sha, False)
    fp = lexicon_fingerprint(cfg.db)
    mhash = model_sha256(cfg.model)
    data = _prepare_data(cfg, tok, family, tid)
    t_data = time.perf_counter()

    model = Regressor(model_bb, family, cfg.pooling, cfg.target_table)
    original = model.target_embeddings().weight.detach().clone().float()
    vocab_size, dim = original.shape
    collator = Collator(
        tok,
        family,
        vocab_size,
        cfg.mask_prob,
        cfg.random_prob,
        decoder_start_id=decoder_start_id(model_bb.config),
        pad_multiple=8 if cfg.compile else 1,
    )  # bounds the shapes compile specialises on
    special = set(getattr(tok, "all_special_ids", []) or [])

    ckpt = latest_checkpoint(run.path) if run.regressor_dir.exists() else None
    if ckpt is not None and not cfg.resume:
        raise EmbedderError(
            f"{run.path} already holds a trained regressor ({ckpt.name}). Pass --resume to continue it, "
            "or choose a new --run folder."
        )
    start_step = 0
    history: list[dict[str, float]] = []
    init_info: dict[str, Any] = {}
    model.to(device)
    original = original.to(device)
    trainer_state: dict[str, Any] | None = None
    if ckpt is not None:
        _check_resume(run, cfg, mhash, tok_sha, fp)
        from safetensors.torch import load_model

        load_model(model, str(ckpt / "model.safetensors"), device=str(device))
        trainer_state = load_trainer_state(ckpt)
        start_step = int(trainer_state["step"])
        history = list(trainer_state.get("history", []))
        init_info = dict(trainer_state.get("init", {}))
    elif cfg.head_init == "ridge" or cfg.probes:
        init_info = _init_and_probes(model, collator, data, original, device, cfg)

    baseline = _baseline_cosine(original.cpu(), data, special)
    if dist.main:
        run.path.mkdir(parents=True, exist_ok=True)
        if ckpt is None:
            run.save_array("original_vectors.npy", original.cpu().numpy())
            run.save_array("heldout_tokens.npy", data.heldout_tokens)
        save_tokenizer(run.path, tok)
        # Local paths are recorded relative to the run when they lie in its work folder (the lexicon
        # always), so a copied work folder uses its own; a model elsewhere is absolute, a hub name as given.
        model_ref = run.portable(cfg.model) if Path(cfg.model).expanduser().is_dir() else cfg.model
        run.update_manifest(
            run_id=run.path.name,
            model=model_ref,
            model_family=family,
            model_sha256=mhash,
            tokenizer_sha256=tok_sha,
            tokenizer_id=int(tid),
            lexicon_db=run.portable(cfg.db, always=True),
            lexicon_fingerprint=fp,
            vocab_size=int(vocab_size),
            dim=int(dim),
            seed=cfg.seed,
            config={**cfg.to_dict(), "db": run.portable(cfg.db, always=True), "run": ".", "model": model_ref},
            versions=versions(),
            data={
                "train_examples": len(data.train),
                "heldout_tokens": len(data.heldout_first),
                "heldout_examples": len(data.heldout),
                "aligned_tokens": data.n_tokens,
            },
        )
    return _Session(
        run,
        model,
        tok,
        family,
        data,
        collator,
        original,
        baseline,
        ckpt,
        start_step,
        history,
        init_info,
        trainer_state,
        t_start,
        t_data,
    )


def _optimizer(
    s: _Session, cfg: TrainConfig, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, dict[str, Any]]:
    """AdamW over the trainable parameters and its schedule, restored from the checkpoint on resume."""
    policy = set_trainable(s.model, cfg.trainable)
    opt = torch.optim.AdamW(
        _param_groups(s.model, cfg),
        lr=cfg.lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        fused=device.type == "cuda",
    )
    sched = make_scheduler(opt, cfg)
    if s.trainer_state is not None:
        opt.load_state_dict(s.trainer_state["optimizer"])
        sched.load_state_dict(s.trainer_state["scheduler"])
    return opt, sched, policy


def _one_step(
    s: _Session,
    fwd: Any,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR,
    stream: MicroBatchStream,
    cfg: TrainConfig,
    dist: _Dist,
    device: torch.device,
    step: int,
) -> tuple[torch.Tensor, int]:
    """One optimizer update over `grad_accum × world` micro-batches: (the update's loss on the device, tokens)."""
    micro_per_step = cfg.grad_accum * dist.world
    torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + dist.rank)
    opt.zero_grad(set_to_none=True)
    step_loss = torch.zeros((), device=device)
    tokens = 0
    for a in range(cfg.grad_accum):
        k = step * micro_per_step + a * dist.world + dist.rank
        _, idx = stream.get(k)
        batch = s.collator(s.data.train, idx, mode="train", seed=cfg.seed * 7_919 + k)
        tokens += int(batch["attention_mask"].sum())
        batch = {key: v.to(device, non_blocking=True) for key, v in batch.items()}
        target = s.original[torch.from_numpy(s.data.train.target_id[idx]).to(device)]
        sync = a == cfg.grad_accum - 1 or dist.world == 1
        ctx = (
            fwd.no_sync()
            if (dist.world > 1 and not sync and hasattr(fwd, "no_sync"))
            else contextlib.nullcontext()
        )
        with ctx, autocast(device):
            pred = fwd(**batch)
            loss, _ = regression_loss(pred, target, cfg.loss, cfg.cos_weight)
        (loss / cfg.grad_accum).backward()
        step_loss += loss.detach().float() / cfg.grad_accum
    if dist.world > 1:  # report the loss of the whole update, not of this rank's share
        torch.distributed.all_reduce(step_loss)
        step_loss = step_loss / dist.world
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.clip)
    opt.step()
    sched.step()
    return step_loss, tokens


def _finish(
    s: _Session,
    cfg: TrainConfig,
    dist: _Dist,
    device: torch.device,
    policy: dict[str, Any],
    step: int,
    heldout: dict[str, float],
    recent: list[float],
    tps: float,
) -> TrainResult:
    """Report where training ended (held-out numbers, loss, timings) in the manifest and the result."""
    seconds = time.perf_counter() - s.t_start
    if dist.main and not heldout and len(s.data.heldout):  # resumed a finished run: report where it stands
        heldout = _evaluate(
            s.model, s.collator, s.data, s.original, device, cfg.batch_tokens * 2, cfg.heldout_senses
        )
    heldout = {**heldout, "baseline_cosine": s.baseline}
    if recent:
        train_loss = float(np.mean(recent[-max(1, min(len(recent), 50)) :]))
    else:
        done = [h["train_loss"] for h in s.history if math.isfinite(h.get("train_loss", float("nan")))]
        train_loss = done[-1] if done else float("nan")
    if dist.main:
        check_finite(s.model.head.weight.detach().float().cpu().numpy(), "head rows")
        s.run.update_manifest(
            trainable=policy,
            init=s.init_info,
            timings={
                **s.run.manifest().get("timings", {}),
                "data_s": s.t_data - s.t_start,
                "train_s": seconds,
            },
            train={
                "steps": step,
                "tokens_per_s": tps,
                "train_loss": train_loss,
                "heldout": heldout,
                "history": s.history,
            },
        )
    if dist.world > 1:
        torch.distributed.barrier()
    return TrainResult(
        run=str(s.run.path),
        steps=step,
        tokens_per_s=tps,
        train_loss=train_loss,
        heldout=heldout,
        seconds=seconds,
        history=tuple(s.history),
    )


def train(cfg: TrainConfig) -> TrainResult:
    """Train the regressor of `cfg.run` and write the run folder (manifest, original rows, checkpoints)."""
    dist = _dist_from_env()
    device = resolve_device(cfg.device, dist.local_rank if dist.world > 1 else None)
    if dist.world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    s = _open_or_resume(cfg, dist, device)
    opt, sched, policy = _optimizer(s, cfg, device)
    history = s.history
    if dist.main and s.ckpt is None:  # where training starts from: the init's held-out quality
        h0 = _evaluate(
            s.model, s.collator, s.data, s.original, device, cfg.batch_tokens * 2, cfg.heldout_senses
        )
        history.append({"step": 0, "train_loss": float("nan"), **h0})
        if cfg.progress:
            print(
                f"step 0 ({cfg.head_init} head): heldout loss {h0['loss']:.4f} cos {h0['cosine']:.4f} "
                f"(baseline {s.baseline:.4f})",
                file=sys.stderr,
            )

    fwd: Any = s.model
    if dist.world > 1:
        fwd = torch.nn.parallel.DistributedDataParallel(
            s.model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=False,
        )
    if cfg.compile:
        fwd = torch.compile(fwd, dynamic=True)

    stream = MicroBatchStream(s.data.train.lengths, cfg.batch_tokens, cfg.seed)
    end_step = cfg.steps if cfg.stop_after is None else min(cfg.steps, s.start_step + cfg.stop_after)
    from tqdm import tqdm

    bar = tqdm(
        total=cfg.steps,
        initial=s.start_step,
        desc="train",
        unit="step",
        file=sys.stderr,
        disable=bar_disable(bool(cfg.progress and dist.main)),
        dynamic_ncols=True,
    )
    recent: list[float] = []
    pending: list[torch.Tensor] = []  # step losses still on the device: read back in groups, not per step
    tokens_seen = 0
    t_loop = time.perf_counter()
    heldout: dict[str, float] = {}
    s.model.train()
    step = s.start_step

    def drain() -> None:
        if not pending:
            return
        vals = torch.stack(pending).double().cpu().tolist()
        pending.clear()
        bad = [v for v in vals if not math.isfinite(v)]
        if bad:
            raise EmbedderError(
                f"training loss became {bad[0]} near step {step}; lower --lr (now {cfg.lr}) or use the default loss"
            )
        recent.extend(vals)

    try:
        while step < end_step:
            step_loss, tokens = _one_step(s, fwd, opt, sched, stream, cfg, dist, device, step)
            tokens_seen += tokens
            step += 1
            pending.append(step_loss)
            do_eval = dist.main and (step % cfg.eval_every == 0 or step == end_step)
            do_ckpt = dist.main and (step % cfg.ckpt_every == 0 or step == end_step)
            bar.update(1)
            if step % 10 == 0 or do_eval or do_ckpt or step == end_step or device.type == "cpu":
                drain()
                tps = tokens_seen * dist.world / max(time.perf_counter() - t_loop, 1e-9)
                bar.set_postfix(loss=f"{recent[-1]:.3f}", tok_s=f"{tps:,.0f}")
            if do_eval:
                heldout = _evaluate(
                    s.model, s.collator, s.data, s.original, device, cfg.batch_tokens * 2, cfg.heldout_senses
                )
                history.append(
                    {"step": step, "train_loss": float(np.mean(recent[-cfg.eval_every :])), **heldout}
                )
                if cfg.progress:
                    bar.write(
                        f"step {step}: train {history[-1]['train_loss']:.4f} heldout loss {heldout['loss']:.4f} "
                        f"cos {heldout['cosine']:.4f} (baseline {s.baseline:.4f})",
                        file=sys.stderr,
                    )
            if do_ckpt:
                state = {
                    "step": step,
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "history": history,
                    "init": s.init_info,
                    "config": cfg.to_dict(),
                }
                save_checkpoint(s.run.path, s.model, step, state)
        drain()
    finally:
        bar.close()
    if dist.world > 1:
        torch.distributed.barrier()
    tps = tokens_seen * dist.world / max(time.perf_counter() - t_loop, 1e-9)
    return _finish(s, cfg, dist, device, policy, step, heldout, recent, tps)
