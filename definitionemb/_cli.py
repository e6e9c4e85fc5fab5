"""The kit every `defemb` command is made with: shared options, one `emit()`, one error handler.

- `db_option(...)`, `run_option(...)`, `json_option`, `force_option`, `wait_option`: the options that mean the same thing in every stage,
  spelled the same way (`--db`, `--run`, `--json`).
- `rows_option()`, `how_option()`: a row policy (`index.policy`), `--rows ROWS --how HOW`, the same
  spelling on every command that changes rows; `policy_options(...)`: `--db --rows --how` together,
  handed to the command as one `PolicyArgs` (as `_output.output_options` hands it one `Output`).
- `choice_option(...)`, `flag_option(...)`, `datasets_option(...)`, `data_dir_option(...)`: the kinds of
  option the commands repeat (one of a list with its default shown, an on/off flag, data to evaluate on).
- `stage_group(name, help, *examples)`: a stage's command group with its example lines.
- `config_options(Config, names)`: options made from a config dataclass's fields (`--field-name`, its help
  and choices from the field's metadata), so each field is spelled once.
- `emit(obj, as_json, text)`: JSON (one line, NaN → null) for machines, `text` for people.
- `Group`: a click group whose commands fail cleanly. An error a stage raises on purpose (any
  `core.errors.DefembError`, or an `OSError` such as a full disk) becomes one `Error: …` line on stderr
  and exit status 1; usage errors keep click's status 2. `defemb --debug …` or `DEFEMB_DEBUG=1` shows the
  full traceback instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from definitionemb.core.errors import DefembError

__all__ = [
    "DEBUG_ENV",
    "EXPECTED_ERRORS",
    "Group",
    "choice_option",
    "command_line",
    "configure_logging",
    "config_options",
    "data_dir_option",
    "datasets_option",
    "db_option",
    "emit",
    "expected_errors",
    "flag_option",
    "force_option",
    "how_option",
    "json_option",
    "one_line_warnings",
    "policy_options",
    "PolicyArgs",
    "rows_option",
    "run_option",
    "set_debug",
    "stage_group",
    "wait_option",
]

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_ENV = "DEFEMB_DEBUG"
# What a user can cause and fix: the stages' own errors, and the operating system's (missing file,
# permission, full disk). Anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (DefembError, OSError)
_DEBUG_META = "defemb.debug"


def _debugging(ctx: click.Context | None) -> bool:
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        return True
    return bool(ctx is not None and ctx.find_root().meta.get(_DEBUG_META))


_HANDLER: logging.Handler | None = None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (click's test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: int = 0, quiet: bool = False, progress: bool | None = None) -> None:
    """Route the toolkit's messages (`logging`, logger ``definitionemb``) to stderr, one line each.

    Default INFO (the stages' own lines), `-v` DEBUG, `-q` warnings and errors only and no progress bars.
    Bars appear on a terminal only unless `progress` is True (`--progress`); False turns them off.
    """
    from definitionemb.core.progress import set_mode

    global _HANDLER
    log = logging.getLogger("definitionemb")
    if _HANDLER is not None:
        log.removeHandler(_HANDLER)
    _HANDLER = _StderrHandler()
    _HANDLER.setFormatter(
        logging.Formatter("%(message)s" if verbose < 1 else "%(levelname)s %(name)s: %(message)s")
    )
    log.addHandler(_HANDLER)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    set_mode("never" if quiet or progress is False else "always" if progress else "auto")


def set_debug(ctx: click.Context, debug: bool) -> None:
    """Remember `--debug` for every command under `ctx` (called by the root group)."""
    ctx.find_root().meta[_DEBUG_META] = debug


@contextlib.contextmanager
def expected_errors(ctx: click.Context | None = None) -> Iterator[None]:
    """Turn an expected failure into click's one-line `Error: …` (exit status 1), unless debugging."""
    try:
        yield
    except EXPECTED_ERRORS as exc:
        if _debugging(ctx if ctx is not None else click.get_current_context(silent=True)):
            raise
        raise click.ClickException(str(exc) or type(exc).__name__) from exc


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show the library's warnings (a k lowered to the index size, ...) as one `Warning: …` line each."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        click.echo(f"Warning: {message}", err=True)

    old = warnings.showwarning
    warnings.showwarning = show  # type: ignore[assignment]
    try:
        yield
    finally:
        warnings.showwarning = old


class Group(click.Group):
    """A click group whose subcommands' expected failures print one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        with expected_errors(ctx), one_line_warnings():
            return super().invoke(ctx)


def stage_group(name: str, help: str, *examples: str) -> Group:
    """A stage's command group (`defemb NAME …`): its one-line help and the example command lines its
    --help ends with."""
    return Group(name, help=help, epilog="Example:\n\n  " + "\n\n  ".join(examples))


def db_option(*, required: bool = False, exists: bool = False, help: str | None = None) -> Callable[[F], F]:
    """`--db FILE`: the lexicon DuckDB file (default help: the run's own lexicon when not given)."""
    return click.option(  # type: ignore[return-value]
        "--db",
        required=required,
        type=click.Path(exists=exists, dir_okay=False),
        help=help or "Lexicon database (default: the run's manifest lexicon_db).",
    )


def run_option(*, required: bool = True, exists: bool = False, help: str = "Run folder.") -> Callable[[F], F]:
    """`--run DIR`, the run folder, passed to the command as `run_dir`.

    `--run-dir` is the same option: torchrun's own argument parser takes any `--run…` prefix for itself
    (its `--run-path`), so under torchrun the folder has to be spelled `--run-dir`.
    """
    return click.option(  # type: ignore[return-value]
        "--run",
        "--run-dir",
        "run_dir",
        required=required,
        type=click.Path(exists=exists, file_okay=False),
        help=f"{help} (--run-dir: the same, for torchrun)",
    )


def choice_option(
    *decls: str, choices: Sequence[str], default: Any, help: str | None = None, multiple: bool = False
) -> Callable[[F], F]:
    """An option that takes one of `choices` (repeatable with `multiple`), `default` when left out and
    shown in --help."""
    return click.option(  # type: ignore[return-value]
        *decls,
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help=help,
        multiple=multiple,
    )


def flag_option(*decls: str, help: str) -> Callable[[F], F]:
    """An on/off flag, off unless given."""
    return click.option(*decls, is_flag=True, help=help)  # type: ignore[return-value]


json_option: Callable[[F], F] = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout."
)

wait_option: Callable[[F], F] = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="While another process writes the lexicon, wait this long for it instead of stopping.",
)

