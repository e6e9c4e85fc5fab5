"""`defemb eval ...`: isotropy, word similarity, GLUE fine-tuning, summarisation, swap, report.

Each subcommand is one call into `evaluation`; with `--run DIR` the result is also stored under
`DIR/report/results/`, where `defemb eval report` finds it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from definitionemb._cli import (
    Group,
    PolicyArgs,
    choice_option,
    command_line,
    data_dir_option,
    datasets_option,
    db_option,
    emit,
    flag_option,
    force_option,
    json_option,
    policy_options,
    rows_option,
    run_option,
)
from definitionemb._output import Output, output_options, print_rows

_DB_HELP = "Lexicon database (buckets, selection); default: the run's lexicon_db."
_POLICY = policy_options(db_help=_DB_HELP, bundle=False)  # db, rows, how as they are: config fields
_POLICIES = policy_options(db_help=_DB_HELP, multiple=True)  # --how repeatable: policies side by side
_RUN = run_option(exists=True)


@click.group(
    "eval",
    cls=Group,
    epilog="Example:\n\n  defemb eval isotropy --run runs/minilm --json\n\n"
    "  defemb eval report --run runs/minilm",
)
def eval_() -> None:
    """Swap DefinitionEMB rows into the PLM and measure what changed."""
    import os

    # A fresh classification head is expected here; transformers' per-load reports about it would bury
    # the results. Set TRANSFORMERS_VERBOSITY=warning to see them again.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@eval_.command(
    "isotropy",
    epilog="Example:\n\n  defemb eval isotropy --run runs/minilm --json\n\n"
    "  defemb eval isotropy --matrix vectors.npy\n\n  defemb eval isotropy --model path/to/minilm",
)
@click.option(
    "--matrix",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A V x d .npy matrix; buckets follow row order (30/50/20 %), first 4 rows special.",
)
@click.option(
    "--model",
    default=None,
    help="A model folder (or a name in the local Hugging Face cache): its input embedding rows.",
)
@run_option(
    required=False, exists=True, help="A run folder: original, DefinitionEMB and ABTT matrices side by side."
)
@_POLICIES
@output_options()
def isotropy_cmd(
    matrix: str | None,
    model: str | None,
    run_dir: str | None,
    policy: PolicyArgs,
    output: Output,
) -> None:
    """I(W), IsoScore, mean cosine and top-PC variance share, overall and per frequency bucket."""
    from definitionemb.evaluation.report import isotropy_of_matrix, isotropy_of_model, isotropy_of_run

    if sum(x is not None for x in (matrix, model, run_dir)) != 1:
        raise click.UsageError("give exactly one of --matrix, --model, --run")
    if run_dir is not None:
        from definitionemb.embedder.rundir import RunDir

        res, _, _ = isotropy_of_run(RunDir.open(run_dir), policy.db, policy.rows, policy.hows)
        click.echo(f"buckets from {res['buckets_source']}: {res['bucket_rows']}", err=True)
        per = res["matrices"]
    elif matrix is not None:
        per = isotropy_of_matrix(matrix)
    else:
        per = isotropy_of_model(str(model), policy.db)
    import polars as pl

    cols = ("rows", "isotropy", "isoscore", "mean_cosine", "top10_share")
    frame = pl.DataFrame(
        [
            {"matrix": name, "bucket": b, **{c: (m or {}).get(c) for c in cols}}
            for name, by in per.items()
            for b, m in by.items()
        ],
        schema={
            "matrix": pl.String,
            "bucket": pl.String,
            "rows": pl.Int64,
            **dict.fromkeys(cols[1:], pl.Float64),
        },
    )
    print_rows(frame, output, json_obj=per)


@eval_.command(
    "wordsim",
    epilog="Example:\n\n  defemb eval wordsim --run runs/minilm --dataset ../shared/data/eval/word-similarity\n\n"
    "  defemb eval wordsim --run runs/minilm --dataset EN-RW-STANFORD.txt --how dirmix:0.2 --how replace "
    "--part test --json",
)
@_RUN
@datasets_option("A `word1 word2 score` file, or a folder of them (*.txt); repeat for several.")
@_POLICIES
@choice_option(
    "--part",
    choices=["all", "dev", "test"],
    default="all",
    help="Score all pairs, or the development/test part of each set (evaluation.knobs).",
)
@output_options()
def wordsim_cmd(
    run_dir: str,
    datasets: tuple[str, ...],
    policy: PolicyArgs,
    part: str,
    output: Output,
) -> None:
    """Spearman of cosine similarity vs human scores, on pairs whose words are single tokens: the original
    rows, each row policy and ABTT, per set, with each policy's delta and a wins line."""
    from definitionemb.embedder.results import ResultKind, save_result
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.knobs import wins_line
    from definitionemb.evaluation.report import wordsim_of_run, wordsim_wins
    from definitionemb.evaluation.rows import run_buckets, run_matrices

    run = RunDir.open(run_dir)
    labels, _ = run_buckets(run, policy.db)
    matrices = run_matrices(run, policy.db, policy.rows, policy.hows, buckets=labels)
    res = wordsim_of_run(run, datasets, matrices, part)
    for name, r in res.items():  # one file per dataset, so later commands add to earlier ones
        save_result(run, ResultKind.WORDSIM, {name: r}, name, command=command_line())
    won = wordsim_wins(res)
    import polars as pl

    names = list(dict.fromkeys(m for r in res.values() for m in r["spearman"]))
    frame = pl.DataFrame(
        [
            {
                "set": ds,
                "pairs": r["pairs"],
                "covered_pairs": r["covered_pairs"],
                **{m: r["spearman"].get(m) for m in names},
            }
            for ds, r in res.items()
        ],
        schema={
            "set": pl.String,
            "pairs": pl.Int64,
            "covered_pairs": pl.Int64,
            **dict.fromkeys(names, pl.Float64),
        },
    )
    print_rows(frame, output, json_obj={"sets": res, "wins": won})
    if output.fmt == "table" and output.out is None:
        for w in won:
            click.echo(wins_line(w))


