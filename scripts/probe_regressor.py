"""Frozen-feature ridge probes on a run's fixed held-out split: extract once, cache as .npy, fit many.

The features of the frozen backbone (target position and mean over the prompt, the target masked as at
generation) are computed once for every training example of rank <= --senses and every held-out example
of rank <= --heldout-senses, and cached under --out. Ridge variants (pooling × senses per token in
training × alpha) are then fitted on the cache in seconds and scored on the same split as
`embedder.train` uses (same TrainConfig fields: heldout_frac, heldout_max, split_seed), with the
definition-token mean beside them. One JSON object per variant on stdout.

    python scripts/probe_regressor.py --db LEXICON --model MINILM_DIR --out /tmp/probes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from definitionemb.embedder.config import TrainConfig
from definitionemb.embedder.examples import Collator
from definitionemb.embedder.lexicon_io import resolve_tokenizer, tokenizer_sha256
from definitionemb.embedder.models import POOLINGS, Regressor, load_pretrained
from definitionemb.embedder.trainer import (
    _baseline_cosine,
    _frozen_features,
    _pool,
    _prepare_data,
    _scores,
    ridge_fit,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True, type=Path, help="cache folder for the feature arrays")
    ap.add_argument("--senses", type=int, default=3, help="most senses per token in training")
    ap.add_argument("--heldout-senses", type=int, default=3)
    ap.add_argument("--alphas", default="0.001,0.01,0.1")
    ap.add_argument("--split-seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = TrainConfig(
        db=args.db,
        model=args.model,
        run=str(args.out),
        senses_per_token=args.senses,
        heldout_senses=args.heldout_senses,
        split_seed=args.split_seed,
        progress=False,
    )
    bb, tok, family = load_pretrained(cfg.model)
    tid = resolve_tokenizer(cfg.db, cfg.model, tokenizer_sha256(cfg.model, tok), False)
    data = _prepare_data(cfg, tok, family, tid)
    model = Regressor(bb, family)
    original = model.input_embeddings().weight.detach().clone().float()
    coll = Collator(tok, family, original.shape[0])
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    feats = {}
    for name, ex in (("train", data.train), ("heldout", data.heldout)):
        paths = [args.out / f"{name}_{k}.npy" for k in ("target", "mean")]
        if all(p.is_file() for p in paths):
            feats[name] = tuple(np.load(p) for p in paths)
            continue
        t, m = _frozen_features(model, coll, ex, torch.device("cpu"), 4096)
        for p, a in zip(paths, (t, m), strict=True):
            np.save(p, a)
        feats[name] = (t, m)
    print(
        f"features: {len(data.train)} train, {len(data.heldout)} held-out examples in "
        f"{time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    special = set(tok.all_special_ids)
    print(
        json.dumps(
            {
                "probe": "definition_mean",
                "heldout_tokens": len(data.heldout_first),
                "cosine": _baseline_cosine(original, data, special),
            }
        )
    )
    y_all = original[torch.from_numpy(data.train.target_id)].double().numpy()
    for senses in sorted({1, args.senses}):
        rows = np.flatnonzero(data.train.rank <= senses)
        for pooling in POOLINGS:
            x = _pool(feats["train"][0][rows], feats["train"][1][rows], pooling)
            xh = _pool(*feats["heldout"], pooling).astype(np.float64)
            for alpha in (float(a) for a in args.alphas.split(",")):
                w, _ = ridge_fit(x, y_all[rows], alpha)
                s = _scores((xh @ w).astype(np.float32), data, original, args.heldout_senses)
                print(
                    json.dumps(
                        {
                            "probe": f"ridge_{pooling}",
                            "senses": senses,
                            "examples": len(rows),
                            "alpha": alpha,
                            **s,
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