force_option: Callable[[F], F] = click.option(
    "--force",
    is_flag=True,
    help="Replace OUT if it is an earlier output of definitionemb (never a run, a lexicon or other files).",
)


def _option_type(hint: Any) -> Any:
    """click's type for a field annotation (`int`, `float | None`, `str`, …)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    return base if base in (int, float, str) else str


def config_options(cls: type, names: Sequence[str]) -> Callable[[F], F]:
    """One `--name` option per named field of the config dataclass `cls`, its help, choices and older
    spellings from the field's metadata (`embedder.config.option`). Every default is None: an option left
    out keeps the preset's value, so the command passes the values on as they are."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def deco(fn: F) -> F:
        for name in reversed(names):
            f = fields[name]
            meta = f.metadata
            kind = click.Choice(meta["choices"]) if "choices" in meta else _option_type(hints[name])
            flags = ["--" + name.replace("_", "-"), *meta.get("aliases", ())]
            help_ = meta.get("help", "")
            fn = click.option(*flags, name, type=kind, default=None, help=f"{help_} (default: preset)")(fn)
        return fn

    return deco


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print a command's result: `obj` as one line of JSON with `--json`, else `text`.

    A polars DataFrame prints as its rows (JSON) or as a table; a result dataclass as its `to_dict()`;
    numpy scalars become numbers and NaN or infinity becomes null (JSON has neither).
    """
    frame = _as_frame(obj)
    if as_json:
        from definitionemb.embedder.results import jsonable

        if frame is not None:
            payload = frame.to_dicts()
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            payload = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
        else:
            payload = obj
        click.echo(json.dumps(jsonable(payload), ensure_ascii=False, default=str))
        return
    if text is None and frame is not None:
        import polars as pl

        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            text = str(frame)
    click.echo(text if text is not None else str(obj))


def _as_frame(obj: Any) -> Any:
    # Checked by module name so that commands without frames never import polars.
    if type(obj).__module__.startswith("polars") and hasattr(obj, "to_dicts"):
        return obj
    return None


def command_line() -> str:
    """The current command with every option spelled out (`embedder.results.current_command`, the one
    recorder of what produced a result)."""
    from definitionemb.embedder.results import current_command

    return current_command()


def datasets_option(help: str) -> Callable[[F], F]:
    """`--dataset`, repeatable: word-similarity files (`word1 word2 score`) or folders of them."""
    return click.option(  # type: ignore[return-value]
        "--dataset", "datasets", multiple=True, required=True, type=click.Path(exists=True), help=help
    )


def rows_option(
    help: str = "Which rows change: covered | rare | task:FILE[:ratio].", run_choice: bool = False
) -> Callable[[F], F]:
    """`--rows`: the first half of a row policy (`index.policy`), default the shipped policy's rows; with
    `run_choice` (commands that write the policy out: export, swap) the run's own choice comes first."""
    from definitionemb.index.policy import DEFAULT_ROWS

    if run_choice:
        return click.option(  # type: ignore[return-value]
            "--rows",
            default=None,
            help=f"{help} (default: the run's choice from `defemb eval knobs`, else {DEFAULT_ROWS}).",
        )
    return click.option("--rows", default=DEFAULT_ROWS, show_default=True, help=help)  # type: ignore[return-value]