@eval_.command(
    "synonyms",
    epilog="Example:\n\n  defemb eval synonyms --run runs/minilm -k 10\n\n"
    "  defemb eval synonyms --run runs/minilm --how mix:0.45 --how replace --json",
)
@_RUN
@_POLICIES
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours per word.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the paired bootstrap.")
@output_options()
def synonyms_cmd(run_dir: str, policy: PolicyArgs, k: int, seed: int, output: Output) -> None:
    """Share of a word's dictionary synonyms among its k nearest tokens: the original rows against the
    rows each policy ships, with a paired bootstrap 95 % interval of the difference (over words)."""
    import polars as pl

    from definitionemb.embedder.binding import RunLexicon
    from definitionemb.embedder.results import ResultKind, save_result
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.rows import run_matrices
    from definitionemb.evaluation.synonyms import synonym_recall

    run = RunDir.open(run_dir)
    with RunLexicon(run, policy.db) as lex:
        matrices = run_matrices(run, lex, policy.rows, policy.hows, buckets=lex.bucket_labels())
        res = synonym_recall(run, matrices, lex, k=k, seed=seed)
    save_result(run, ResultKind.SYNONYMS, res, command=command_line())
    frame = pl.DataFrame(
        [
            {
                "matrix": name,
                "words": res["words"],
                f"recall@{k}": r,
                "delta": (res["delta"].get(name) or {}).get("mean"),
                "ci95_low": ((res["delta"].get(name) or {}).get("ci95") or [None, None])[0],
                "ci95_high": ((res["delta"].get(name) or {}).get("ci95") or [None, None])[1],
            }
            for name, r in res["recall"].items()
        ],
        schema={
            "matrix": pl.String,
            "words": pl.Int64,
            f"recall@{k}": pl.Float64,
            "delta": pl.Float64,
            "ci95_low": pl.Float64,
            "ci95_high": pl.Float64,
        },
    )
    print_rows(frame, output, json_obj=res)


