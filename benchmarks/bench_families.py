"""Model families, Wiktionary dumps and torch exact search (issue 26), against a baseline in the same run.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_families [families] [dump] [search]

* `family_train_tokens_per_s_<family>`: regressor training (forward, backward, AdamW over what the
  family trains by default) at base-size shapes with random weights on the CPU, 2 measured updates of
  ~512 padded tokens after one warm-up update; baseline the RoBERTa-base path measured the same way
  in the same run (`ratio_cpu_time`: the same ratio per CPU second, which a shared machine's load
  distorts less). `family_generate_definitions_per_s_<family>`: 48 definitions through the trained
  path's `predict`, baseline RoBERTa-base. Prompts are the real glosses of
  `tests/data/embedder/definitions.tsv` tokenised by a real tokenizer (RoBERTa's BPE, MiniLM's
  WordPiece, or the SentencePiece model the family tests train on those glosses for the T5 families,
  `tests/model_support.py`).
* `dump_pages_per_s` / `dump_senses_per_s`: `lexicon build --source wiktionary-dump:` on the 2.2 MB
  test dump (wiktextract + loading), baseline `wiktwords` alone on the same dump with the same worker
  count; needs `make dump-deps`.
* `torch_exact_qps_<precision>`: `index.torch_search.TorchFlatSearch` on the CPU (the code path GPUs
  take), baseline FAISS `IndexFlatIP.search` on the same 100k×768 unit rows and 256 queries.
  GPU figures need a GPU: none here, they are reported as unmeasured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_index import emit
from tests.model_support import DATA, MINILM_TOKENIZER, ROBERTA_TOKENIZER, definition_rows, t5_tokenizer

DUMP = DATA / "wiktionary" / "enwiktionary-test-pages-articles.xml.bz2"
BATCH_TOKENS = 512
STEPS = 2
GENERATE = 48


def _unmeasured(bench: str, unit: str) -> None:
    print(json.dumps({"bench": bench, "value": None, "unit": unit, "note": "unmeasured: no GPU lent"}))


# --- families ------------------------------------------------------------------------------------


def _models(tmp: Path) -> list[tuple[str, str, Any, Any]]:
    """(name, family, config, tokenizer) at base-size shapes."""
    import transformers as tf

    roberta_tok = tf.RobertaTokenizerFast.from_pretrained(str(ROBERTA_TOKENIZER))
    wordpiece = tf.AutoTokenizer.from_pretrained(str(MINILM_TOKENIZER))
    sp_tok = t5_tokenizer(tmp)
    base = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    t5 = dict(d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12, feed_forward_proj="gated-gelu")
    stack = dict(
        base,
        vocab_size=256000,
        num_key_value_heads=12,
        head_dim=64,
        max_position_embeddings=512,
        layer_types=["sliding_attention", "full_attention"] * 6,
    )
    t5_cfg = tf.T5Config(vocab_size=32128, decoder_start_token_id=0, **t5)
    t5_enc = tf.T5Config(vocab_size=32128, decoder_start_token_id=0, architectures=["T5EncoderModel"], **t5)
    return [
        (
            "roberta-base",
            "roberta",
            tf.RobertaConfig(vocab_size=50265, max_position_embeddings=514, **base),
            roberta_tok,
        ),
        ("t5-base-v1.1", "t5", t5_cfg, sp_tok),
        ("t5-base-v1.1-encoder", "t5-encoder", t5_enc, sp_tok),
        (
            "t5gemma-b-b",
            "t5gemma",
            tf.T5GemmaConfig(encoder=dict(stack), decoder=dict(stack), vocab_size=256000),
            _gemma_like(sp_tok),
        ),
        ("mpnet-base", "encoder", tf.MPNetConfig(vocab_size=30527, **base), wordpiece),
        ("deberta-v3-base", "encoder", tf.DebertaV2Config(vocab_size=128100, **base), wordpiece),
        (
            "modernbert-base",
            "encoder",
            tf.ModernBertConfig(
                vocab_size=50368,
                hidden_size=768,
                intermediate_size=1152,
                num_hidden_layers=22,
                num_attention_heads=12,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                cls_token_id=0,
                sep_token_id=2,
            ),
            roberta_tok,
        ),
    ]


def _gemma_like(sp_tok: Any) -> Any:
    """The SentencePiece tokenizer with T5Gemma's decoder start (`<bos>` as a mask-free lead)."""
    sp_tok.add_special_tokens({"bos_token": "<bos>", "mask_token": "<mask>"})
    return sp_tok


