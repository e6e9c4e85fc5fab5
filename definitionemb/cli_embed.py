"""`defemb embed …`: train the DefinitionEMB regressor and generate definition vectors."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import click

from definitionemb._cli import Group, db_option, emit, json_option, run_option

__all__ = ["embed"]


@click.group(
    cls=Group,
    epilog="Example:\n\n  defemb embed train --db lex.duckdb --model path/to/minilm --run runs/demo\n\n"
    "  defemb embed generate --db lex.duckdb --run runs/demo --senses",
)
def embed() -> None:
    """Train the DefinitionEMB regressor and generate definition vectors."""


@embed.command(
    epilog="Example:\n\n  defemb embed train --db lex.duckdb --model path/to/all-MiniLM-L6-v2 --run runs/demo "
    "--steps 300 --json\n\n"
    "  torchrun --nproc-per-node 4 -m definitionemb embed train --preset paper --db lex.duckdb "
    "--model path/to/roberta-base --run-dir runs/paper"
)
@db_option(required=True, help="Lexicon DuckDB file.")
@click.option("--model", required=True, help="Model folder (save_pretrained layout) or hub name.")
@run_option(help="Run folder to write.")
@click.option(
    "--preset",
    type=click.Choice(["quick", "standard", "gpu", "paper"]),
    default="quick",
    show_default=True,
    help="quick: CPU demo recipe (a few minutes); standard: the CPU recipe (about 20 minutes on 2 "
    "cores); gpu: the longer schedule for one GPU; paper: the authors' recipe.",
)
@click.option("--steps", type=int, default=None, help="Optimizer updates (preset default if omitted).")
@click.option("--batch-tokens", type=int, default=None, help="Padded tokens per micro-batch.")
@click.option("--grad-accum", type=int, default=None, help="Micro-batches per update.")
@click.option("--lr", type=float, default=None, help="Learning rate of the encoder.")
@click.option("--head-lr", type=float, default=None, help="Learning rate of the head (default: preset).")
@click.option("--schedule", type=click.Choice(["inverse_sqrt", "cosine", "constant"]), default=None)
@click.option("--warmup", type=int, default=None, help="Warm-up updates.")
@click.option("--loss", type=click.Choice(["mse", "mse+cos"]), default=None, help="mse = the reference loss.")
@click.option("--head-init", type=click.Choice(["random", "ridge"]), default=None)
@click.option(
    "--pooling",
    type=click.Choice(["target", "mean", "target+mean"]),
    default=None,
    help="What the head reads: the target position, the mean over the prompt, or both (default: preset).",
)
@click.option(
    "--target-table",
    type=click.Choice(["encoder", "decoder"]),
    default=None,
    help="Which embedding table the regressor predicts (T5Gemma keeps one per stack; default encoder).",
)
@click.option("--senses-per-token", type=int, default=None, help="Train on each token's top-k senses.")
@click.option(
    "--topk", type=int, default=None, help="Senses averaged per token at generation (default: preset)."
)
@click.option(
    "--neighbours",
    type=click.Choice(["auto", "off"]),
    default=None,
    help="The neighbour step generation takes for this run (default: preset; see `embed generate`).",
)
@click.option("--split-seed", type=int, default=None, help="Seed of the held-out split alone (default 0).")
@click.option("--trainable", type=click.Choice(["auto", "all", "no-embeddings", "head"]), default=None)
@click.option(
    "--dropout", type=float, default=None, help="Override the model's dropout (0 for exact DDP checks)."
)
@click.option("--no-pos", is_flag=True, help="Leave the part of speech out of the prompt.")
@click.option("--template", default=None, help='Prompt template, e.g. "{target} ( {pos} ) : {gloss}".')
@click.option("--max-length", type=int, default=None, help="Prompt length cap in tokens.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the regressor.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run's latest checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def train(
    db: str,
    model: str,
    run_dir: str,
    preset: str,
    steps: int | None,
    batch_tokens: int | None,
    grad_accum: int | None,
    lr: float | None,
    head_lr: float | None,
    schedule: str | None,
    warmup: int | None,
    loss: str | None,
    head_init: str | None,
    pooling: str | None,
    target_table: str | None,
    senses_per_token: int | None,
    topk: int | None,
    neighbours: str | None,
    split_seed: int | None,
    trainable: str | None,
    dropout: float | None,
    no_pos: bool,
    template: str | None,
    max_length: int | None,
    device: str,
    compile_: bool,
    seed: int,
    resume: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train the regressor on the lexicon's definitions for MODEL's tokenizer.

    If the tokenizer is not aligned in the lexicon yet, it is aligned first (said on stderr). Under
    torchrun the same command trains with DDP.
    """
    from definitionemb import embedder

    prompt_kw: dict[str, Any] = {}
    if no_pos:
        prompt_kw["use_pos"] = False
    if template:
        prompt_kw["template"] = template
    if max_length:
        prompt_kw["max_length"] = max_length
    cfg = embedder.preset(
        preset,
        db=db,
        model=model,
        run=run_dir,
        steps=steps,
        batch_tokens=batch_tokens,
        grad_accum=grad_accum,
        lr=lr,
        head_lr=head_lr,
        schedule=schedule,
        warmup=warmup,
        loss=loss,
        head_init=head_init,
        pooling=pooling,
        target_table=target_table,
        senses_per_token=senses_per_token,
        topk=topk,
        neighbours=neighbours,
        split_seed=split_seed,
        trainable=trainable,
        dropout=dropout,
        device=device,
        compile=compile_ or None,
        seed=seed,
        resume=resume or None,
        progress=not quiet,
    )
    if prompt_kw:  # on top of the preset's prompt (its max_length included)
        cfg = dataclasses.replace(cfg, prompt=dataclasses.replace(cfg.prompt, **prompt_kw))
    res = embedder.train(cfg)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    out = {
        "run": res.run,
        "steps": res.steps,
        "tokens_per_s": res.tokens_per_s,
        "train_loss": res.train_loss,
        "heldout": res.heldout,
        "seconds": res.seconds,
    }
    h = res.heldout
    emit(
        out,
        as_json,
        f"trained {res.steps} steps in {res.seconds:.0f}s ({res.tokens_per_s:,.0f} tokens/s); "
        f"held-out cosine {h.get('cosine', float('nan')):.3f} vs baseline "
        f"{h.get('baseline_cosine', float('nan')):.3f} on {h.get('tokens', 0)} tokens → {res.run}",
    )


@embed.command(epilog="Example:\n\n  defemb embed generate --db lex.duckdb --run runs/demo --senses --json")
@db_option(required=True, exists=True, help="Lexicon the run was trained on.")
@run_option(exists=True, help="Trained run folder.")
@click.option("--senses", is_flag=True, help="Also write one vector per lexicon sense (for the index).")
@click.option(
    "--topk",
    type=int,
    help="Average a token's top-k definitions (default: the run's own, set by its preset; 1 if none).",
)
@click.option(
    "--neighbours",
    type=click.Choice(["auto", "off"]),
    default=None,
    help="auto: move each definition's row toward the rows of the other tokens defined most like it, "
    "as far as half the run's held-out tokens say it helps (the other half is reported); off: the "
    "regressor's rows alone. Default: the run's own, set by its preset (TrainConfig.neighbours).",
)
@click.option("--batch-tokens", type=int, default=16384, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def generate(
    db: str,
    run_dir: str,
    senses: bool,
    topk: int | None,
    neighbours: str | None,
    batch_tokens: int,
    device: str,
    quiet: bool,
    as_json: bool,
) -> None:
    """Write token_vectors.npy / token_covered.npy (and sense vectors) into a trained run."""
    from definitionemb import embedder

    res = embedder.generate(
        embedder.GenerateConfig(
            db=db,
            run=run_dir,
            senses=senses,
            topk=topk,
            neighbours=neighbours,
            batch_tokens=batch_tokens,
            device=device,
            progress=not quiet,
        )
    )
    emit(
        res.to_dict(),
        as_json,
        f"generated {res.tokens} token rows of {res.vocab_size}"
        + (f" and {res.senses} sense vectors" if senses else "")
        + f" ({res.definitions_per_s:,.0f} definitions/s) → {res.run}"
        + _neighbours_line(res.neighbours),
    )


def _neighbours_line(nb: dict[str, Any] | None) -> str:
    if nb is None:
        return ""
    s = nb["scores"]
    what = f"k {nb['k']}, τ {nb['tau']}, β {nb['beta']}" if nb["beta"] > 0 else "off (β 0 won)"
    return (
        f"\nneighbour step: {what}, chosen on {nb['dev_tokens']} held-out tokens; on the other "
        f"{nb['test_tokens']}: cosine {s['plain_test']:.3f} → {s['neighbours_test']:.3f}"
    )


if __name__ == "__main__":  # pragma: no cover
    embed(sys.argv[1:])