@eval_.command(
    "knobs",
    epilog="Example:\n\n  defemb eval knobs --run runs/minilm --dataset ../shared/data/eval/word-similarity",
)
@_RUN
@datasets_option("Word-similarity sets (files or folders); only their development parts choose α.")
@db_option(help=_DB_HELP)
@rows_option()
@choice_option(
    "--method",
    "methods",
    multiple=True,
    choices=["mix", "dirmix", "normmix"],
    default=("mix", "dirmix"),
    help="Blend families to scan (repeat). normmix scores as mix on word similarity; the guard can differ.",
)
@choice_option(
    "--guard",
    choices=["rare", "medium", "frequent", "none"],
    default="rare",
    help="Only candidates that keep this bucket's isotropy I(W) at least the original's are eligible.",
)
@choice_option(
    "--objective",
    choices=["wordsim", "sts", "both"],
    default="wordsim",
    help="What the choice optimises: static word similarity, zero-shot sentence similarity (STS-B dev), "
    "or both: the best word-similarity gain among the candidates non-inferior on STS-B dev.",
)
@click.option(
    "--sts",
    "sts_dir",
    type=click.Path(exists=True),
    help="The STS Benchmark folder (its sts-dev.csv is read; never sts-test.csv). Needed by sts and both.",
)
@click.option(
    "--sts-alpha",
    "sts_alphas",
    type=float,
    multiple=True,
    help="α values the STS side scans (repeat; default 0.1 0.2 0.3 0.45), for all rows and rare rows alone.",
)
@click.option(
    "--margin",
    type=float,
    default=0.005,
    show_default=True,
    help="Non-inferior on STS-B dev: the 95% interval of the difference lies above -MARGIN.",
)
@flag_option("--no-plots", help="Skip the α-curve figure.")
@flag_option("--no-adopt", help="Show the choice without making it the run's default policy (policy.json).")
@json_option
def knobs_cmd(
    run_dir: str,
    datasets: tuple[str, ...],
    db: str | None,
    rows: str,
    methods: tuple[str, ...],
    guard: str,
    objective: str,
    sts_dir: str | None,
    sts_alphas: tuple[float, ...],
    margin: float,
    no_plots: bool,
    no_adopt: bool,
    as_json: bool,
) -> None:
    """Choose the row policy's α on the development parts of the sets; show the whole curve.

    The choice becomes the run's default policy (`<run>/policy.json`): `defemb export` and the
    evaluation commands use it when no --how is given, until the run's vectors change (--no-adopt:
    only show it)."""
    from definitionemb.embedder.results import ResultKind, save_result
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.plots import alpha_curve
    from definitionemb.evaluation.report import knobs_of_run
    from definitionemb.index.policy import record_choice

    run = RunDir.open(run_dir)
    if objective != "wordsim" and sts_dir is None:
        raise click.BadParameter(f"--objective {objective} needs --sts DIR", param_hint="--sts")
    res = knobs_of_run(
        run,
        datasets,
        db,
        rows,
        methods,
        None if guard == "none" else guard,
        objective=objective,
        sts=sts_dir,
        sts_alphas=sts_alphas or None,
        margin=margin,
    )
    rows = res.get("chosen_rows", rows)
    save_result(run, ResultKind.KNOBS, res, command=command_line())
    if not no_adopt:
        record_choice(run, rows, res["chosen"], res["reason"], command_line())
    if not no_plots:
        res["plot"] = str(alpha_curve(res, run.report_dir / "alpha_curve.png"))
    emit(
        res,
        as_json,
        f"chosen: --rows {rows} --how {res['chosen']}"
        + ("" if no_adopt else " (now this run's default policy)")
        + f"\n{res['reason']}",
    )


