"""The `defemb` command line. Each subcommand is one library call; each stage owns its own module.

Stage modules (`cli_lexicon`, `cli_embed`, `cli_index`, `cli_eval`, `cli_run`) each define click
commands and are imported lazily, so `defemb --help` stays fast and a stage's heavy imports (torch,
faiss) load only when that stage runs.
"""

from __future__ import annotations

import importlib
import sys

import click

from definitionemb._cli import Group, configure_logging, set_debug

# name -> (module, attribute, one-line help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "lexicon": ("definitionemb.cli_lexicon", "lexicon", "Build, align and inspect the DuckDB lexicon."),
    "sql": ("definitionemb.cli_lexicon", "sql", "Run SQL over a lexicon database."),
    "embed": ("definitionemb.cli_embed", "embed", "Train the DefinitionEMB regressor and generate vectors."),
    "index": ("definitionemb.cli_index", "index", "FAISS indexes: neighbours, reverse dictionary."),
    "reverse": (
        "definitionemb.cli_reverse",
        "reverse",
        "Reverse dictionary: a definition → the words it describes.",
    ),
    "export": ("definitionemb.cli_index", "export", "Export embedding matrices (npy, safetensors, pt, hf)."),
    "eval": ("definitionemb.cli_eval", "eval_", "Isotropy, word similarity, fine-tuning, reports."),
    "run": ("definitionemb.cli_run", "run", "The whole pipeline, on the embedded default or a config file."),
    "serve": ("definitionemb.cli_serve", "serve", "A local web explorer of a run: words, neighbours, SQL."),
}


class LazyGroup(Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[cmd_name]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None
            raise
        cmd = getattr(mod, attr, None)
        return cmd if isinstance(cmd, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example:\n\n  defemb run                      # the whole pipeline on the embedded default\n\n"
    "  defemb lexicon build --db lex.duckdb --source open-dictionary:path/to/api",
)
@click.version_option(package_name="definitionemb")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the full traceback of a failure instead of one line (or set DEFEMB_DEBUG=1).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr; no progress bars.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (debug messages, logger names).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars even when stderr is not a terminal (default: on a terminal only).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, verbose: int, progress: bool | None) -> None:
    """definitionemb: dictionary definitions turned into token embeddings (DefinitionEMB).

    An expected failure (bad input, a missing stage) prints one `Error: ...` line and exits with status 1;
    a usage error exits with status 2. Messages go to stderr through `logging` (-q, -v).
    """
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other; give one")
    set_debug(ctx, debug)
    configure_logging(verbose=verbose, quiet=quiet, progress=progress)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="defemb")


if __name__ == "__main__":
    main()
