"""One way to print rows, on every command that lists them (sqlite-utils' output options).

`@output_options()` gives a command `--fmt table|csv|tsv|nl|json` (or the flags `--table`, `--csv`,
`--tsv`, `--nl`, `--json`), `--limit N` (rows shown in the table view) and `--out FILE` (every row into
a `.parquet`, `.csv`, `.tsv`, `.json` or `.jsonl` file, for batch queries), and hands the command one
:class:`Output`. :func:`print_rows` prints a Polars frame the way it asks: a plain aligned table for
people (no `shape:` header, no dtype row), CSV/TSV, one JSON object per line (`nl`) or one JSON array.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["FORMATS", "OUT_SUFFIXES", "Output", "output_options", "print_rows", "render_table"]

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "tsv", "nl", "json")
OUT_SUFFIXES = (".parquet", ".csv", ".tsv", ".json", ".jsonl")
_CELL = 60  # characters of a cell shown in the table view


@dataclass(frozen=True)
class Output:
    """How a listing command prints: `fmt`, the table view's row `limit` (0 = all), an `out` file."""

    fmt: str = "table"
    limit: int = 0
    out: Path | None = None
    force: bool = False

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    @property
    def quiet_progress(self) -> bool:
        """Machine-readable output on stdout: no progress bars mixed into a terminal capture."""
        return self.fmt != "table"


def output_options(*, limit: int = 0, out: bool = True, force: bool = True) -> Callable[[F], F]:
    """Add the shared output options to a command, which receives them as one `output: Output`."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            fmt, flag = kwargs.pop("fmt"), kwargs.pop("fmt_flag")
            if fmt and flag and fmt != flag:
                raise click.UsageError(f"--fmt {fmt} and --{flag} contradict each other; give one")
            path = kwargs.pop("out", None) if out else None
            if path is not None and not str(path).endswith(OUT_SUFFIXES):
                raise click.UsageError(
                    f"--out {path}: name a file ending in {', '.join(OUT_SUFFIXES)} (the format follows it)"
                )
            kwargs["output"] = Output(
                fmt=fmt or flag or "table",
                limit=kwargs.pop("limit"),
                out=Path(path) if path is not None else None,
                force=bool(kwargs.pop("force", False)) if out and force else False,
            )
            return f(*args, **kwargs)

        options = [
            click.option(
                "--fmt",
                type=click.Choice(FORMATS),
                default=None,
                help="Output format: table (for people, the default), csv, tsv, nl (one JSON object a "
                "line) or json (one JSON line).",
            ),
            click.option(
                "--json", "fmt_flag", flag_value="json", help="Print machine-readable JSON on stdout."
            ),
            click.option("--nl", "fmt_flag", flag_value="nl", help="One JSON object per line (--fmt nl)."),
            click.option("--csv", "fmt_flag", flag_value="csv", help="CSV with a header (--fmt csv)."),
            click.option("--tsv", "fmt_flag", flag_value="tsv", help="Tab-separated (--fmt tsv)."),
            click.option("--table", "fmt_flag", flag_value="table", help="An aligned table (the default)."),
            click.option(
                "--limit",
                type=click.IntRange(0),
                default=limit,
                show_default=True,
                help="Rows shown in the table view (0 = all); the other formats and --out get every row.",
            ),
        ]
        if out:
            options.append(
                click.option(
                    "--out",
                    type=click.Path(dir_okay=False),
                    default=None,
                    help="Write every row to FILE.parquet, .csv, .tsv, .json or .jsonl instead of stdout.",
                )
            )
            if force:
                options.append(
                    click.option(
                        "--force",
                        is_flag=True,
                        help="Replace --out if it is an earlier output of definitionemb.",
                    )
                )
        for opt in reversed(options):
            wrapper = opt(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}"
    if isinstance(value, list | tuple):
        value = ", ".join(_cell(v) for v in value)
    text = str(value).replace("\n", " ")
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def render_table(frame: Any) -> str:
    """A plain aligned table: header, a rule of dashes, one line per row (numbers right-aligned)."""
    cols = frame.columns
    numeric = [frame.schema[c].is_numeric() for c in cols]
    rows = [[_cell(v) for v in row] for row in frame.iter_rows()]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            (c.rjust(w) if num else c.ljust(w)) for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(list(cols)), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _flat(frame: Any) -> Any:
    """CSV and TSV have no lists or structs: such columns become JSON text."""
    import polars as pl

    nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List | pl.Array | pl.Struct)]
    if not nested:
        return frame
    return frame.with_columns(
        pl.col(c).map_elements(lambda v: json.dumps(_plain(v), ensure_ascii=False), return_dtype=pl.String)
        for c in nested
    )


def _plain(v: Any) -> Any:
    if hasattr(v, "to_list"):
        return v.to_list()
    return v


def _json_line(obj: Any) -> str:
    from definitionemb.embedder.results import jsonable

    return json.dumps(jsonable(obj), ensure_ascii=False, default=str)


def _write_file(frame: Any, path: Path, force: bool) -> None:
    from definitionemb.core.fileio import output_file

    suffix = path.suffix.lower()
    with output_file(path, force=force, what=f"{suffix[1:]} output") as tmp:
        if suffix == ".parquet":
            frame.write_parquet(str(tmp))
        elif suffix in (".csv", ".tsv"):
            _flat(frame).write_csv(str(tmp), separator="\t" if suffix == ".tsv" else ",")
        elif suffix == ".jsonl":
            tmp.write_text("".join(_json_line(r) + "\n" for r in frame.to_dicts()), encoding="utf-8")
        else:
            tmp.write_text(_json_line(frame.to_dicts()) + "\n", encoding="utf-8")


def print_rows(frame: Any, output: Output, json_obj: Any = None, empty: str | None = None) -> None:
    """Print (or write to `output.out`) the rows of a Polars `frame` in the format asked for.

    `json_obj`: what `--json` prints instead of the rows, for commands whose JSON was a dict before
    they had a table (it stays the same for scripts). `empty`: the table view's line for no rows.
    """
    if output.out is not None:
        _write_file(frame, output.out, output.force)
        click.echo(f"{frame.height:,} rows → {output.out}", err=True)
        return
    try:
        _print(frame, output, json_obj, empty)
    except BrokenPipeError:
        # `defemb sql … --nl | head`: the reader has what it wanted; stop quietly, as other CLI tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None


def _print(frame: Any, output: Output, json_obj: Any, empty: str | None) -> None:
    fmt = output.fmt
    if fmt == "json":
        click.echo(_json_line(json_obj if json_obj is not None else frame.to_dicts()))
    elif fmt == "nl":
        for row in frame.to_dicts():
            click.echo(_json_line(row))
    elif fmt in ("csv", "tsv"):
        click.echo(_flat(frame).write_csv(separator="\t" if fmt == "tsv" else ","), nl=False)
    elif frame.height == 0 and empty:
        click.echo(empty)
    else:
        shown = frame if output.limit <= 0 else frame.head(output.limit)
        click.echo(render_table(shown))
        if shown.height < frame.height:
            click.echo(f"({frame.height:,} rows, {shown.height} shown; --limit 0 shows all)")
