"""GPU throughput of the DefinitionEMB regressor on RoBERTa-base (random weights, real tokenizer).

Builds RoBERTa-base from its config (no weights are needed for throughput), wraps it in the embedder's
`Regressor`, and times, with the embedder's own collator, batching, loss and optimizer settings:

  * training tokens/s (real, non-pad tokens) — bf16 autocast, 16k-token budget batches, fused AdamW,
    with and without `torch.compile`;
  * generation definitions/s — `embedder.inference.predict` (length-sorted budget batches, inference_mode).

Targets (issue): >= 450k training tokens/s, >= 25k definitions/s on one H100.

    python scripts/gpu_bench_embedder.py --tokenizer ../shared/data/tokenizers/roberta-bart

Prints one JSON object per measurement on stdout. Prompts are synthetic token sequences whose lengths
follow the measured distribution of the Open Dictionary prompts (mean ≈ 21 tokens, capped at 64).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from definitionemb.embedder.batching import MicroBatchStream  # noqa: E402
from definitionemb.embedder.config import PromptConfig  # noqa: E402
from definitionemb.embedder.examples import Collator, Examples  # noqa: E402
from definitionemb.embedder.inference import autocast, predict  # noqa: E402
from definitionemb.embedder.models import Regressor  # noqa: E402
from definitionemb.embedder.trainer import regression_loss  # noqa: E402


def synthetic_examples(n: int, vocab: int, max_len: int, seed: int = 0) -> Examples:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(19), 0.45, n)), 8, max_len).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = rng.integers(4, vocab - 1, int(offsets[-1])).astype(np.int32)
    ids[offsets[:-1]] = 0  # <s>
    ids[offsets[1:] - 1] = 2  # </s>
    targets = ids[offsets[:-1] + 1].astype(np.int64)
    return Examples(
        ids=ids,
        offsets=offsets,
        target_pos=np.ones(n, dtype=np.int32),
        span_start=np.ones(n, dtype=np.int32),
        target_id=targets,
        token_id=targets,
        sense_id=np.arange(n, dtype=np.int64),
        rank=np.ones(n, dtype=np.int32),
    )


def build(tokenizer_dir: str, device: torch.device, tiny: bool = False) -> tuple[Regressor, object]:
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    tok = RobertaTokenizerFast.from_pretrained(tokenizer_dir)
    size: dict[str, Any] = (
        {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
        if tiny
        else {
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        }
    )
    kwargs: dict[str, Any] = {
        "vocab_size": len(tok),
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "attn_implementation": "sdpa",
        **size,
    }
    cfg = RobertaConfig(**kwargs)
    torch.manual_seed(0)
    model = Regressor(RobertaModel(cfg, add_pooling_layer=False), "roberta").to(device)
    return model, tok


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(
    model: Regressor,
    tok: object,
    ex: Examples,
    device: torch.device,
    batch_tokens: int,
    steps: int,
    warmup: int,
    compiled: bool,
) -> dict[str, float]:
    original = model.input_embeddings().weight.detach().clone().float()
    # Padding widths to a multiple of 8 bounds the shapes torch.compile specialises on; eager needs no rounding.
    coll = Collator(tok, "roberta", original.shape[0], pad_multiple=8 if compiled else 1)
    opt = torch.optim.AdamW(
        model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01, fused=device.type == "cuda"
    )
    fwd = torch.compile(model, dynamic=True) if compiled else model
    stream = MicroBatchStream(ex.lengths, batch_tokens, 0)
    model.train()
    real = padded = 0
    t0 = time.perf_counter()
    t_compile = 0.0
    for k in range(warmup + steps):
        if k == warmup:
            _sync(device)
            t_compile = time.perf_counter() - t0
            t0 = time.perf_counter()
            real = padded = 0
        _, idx = stream.get(k)
        batch = coll(ex, idx, mode="train", seed=k)
        real += int(batch["attention_mask"].sum())
        padded += batch["input_ids"].numel()
        batch = {key: v.to(device, non_blocking=True) for key, v in batch.items()}
        target = original[torch.from_numpy(ex.target_id[idx]).to(device)]
        opt.zero_grad(set_to_none=True)
        with autocast(device):
            loss, _ = regression_loss(fwd(**batch), target, "mse")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
    _sync(device)
    dt = time.perf_counter() - t0
    return {
        "tokens_per_s": real / dt,
        "padded_tokens_per_s": padded / dt,
        "padding": 1 - real / padded,
        "steps": steps,
        "seconds": dt,
        "warmup_seconds": t_compile,
        "final_loss": float(loss.detach()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_tok = Path(__file__).resolve().parents[1] / "tests" / "data" / "roberta-bart"
    ap.add_argument("--tokenizer", default=str(default_tok), help="folder with vocab.json + merges.txt")
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--gen-defs", type=int, default=200_000)
    ap.add_argument("--gen-batch-tokens", type=int, default=65536)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    ap.add_argument(
        "--dry-run", action="store_true", help="a tiny model for 2 steps on the CPU: checks the script"
    )
    args = ap.parse_args()
    if args.dry_run:
        args.steps, args.warmup, args.gen_defs, args.no_compile = 2, 1, 500, True
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print(json.dumps({"bench": "gpu_embedder", "skipped": "no CUDA device"}))
        return
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        device = torch.device("cuda")
    model, tok = build(args.tokenizer, device, tiny=args.dry_run)
    max_len = PromptConfig().max_length
    ex = synthetic_examples(400_000, model.input_embeddings().num_embeddings, max_len)
    info = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (dry run)",
        "torch": torch.__version__,
        "batch_tokens": args.batch_tokens,
        "attn": str(model.backbone.config._attn_implementation),
    }
    variants = [False] if args.no_compile else [False, True]
    base = None
    for compiled in variants:
        r = bench_train(model, tok, ex, device, args.batch_tokens, args.steps, args.warmup, compiled)
        base = base or r["tokens_per_s"]
        print(
            json.dumps(
                {
                    "bench": "gpu_train_tokens_per_s" + ("_compiled" if compiled else ""),
                    "value": r["tokens_per_s"],
                    "unit": "tokens/s",
                    "baseline": base,
                    "ratio": r["tokens_per_s"] / base,
                    "target": 450_000,
                    **r,
                    **info,
                }
            ),
            flush=True,
        )
    # Generation: the embedder's predict() over many definitions, target masked, float32 out.
    coll = Collator(tok, "roberta", model.input_embeddings().num_embeddings)
    gen = ex.subset(np.arange(min(args.gen_defs, len(ex))))
    warm = ex.subset(np.arange(2000))
    predict(model, coll, warm, device, args.gen_batch_tokens)
    _sync(device)
    t0 = time.perf_counter()
    out = predict(model, coll, gen, device, args.gen_batch_tokens)
    _sync(device)
    dt = time.perf_counter() - t0
    assert np.isfinite(out).all()
    print(
        json.dumps(
            {
                "bench": "gpu_generate_definitions_per_s",
                "value": len(gen) / dt,
                "unit": "definitions/s",
                "baseline": None,
                "ratio": None,
                "target": 25_000,
                "definitions": len(gen),
                "seconds": dt,
                **info,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