@eval_.command(
    "sts",
    epilog="Example:\n\n  defemb eval sts --run runs/minilm --data ../shared/data/eval/sts --part test\n\n"
    "  defemb eval sts --run runs/minilm --data ../shared/data/eval/sts --part dev "
    "--how mix:0.2 --how mix:0.45 --json",
)
@_RUN
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True),
    help="The STS Benchmark folder (sts-train/dev/test.csv) or one such file.",
)
@choice_option(
    "--part",
    choices=["dev", "test", "train"],
    default="test",
    help="dev for choosing a policy, test for reporting it.",
)
@_POLICIES
@click.option("--bootstrap", default=2000, show_default=True, help="Paired bootstrap resamples.")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap resamples.")
@click.option("--device", default="cpu", show_default=True)
@json_option
def sts_cmd(
    run_dir: str,
    data: str,
    part: str,
    policy: PolicyArgs,
    bootstrap: int,
    seed: int,
    device: str,
    as_json: bool,
) -> None:
    """Zero-shot sentence similarity of the run's sentence encoder: original rows and policy rows in the
    same run, paired bootstrap 95% intervals, and the rare-token subset beside the whole set."""
    from definitionemb.embedder.results import ResultKind, save_result
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.sts import compare_sts

    if bootstrap < 100:
        raise click.BadParameter("at least 100 resamples", param_hint="--bootstrap")
    run = RunDir.open(run_dir)
    res = compare_sts(
        run, data, part, policy.db, policy.rows, list(policy.hows) or None, bootstrap, seed, device
    )
    save_result(run, ResultKind.STS, res.to_dict(), part, command=command_line())
    emit(res.to_dict(), as_json, _sts_table(res.to_dict()))


def _sts_table(d: dict[str, Any]) -> str:
    lines = [
        f"STS {d['part']} ({d['file']}): {d['pairs']:,} pairs; rare-token subset {d['rare_pairs']:,} pairs "
        f"(≥1 of the {d['rare_rows']:,} changed rare rows; buckets from {d['buckets_from']})",
        f"{'rows':<18}{'all':>9}{'Δ [95% CI]':>28}{'rare':>9}{'Δ [95% CI]':>28}",
    ]
    for name, sp in d["spearman"].items():
        row = f"{name:<18}"
        for s in ("all", "rare"):
            ci = d["difference"].get(name, {}).get(s)
            cell = "" if ci is None else f"{ci['delta']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]"
            row += f"{sp[s]:>9.4f}{cell:>28}"
        lines.append(row)
    return "\n".join(lines)


