"""Generating definition vectors with a trained run: token rows, sense vectors, free-text definitions."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from definitionemb.core.fileio import npy_to_fill
from definitionemb.embedder.binding import bound
from definitionemb.embedder.checkpoint import load_regressor
from definitionemb.embedder.config import GenerateConfig, GenerateResult, PromptConfig, TrainConfig
from definitionemb.embedder.errors import EmbedderError, RunMismatch
from definitionemb.embedder.examples import Collator, build_examples
from definitionemb.embedder.inference import check_finite, mean_by_token, predict, resolve_device
from definitionemb.embedder.lexicon_io import (
    Definitions,
    fetch_definitions,
    fetch_senses,
    lexicon_fingerprint,
    tokenizer_sha256,
)
from definitionemb.embedder.models import decoder_start_id
from definitionemb.embedder.rundir import RunDir
from definitionemb.embedder.smoothing import SmoothingChoice, choose, nearest_other, smoothed_rows

__all__ = ["DefinitionEncoder", "generate", "encode_definitions", "open_run_for"]

_LOG = logging.getLogger("definitionemb.embedder")


def open_run_for(run_path: str | os.PathLike[str], db: str | os.PathLike[str] | None = None) -> RunDir:
    """Open a run and refuse it when the lexicon or the saved tokenizer is not the one it was made with."""
    run = RunDir.open(run_path)
    m = run.manifest()
    if db is not None:
        run.check_lexicon(lexicon_fingerprint(db))
        want_db = run.lexicon_path()
        if want_db and want_db.resolve() != Path(db).resolve():
            _LOG.info(
                "embedder: note: run %s was trained on %s; using %s (same fingerprint)", run.path, want_db, db
            )
    tok_dir = run.tokenizer_dir
    if tok_dir.is_dir() and m.get("tokenizer_sha256"):
        from definitionemb.embedder.models import load_tokenizer

        run.check_tokenizer(tokenizer_sha256(tok_dir, load_tokenizer(tok_dir)))
    return run


def _prompt_of(run: RunDir) -> PromptConfig:
    cfg = run.manifest().get("config") or {}
    try:
        return TrainConfig.from_dict(cfg).prompt if cfg else PromptConfig()
    except (TypeError, EmbedderError):
        return (
            PromptConfig(**cfg.get("prompt", {})) if isinstance(cfg.get("prompt"), dict) else PromptConfig()
        )


def generate(cfg: GenerateConfig) -> GenerateResult:
    """Write `token_vectors.npy`, `token_covered.npy` (and with `senses`, sense vectors) into the run."""
    t0 = time.perf_counter()
    run = open_run_for(cfg.run, cfg.db)
    m = run.manifest()
    device = resolve_device(cfg.device)
    model, tok, _meta = load_regressor(run.path, device)
    original = np.asarray(run.original_vectors())
    vocab_size, dim = original.shape
    if (m.get("vocab_size"), m.get("dim")) != (vocab_size, dim):
        raise RunMismatch(
            f"{run.path}/original_vectors.npy is {original.shape}, manifest says "
            f"{(m.get('vocab_size'), m.get('dim'))}"
        )
    prompt = _prompt_of(run)
    collator = Collator(
        tok,
        model.family,
        vocab_size,
        decoder_start_id=decoder_start_id(model.backbone.config),
    )
    own = m.get("config") or {}
    topk = cfg.topk if cfg.topk is not None else int(own.get("topk") or 1)
    # Runs trained before the field existed had no smoothing step ("off"); until 0.1 it was "neighbours".
    smoothing = (
        cfg.smoothing
        if cfg.smoothing is not None
        else str(own.get("smoothing") or own.get("neighbours") or "off")
    )
    with bound(run, cfg.db) as lex:  # the lexicon's id for the run's tokenizer, by its vocabulary hash
        tid = lex.tokenizer_id
    defs = fetch_definitions(cfg.db, tid, topk)
    ex = build_examples(tok, prompt, defs)
    if len(ex) != len(defs):
        raise EmbedderError(
            "the run's prompt template leaves no room for definitions; check its config.prompt"
        )
    n_defs = len(ex)
    t1 = time.perf_counter()
    preds = predict(model, collator, ex, device, cfg.batch_tokens, cfg.progress, "token rows")
    check_finite(preds, "generated definition rows", ex.token_id)
    if ex.token_id.size and (ex.token_id.min() < 0 or ex.token_id.max() >= vocab_size):
        raise RunMismatch(f"the lexicon aligns token ids outside this run's vocabulary (0..{vocab_size - 1})")
    split_seed = int(own.get("split_seed") or 0)
    choice = _smoothing(smoothing, run, preds, ex.token_id, ex.rank, original, topk, split_seed)
    if choice is not None and choice.active:
        nb = nearest_other(preds, ex.token_id, preds, ex.token_id, choice.k)
        preds = (1 - choice.beta) * preds + choice.beta * smoothed_rows(
            nb, original[ex.token_id], choice.k, choice.tau
        )
    uniq, rows = mean_by_token(ex.token_id, ex.rank, preds, topk)
    covered = np.zeros(vocab_size, dtype=bool)
    covered[uniq] = True
    with npy_to_fill(run.array_path("token_vectors.npy"), (vocab_size, dim), np.float32) as tv:
        tv[:] = original
        tv[uniq] = rows
    run.save_array("token_covered.npy", covered)
    n_senses = 0
    if cfg.senses:
        senses = fetch_senses(cfg.db)
        sex = build_examples(tok, prompt, senses)
        if len(sex) != len(senses):
            raise EmbedderError("the run's prompt template leaves no room for sense glosses")
        n_senses = len(sex)
        with npy_to_fill(run.array_path("sense_vectors.npy"), (n_senses, dim), np.float32) as sv:
            predict(model, collator, sex, device, cfg.batch_tokens, cfg.progress, "sense vectors", out=sv)
            check_finite(np.asarray(sv), "sense vectors", senses.sense_id)
        run.save_array("sense_ids.npy", senses.sense_id.astype(np.int64))
    t2 = time.perf_counter()
    total_defs = n_defs + n_senses
    dps = total_defs / max(t2 - t1, 1e-9)
    run.update_manifest(
        timings={**m.get("timings", {}), "generate_s": t2 - t0},
        generate={
            **cfg.to_dict(),
            "topk": topk,
            "smoothing_mode": smoothing,
            "covered_tokens": int(covered.sum()),
            "senses": n_senses,
            "definitions_per_s": dps,
            "smoothing": choice.to_dict() if choice is not None else None,
        },
    )
    return GenerateResult(
        run=str(run.path),
        tokens=int(covered.sum()),
        vocab_size=int(vocab_size),
        senses=n_senses,
        definitions_per_s=dps,
        seconds=t2 - t0,
        smoothing=choice.to_dict() if choice is not None else None,
    )


def _smoothing(
    mode: str,
    run: RunDir,
    preds: np.ndarray,
    token_id: np.ndarray,
    rank: np.ndarray,
    original: np.ndarray,
    topk: int,
    split_seed: int,
) -> SmoothingChoice | None:
    """The run's smoothing step, chosen on half its held-out tokens; None when off or nothing to choose on."""
    if mode == "off":
        return None
    held = run.heldout_tokens()
    n_held = len(np.intersect1d(held, token_id))
    if n_held < 2 or n_held >= len(np.unique(token_id)):
        _LOG.info(
            "embedder: note: %d held-out tokens with definitions in %s; "
            "no smoothing step (it is chosen on held-out tokens)",
            n_held,
            run.path,
        )
        return None
    return choose(
        preds,
        token_id,
        rank,
        original,
        held,
        topk,
        seed=split_seed,
    )


