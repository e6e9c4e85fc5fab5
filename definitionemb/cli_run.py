"""`defemb run`: the whole pipeline (see defemb.pipeline)."""

from __future__ import annotations

import sys

import click

from definitionemb._cli import emit, json_option
from definitionemb.config import load_config
from definitionemb.pipeline import STAGES, run_pipeline


@click.command(
    "run",
    epilog="""Examples:

  defemb run                                   # embedded default: MiniLM + Open Dictionary slice, CPU

  defemb run --config definitionemb/configs/roberta-base-kaikki.toml

  defemb run --config my.toml --from train --until index   # redo training onwards, stop after indexing

  defemb run --wait 3600                       # queue behind another run in the same work folder

An interrupted run resumes where it stopped (training from its last checkpoint); a changed config
re-runs the stages it affects.
""",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Pipeline TOML file (see definitionemb/configs/). Default: the embedded demo.",
)
@click.option("--work", default=None, help="Work folder (overrides [run] work).")
@click.option(
    "--from",
    "from_stage",
    type=click.Choice(STAGES),
    default=None,
    help="Run this stage and every later one again, even if their inputs are unchanged.",
)
@click.option("--until", type=click.Choice(STAGES), default=None, help="Stop after this stage.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for another `defemb run` in the same work folder (or a writer of its lexicon).",
)
@json_option
def run(
    config_path: str | None,
    work: str | None,
    from_stage: str | None,
    until: str | None,
    wait: float,
    as_json: bool,
) -> None:
    """Run the whole pipeline: lexicon → align → train → generate → index → evaluate → report.

    With no --config it runs offline on the embedded default data and the real all-MiniLM-L6-v2, on the
    CPU, in minutes. Stages whose inputs are unchanged since the last run in the same work folder are
    reused, and say so.
    """
    import dataclasses

    cfg = load_config(config_path)
    if work:
        cfg = dataclasses.replace(cfg, work=work)
    result = run_pipeline(cfg, from_stage=from_stage, until=until, wait=wait)
    if as_json:
        emit(result.to_dict(), True)
        return
    for stage, info in result.stages.items():
        click.echo(f"  {stage:<9} {info['status']:<7} {info['seconds']:>8.1f} s", err=True)
    report = result.stages.get("report", {}).get("result", {})
    click.echo(f"work folder: {result.work}")
    if result.run_dir:
        click.echo(f"run: {result.run_dir}")
    if report.get("markdown"):
        click.echo(f"report: {report['markdown']}")
    if "index" in result.stages:
        from definitionemb.cli_serve import serve_command

        click.echo(f"explore it: {serve_command(str(result.work))}")
    sys.stdout.flush()