@eval_.command(
    "glue",
    epilog="Example:\n\n  defemb eval glue --run runs/minilm --task cola "
    "--data ../shared/data/eval/glue/CoLA --rows covered --how dirmix:0.2 --seeds 3 --max-train 2000",
)
@_RUN
@click.option("--task", default="cola", show_default=True, help="cola | sst2 | mrpc | rte | stsb")
@data_dir_option("The task folder of GLUE TSV files.")
@_POLICY
@click.option("--seeds", default=3, show_default=True, help="Seeds 1..N; both models train under each.")
@click.option("--epochs", default=3.0, show_default=True)
@click.option("--lr", default=2e-5, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--max-len", default=128, show_default=True)
@click.option("--max-train", type=int, default=None, help="Use only the first N training examples.")
@click.option("--max-eval", type=int, default=None, help="Use only the first N evaluation examples.")
@click.option("--device", default="auto", show_default=True)
@json_option
def glue_cmd(run_dir: str, db: str | None, seeds: int, as_json: bool, **settings: Any) -> None:
    """Fine-tune the original and the swapped model under the same seeds; mean ± std and a paired t-test."""
    from definitionemb.embedder.results import ResultKind, save_result
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.finetune import FinetuneConfig, compare_glue

    if seeds < 1:
        raise click.BadParameter("at least one seed", param_hint="--seeds")
    cfg = FinetuneConfig(seeds=tuple(range(1, seeds + 1)), **settings)  # the other options, by field name
    run = RunDir.open(run_dir)
    res = compare_glue(run, cfg, db, progress=sys.stderr.isatty())
    save_result(run, ResultKind.GLUE, res.to_dict(), res.task, config=cfg.to_dict(), command=command_line())
    s, t = res.summary, res.test
    emit(
        res.to_dict(),
        as_json,
        f"{res.task} {res.metric} over {len(res.seeds)} seeds ({res.replaced_rows} rows, "
        f"--rows {res.rows} --how {res.how}): original {s['original']['mean']:.4f} ± {s['original']['std']:.4f}, "
        f"DefinitionEMB {s['definitionemb']['mean']:.4f} ± {s['definitionemb']['std']:.4f}, "
        f"difference {t['mean_diff']:+.4f} (95% CI {t['ci_low']:+.4f} to {t['ci_high']:+.4f}), "
        f"paired t-test p = {t['p']:.4g}"
        + (
            f"\nrare-token subset ({res.rare_examples} examples): difference "
            f"{res.rare_test['mean_diff']:+.4f} (95% CI {res.rare_test['ci_low']:+.4f} to "
            f"{res.rare_test['ci_high']:+.4f})"
            if res.rare_test
            else ""
        ),
    )


@eval_.command(
    "summarization",
    epilog="Example:\n\n  defemb eval summarization --run runs/bart "
    "--data data/xsum --preset xsum --train-steps 1000 --max-eval 500",
)
@_RUN
@data_dir_option("Folder with train and test (or validation) .jsonl/.tsv of document, summary.")
@choice_option("--preset", choices=["xsum", "cnndm", "billsum"], default="xsum")
@_POLICY
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--train-steps", default=0, show_default=True, help="Fine-tuning steps before decoding (0: none)."
)
@click.option("--lr", default=3e-5, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--max-train", type=int, default=None)
@click.option("--max-eval", type=int, default=None)
@click.option("--device", default="auto", show_default=True)
@json_option
def summarization_cmd(run_dir: str, db: str | None, as_json: bool, **settings: Any) -> None:
    """ROUGE-1/2/L of the original and the swapped seq2seq model, with a paired bootstrap."""
    from definitionemb.embedder.results import ResultKind, save_result
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.summarization import SummarizationConfig, compare_summarization

    cfg = SummarizationConfig(**settings)  # the other options, by field name
    run = RunDir.open(run_dir)
    res = compare_summarization(run, cfg, db, progress=sys.stderr.isatty())
    save_result(
        run, ResultKind.SUMMARIZATION, res.to_dict(), cfg.preset, config=cfg.to_dict(), command=command_line()
    )
    text = "  ".join(
        f"{k}: {res.original[k]:.4f} -> {res.definitionemb[k]:.4f} (p={res.bootstrap_p[k]:.3f})"
        for k in res.original
    )
    emit(res.to_dict(), as_json, text)


@eval_.command(
    "swap",
    epilog="Example:\n\n  defemb eval swap --run runs/minilm\n\n"
    "  defemb eval swap --run runs/minilm --rows rare --how replace --out minilm-rare",
)
@_RUN
@policy_options(db_help=_DB_HELP, run_choice=True)
@click.option("--out", type=click.Path(), default=None, help="A new folder (default: RUN/model).")
@force_option
@json_option
def swap_cmd(
    run_dir: str,
    policy: PolicyArgs,
    out: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write the PLM with the policy's rows changed (save_pretrained, tokenizer, model card)."""
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.swap import save_swapped

    res = save_swapped(RunDir.open(run_dir), policy.db, policy.rows, out, force=force, how=policy.how)
    emit(
        res.to_dict(),
        as_json,
        f"{res.replaced_rows} of {res.vocab_size} rows changed ({res.policy}) -> {res.out_dir}",
    )


@eval_.command("report", epilog="Example:\n\n  defemb eval report --run runs/minilm")
@_RUN
@_POLICIES
@flag_option("--no-plots", help="Skip the PNG figures.")
@json_option
def report_cmd(run_dir: str, policy: PolicyArgs, no_plots: bool, as_json: bool) -> None:
    """Gather stored results, measure isotropy, draw figures; write report.json and report.md."""
    from definitionemb.embedder.rundir import RunDir
    from definitionemb.evaluation.report import build_report

    rep = build_report(
        RunDir.open(run_dir), policy.db, policy.rows, policy.hows, plots=not no_plots, command=command_line()
    )
    out = Path(rep.report_dir)
    emit(rep.to_dict(), as_json, f"wrote {out / 'report.md'} and {out / 'report.json'}")