class DefinitionEncoder:
    """A run's regressor, loaded once: free-text definitions → vectors (n×d float32), with the generation
    prompt. The target is a lone mask token in front of the definition, as at generation time, so a
    definition lands where the token it defines would. Keep one to encode many batches (the reverse
    dictionary does); `encode_definitions` is the one-call form."""

    def __init__(self, run: str | os.PathLike[str] | RunDir, device: str = "auto") -> None:
        self.run = run if isinstance(run, RunDir) else RunDir.open(run)
        self.device = resolve_device(device)
        self.model, self.tokenizer, _ = load_regressor(self.run.path, self.device)
        self.collator = Collator(
            self.tokenizer,
            self.model.family,
            self.model.target_embeddings().num_embeddings,
            decoder_start_id=decoder_start_id(self.model.backbone.config),
        )
        self.prompt = _prompt_of(self.run)

    def encode(
        self, texts: Sequence[str], pos: Sequence[str | None] | None = None, batch_size: int = 64
    ) -> np.ndarray:
        """Vectors of `texts` (with their parts of speech, when given), batches of `batch_size` prompts."""
        _check_request(texts, pos, batch_size)
        n = len(texts)
        defs = Definitions(
            token_id=np.full(n, -1, dtype=np.int64),
            rank=np.ones(n, dtype=np.int32),
            sense_id=np.arange(n, dtype=np.int64),
            word=[""] * n,
            pos=list(pos) if pos is not None else [None] * n,
            gloss=[str(t) for t in texts],
        )
        ex = build_examples(self.tokenizer, self.prompt, defs)
        if len(ex) != n:
            raise EmbedderError("the run's prompt template leaves no room for a definition")
        out = predict(self.model, self.collator, ex, self.device, batch_size * self.prompt.max_length)
        check_finite(out, "definition vectors")
        return out


def _check_request(texts: Sequence[str], pos: Sequence[str | None] | None, batch_size: int) -> None:
    if pos is not None and len(pos) != len(texts):
        raise EmbedderError(f"pos has {len(pos)} entries for {len(texts)} texts")
    if batch_size < 1:
        raise EmbedderError("batch_size must be >= 1")


def encode_definitions(
    run: str | os.PathLike[str] | RunDir,
    texts: Sequence[str],
    pos: Sequence[str | None] | None = None,
    batch_size: int = 64,
    device: str = "auto",
) -> np.ndarray:
    """Free-text definitions → vectors (n×d float32) through the run's regressor, in one call: loads a
    :class:`DefinitionEncoder` (keep one instead to encode many batches)."""
    _check_request(texts, pos, batch_size)
    return DefinitionEncoder(run, device).encode(texts, pos, batch_size)