def _examples(tok: Any, vocab: int) -> Any:
    from definitionemb.embedder.config import PromptConfig
    from definitionemb.embedder.examples import build_examples
    from definitionemb.embedder.lexicon_io import Definitions

    rows = definition_rows()
    n = len(rows)
    special = set(tok.all_special_ids)
    ids = np.random.default_rng(0).integers(10, min(vocab, len(tok)), n)
    ids = np.array([i if i not in special else 10 for i in ids], dtype=np.int64)
    defs = Definitions(
        token_id=ids,
        rank=np.ones(n, dtype=np.int32),
        sense_id=np.arange(n, dtype=np.int64),
        word=[r[0] for r in rows],
        pos=[r[1] or None for r in rows],
        gloss=[r[2] for r in rows],
    )
    return build_examples(tok, PromptConfig(), defs)


def bench_families() -> None:
    from definitionemb.embedder.batching import bucketed_epoch
    from definitionemb.embedder.examples import Collator
    from definitionemb.embedder.inference import predict
    from definitionemb.embedder.models import Regressor, backbone_from_config, decoder_start_id, set_trainable
    from definitionemb.embedder.trainer import regression_loss

    torch.manual_seed(0)
    results: dict[str, tuple[float, float, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-families-") as tmp:
        for name, family, config, tok in _models(Path(tmp)):
            t0 = time.perf_counter()
            model = Regressor(backbone_from_config(config, family), family)
            t_init = time.perf_counter() - t0
            policy = set_trainable(model, "auto")
            original = model.target_embeddings().weight.detach().clone()
            ex = _examples(tok, original.shape[0])
            coll = Collator(tok, family, original.shape[0], decoder_start_id=decoder_start_id(config))
            batches = bucketed_epoch(ex.lengths, BATCH_TOKENS, seed=0, epoch=0)[: STEPS + 1]
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
            model.train()
            real = 0
            for k, idx in enumerate(batches):
                if k == 1:  # the first update warms the allocator and kernels
                    t0, c0, real = time.perf_counter(), time.process_time(), 0
                batch = coll(ex, idx, mode="train", seed=k)
                real += int(batch["attention_mask"].sum()) + int(
                    batch.get("decoder_attention_mask", torch.zeros(1)).sum()
                )
                loss, _ = regression_loss(
                    model(**batch), original[torch.from_numpy(ex.target_id[idx])], "mse"
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            tps = real / (time.perf_counter() - t0)
            # CPU seconds too: on a shared machine the wall clock also measures the neighbours' load.
            tpc = real / (time.process_time() - c0)
            model.eval()
            gen = ex.subset(np.arange(GENERATE))
            t0, c0 = time.perf_counter(), time.process_time()
            predict(model, coll, gen, torch.device("cpu"), 4096)
            dps = len(gen) / (time.perf_counter() - t0)
            dpc = len(gen) / (time.process_time() - c0)
            info = {
                "family": family,
                "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                "trainable_m": round(policy["trainable"] / 1e6, 1),
                "init_s": round(t_init, 1),
                "attn": getattr(model.backbone.config, "_attn_implementation", None),
            }
            results[name] = (tps, dps, {**info, "per_cpu_s": round(tpc, 2), "gen_per_cpu_s": round(dpc, 3)})
            del model, opt, original
            print(json.dumps({"progress": name, "tokens_per_s": round(tps, 1)}), file=sys.stderr, flush=True)
    base_tps, base_dps, base = results["roberta-base"]
    for name, (tps, dps, info) in results.items():
        extra = {
            **info,
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "baseline_model": "roberta-base",
        }
        emit(
            f"family_train_tokens_per_s_{name}",
            tps,
            "tokens/s",
            base_tps,
            steps=STEPS,
            batch_tokens=BATCH_TOKENS,
            ratio_cpu_time=round(info["per_cpu_s"] / base["per_cpu_s"], 3),
            **extra,
        )
        emit(
            f"family_generate_definitions_per_s_{name}",
            dps,
            "definitions/s",
            base_dps,
            definitions=GENERATE,
            ratio_cpu_time=round(info["gen_per_cpu_s"] / base["gen_per_cpu_s"], 3),
            **extra,
        )
    _unmeasured("family_train_tokens_per_s_gpu_t5_large_t5gemma", "tokens/s")


# --- wiktionary dumps ----------------------------------------------------------------------------


def bench_dump() -> None:
    from definitionemb.lexicon.sources.wiktionary_dump import (
        WiktionaryDumpSource,
        dump_workers,
        wiktextract_unavailable,
    )

    from definitionemb import lexicon

    why = wiktextract_unavailable()
    if why is not None:
        print(json.dumps({"bench": "dump", "skipped": f"{why}; run make dump-deps"}))
        return
    workers = dump_workers()
    with tempfile.TemporaryDirectory(prefix="bench-dump-") as tmp:
        work = Path(tmp)
        src = WiktionaryDumpSource(DUMP, "en")
        t0 = time.perf_counter()
        subprocess.run(
            src._command(work / "alone.jsonl"),
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        t_alone = time.perf_counter() - t0
        senses_alone = 0
        with open(work / "alone.jsonl", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("lang_code") == "en":
                    senses_alone += len(rec.get("senses") or [])
        seen: dict[str, Any] = {}
        read = WiktionaryDumpSource.read

        def spy(self: WiktionaryDumpSource, sink: Any, progress: Any) -> str:
            seen["src"] = self
            return read(self, sink, progress)

        WiktionaryDumpSource.read = spy  # type: ignore[method-assign]
        db = work / "lexicon.duckdb"
        t0 = time.perf_counter()
        rep = lexicon.build(str(db), [f"wiktionary-dump:{DUMP}"], progress=False).sources[0]
        t_tool = time.perf_counter() - t0
        WiktionaryDumpSource.read = read  # type: ignore[method-assign]
        pages = int(seen["src"].pages)
        senses = int(lexicon.query(str(db), "SELECT count(*) AS n FROM sense")["n"][0])
    info = {
        "dump": DUMP.name,
        "pages": pages,
        "workers": workers,
        "records": rep.records,
        "loaded": rep.loaded,
        "rejected": rep.rejected,
        "filtered": rep.filtered,
        "seconds": round(t_tool, 1),
        "wiktwords_seconds": round(t_alone, 1),
    }
    emit("dump_pages_per_s", pages / t_tool, "pages/s", pages / t_alone, **info)
    emit(
        "dump_senses_per_s",
        senses / t_tool,
        "senses/s",
        senses_alone / t_alone,
        senses=senses,
        senses_wiktwords=senses_alone,
        **info,
    )


# --- torch exact search --------------------------------------------------------------------------


def bench_search(n: int = 100_000, nq: int = 256, d: int = 768, k: int = 10) -> None:
    import faiss
    from definitionemb.index.torch_search import TorchFlatSearch

    rng = np.random.default_rng(0)
    xb = rng.standard_normal((n, d), dtype=np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    q = rng.standard_normal((nq, d), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(d)
    index.add(xb)
    index.search(q[:8], k)
    t0 = time.perf_counter()
    _, want = index.search(q, k)
    qps_faiss = nq / (time.perf_counter() - t0)
    # The library's own faiss-cpu path (BLAS thresholds tuned, blocked product on the index's storage).
    from definitionemb.index.faiss_core import search_faiss

    t0 = time.perf_counter()
    search_faiss(index, np.arange(n, dtype=np.int64), q, k)
    qps_library = nq / (time.perf_counter() - t0)
    for precision in ("float32", "bfloat16"):
        exact = TorchFlatSearch(xb, device="cpu", precision=precision)
        exact.search(q[:8], k)
        t0 = time.perf_counter()
        _, got = exact.search(q, k)
        qps = nq / (time.perf_counter() - t0)
        emit(
            f"torch_exact_qps_{precision}_cpu",
            qps,
            "queries/s",
            qps_faiss,
            rows=n,
            dim=d,
            queries=nq,
            k=k,
            same_ids=float((got == want).mean()),
            baseline_name="faiss IndexFlatIP.search (CPU, default settings)",
            library_faiss_cpu_qps=round(qps_library, 1),
        )
    _unmeasured("torch_exact_qps_gpu", "queries/s")


def main(argv: list[str]) -> None:
    parts = set(argv) or {"families", "dump", "search"}
    if "search" in parts:
        bench_search()
    if "families" in parts:
        bench_families()
    if "dump" in parts:
        bench_dump()


if __name__ == "__main__":
    main(sys.argv[1:])
