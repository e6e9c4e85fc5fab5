"""CoLA fine-tunes scored twice: on a development split carved from the training file and on the reported dev.

The fine-tune trains on the first `--max-train` sentences of `in_domain_train.tsv` (the 4,000-sentence /
3-epoch setting of benchmarks/RESULTS.md); the rest of that file is the carved split, which a knob may be
chosen on; `in_domain_dev.tsv` is the reported set. Each SPEC is `orig` (the model's own rows) or
`HOW@N`: the run's covered rows under HOW, keeping the N most frequent tokens (lexicon freq_rank) original.

    python scripts/cola_carved_dev.py --run RUN --db LEXICON --data ../shared/data/eval/glue/CoLA \\
        --specs orig,mix:0.45@0,mix:0.45@100 --seeds 1,2,3 > cola.jsonl

One JSON line per (seed, spec); one thread per job, so two jobs can share a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from definitionemb.embedder.binding import bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.finetune import FinetuneConfig, finetune_scores
from definitionemb.evaluation.glue_data import read_glue_tsv, task_files
from definitionemb.index.policy import RowPolicy, policy_matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--data", required=True, help="the CoLA folder")
    ap.add_argument("--specs", default="orig,mix:0.45@0")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--max-train", type=int, default=4000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = FinetuneConfig(
        task="cola", data_dir=args.data, epochs=3, lr=1e-4, batch_size=32, max_len=64,
        max_train=args.max_train, device="cpu",
    )  # fmt: skip
    spec, train_f, dev_f = task_files(cfg.task, cfg.data_dir)
    full = read_glue_tsv(train_f)
    train, carved, dev = full.head(args.max_train), full.part(args.max_train), read_glue_tsv(dev_f)
    run = RunDir.open(args.run)
    model_dir = run.manifest()["model"]
    with bound(run, args.db) as lex:
        table = lex.token_table()
        vocab = lex.vocab_size
    rank = np.full(vocab, -1)
    rank[table["token_id"].to_numpy()] = table["freq_rank"].fill_null(-1).to_numpy()
    # The swaps depend on the spec only: build each once, not once per seed.
    swaps: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for sp in args.specs.split(","):
        swaps[sp] = None
        if sp != "orig":
            how, _, keep = sp.partition("@")
            matrix, mask = policy_matrix(run, args.db, RowPolicy("covered", how))
            swaps[sp] = (matrix, mask & ~((rank >= 0) & (rank < int(keep or 0))))
    evals = {"carved": carved, "dev": dev}
    for seed in (int(s) for s in args.seeds.split(",")):
        for sp, swap in swaps.items():
            t0 = time.perf_counter()
            m = finetune_scores(model_dir, spec, train, evals, cfg, seed, swap)
            row = {"spec": sp, "seed": seed, "carved_mcc": m["carved"]["mcc"], "dev_mcc": m["dev"]["mcc"]}
            print(json.dumps({**row, "seconds": round(time.perf_counter() - t0)}), flush=True)


if __name__ == "__main__":
    main()