def how_option(*, multiple: bool = False) -> Callable[[F], F]:
    """`--how`: the second half of a row policy — `replace`, `mix:α`, `dirmix:α`, `normmix:α` (α on the generated row).

    Commands that compare policies side by side (isotropy, wordsim, report) take it several times.
    """
    from definitionemb.index.policy import DEFAULT_HOW

    default = f"the run's own choice (`defemb eval knobs`), else {DEFAULT_HOW}"
    if multiple:
        return click.option(  # type: ignore[return-value]
            "--how",
            "how",
            multiple=True,
            help="How the rows change: replace | mix:α | dirmix:α | normmix:α (α = weight of the generated row); "
            f"repeat to compare policies (default: {default}, and replace).",
        )
    return click.option(  # type: ignore[return-value]
        "--how",
        default=None,
        help=f"How the rows change: replace | mix:α | dirmix:α | normmix:α (α = weight of the generated row; default: {default}).",
    )


def data_dir_option(help: str) -> Callable[[F], F]:
    """`--data DIR`, required: the folder of a task's data files, passed to the command as `data_dir`."""
    return click.option(  # type: ignore[return-value]
        "--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False), help=help
    )


@dataclass(frozen=True)
class PolicyArgs:
    """What `policy_options` hands a command: the lexicon (`--db`) and the row-policy words as typed
    (`--rows`, every `--how` given, in order); `index.policy.RowPolicy` is the policy they make."""

    db: str | None
    rows: str | None
    hows: tuple[str, ...] = ()

    @property
    def how(self) -> str | None:
        """The one `--how` of a command that takes a single policy (None: the default policy)."""
        return self.hows[0] if self.hows else None


def policy_options(
    *, db_help: str | None = None, multiple: bool = False, run_choice: bool = False, bundle: bool = True
) -> Callable[[F], F]:
    """`--db`, `--rows` and `--how` (`db_option`, `rows_option`, `how_option`) in that order, handed to the
    command as one `policy: PolicyArgs` (`bundle=False`: as `db`, `rows` and `how`, for a command that
    passes them on by name); `multiple`: `--how` repeatable, to compare policies."""
    options = (db_option(help=db_help), rows_option(run_choice=run_choice), how_option(multiple=multiple))

    def decorate(f: F) -> F:
        if not bundle:
            for option in reversed(options):
                f = option(f)
            return f

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            how = kwargs.pop("how")
            hows = tuple(how) if multiple else (() if how is None else (how,))
            kwargs["policy"] = PolicyArgs(kwargs.pop("db"), kwargs.pop("rows"), hows)
            return f(*args, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate
