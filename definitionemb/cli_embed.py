"""`defemb embed …`: train the DefinitionEMB regressor and generate definition vectors."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import click

from definitionemb._cli import (
    choice_option,
    config_options,
    db_option,
    emit,
    flag_option,
    json_option,
    run_option,
    stage_group,
)
from definitionemb.embedder.config import TrainConfig

# The TrainConfig fields `embed train` takes as options; each is spelled once, in embedder.config.
TRAIN_OPTIONS = (
    "steps",
    "batch_tokens",
    "grad_accum",
    "lr",
    "head_lr",
    "schedule",
    "warmup",
    "loss",
    "head_init",
    "pooling",
    "target_table",
    "senses_per_token",
    "topk",
    "smoothing",
    "split_seed",
    "trainable",
    "dropout",
)

__all__ = ["embed"]

_DEVICE = choice_option("--device", choices=["auto", "cpu", "cuda"], default="auto")


embed = stage_group(
    "embed",
    "Train the DefinitionEMB regressor and generate definition vectors.",
    "defemb embed train --db lex.duckdb --model path/to/minilm --run runs/demo",
    "defemb embed generate --db lex.duckdb --run runs/demo --senses",
)


@embed.command(
    epilog="Example:\n\n  defemb embed train --db lex.duckdb --model path/to/all-MiniLM-L6-v2 --run runs/demo "
    "--steps 300 --json\n\n"
    "  torchrun --nproc-per-node 4 -m definitionemb embed train --preset paper --db lex.duckdb "
    "--model path/to/roberta-base --run-dir runs/paper"
)
@db_option(required=True, help="Lexicon DuckDB file.")
@click.option("--model", required=True, help="Model folder (save_pretrained layout) or hub name.")
@run_option(help="Run folder to write.")
@choice_option(
    "--preset",
    choices=["quick", "standard", "gpu", "paper"],
    default="quick",
    help="quick: CPU demo recipe (a few minutes); standard: the CPU recipe (about 20 minutes on 2 "
    "cores); gpu: the longer schedule for one GPU; paper: the authors' recipe.",
)
@config_options(TrainConfig, TRAIN_OPTIONS)
@flag_option("--no-pos", help="Leave the part of speech out of the prompt.")
@click.option("--template", default=None, help='Prompt template, e.g. "{target} ( {pos} ) : {gloss}".')
@click.option("--max-length", type=int, default=None, help="Prompt length cap in tokens.")
@_DEVICE
@flag_option("--compile", "compile_", help="torch.compile the regressor.")
@click.option("--seed", type=int, default=0, show_default=True)
@flag_option("--resume", help="Continue the run's latest checkpoint.")
@flag_option("--quiet", help="No progress bar.")
@json_option
def train(
    db: str,
    model: str,
    run_dir: str,
    preset: str,
    no_pos: bool,
    template: str | None,
    max_length: int | None,
    device: str,
    compile_: bool,
    seed: int,
    resume: bool,
    quiet: bool,
    as_json: bool,
    **fields: Any,
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
        device=device,
        compile=compile_ or None,
        seed=seed,
        resume=resume or None,
        progress=not quiet,
        **fields,
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
@flag_option("--senses", help="Also write one vector per lexicon sense (for the index).")
@click.option(
    "--topk",
    type=int,
    help="Average a token's top-k definitions (default: the run's own, set by its preset; 1 if none).",
)
@click.option(
    "--smoothing",
    "--neighbours",  # its name until 0.1, kept as an alias for a release
    "smoothing",
    type=click.Choice(["auto", "off"]),
    default=None,
    help="auto: move each definition's row toward the rows of the other tokens defined most like it, "
    "as far as half the run's held-out tokens say it helps (the other half is reported); off: the "
    "regressor's rows alone. Default: the run's own, set by its preset (TrainConfig.smoothing).",
)
@click.option("--batch-tokens", type=int, default=16384, show_default=True)
@_DEVICE
@flag_option("--quiet", help="No progress bar.")
@json_option
def generate(run_dir: str, quiet: bool, as_json: bool, **settings: Any) -> None:
    """Write token_vectors.npy / token_covered.npy (and sense vectors) into a trained run."""
    from definitionemb import embedder

    # --db, --senses, --topk, --smoothing, --batch-tokens and --device are GenerateConfig's fields by name.
    cfg = embedder.GenerateConfig(run=run_dir, progress=not quiet, **settings)
    res = embedder.generate(cfg)
    emit(
        res.to_dict(),
        as_json,
        f"generated {res.tokens} token rows of {res.vocab_size}"
        + (f" and {res.senses} sense vectors" if cfg.senses else "")
        + f" ({res.definitions_per_s:,.0f} definitions/s) → {res.run}"
        + _smoothing_line(res.smoothing),
    )


def _smoothing_line(nb: dict[str, Any] | None) -> str:
    if nb is None:
        return ""
    s = nb["scores"]
    what = f"k {nb['k']}, τ {nb['tau']}, β {nb['beta']}" if nb["beta"] > 0 else "off (β 0 won)"
    return (
        f"\nsmoothing step: {what}, chosen on {nb['dev_tokens']} held-out tokens; on the other "
        f"{nb['test_tokens']}: cosine {s['plain_test']:.3f} → {s['smoothed_test']:.3f}"
    )


if __name__ == "__main__":  # pragma: no cover
    embed(sys.argv[1:])
