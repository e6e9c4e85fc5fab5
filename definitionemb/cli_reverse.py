"""`defemb reverse` (also `defemb index reverse`): describe a word, get the word.

One call into `index.reverse`: a single definition prints its top-k headwords; `--input FILE --out
OUT.parquet` answers one definition per line into a Parquet file. The first use on a run builds what
the reverse dictionary needs (sense vectors, the shared gloss embeddings) with progress bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from definitionemb._cli import choice_option, db_option, emit, flag_option, run_option
from definitionemb._output import OUT_SUFFIXES, Output, output_options, print_rows

__all__ = ["reverse"]

_EPILOG = """Example:

  defemb reverse --run runs/r1 "a small domesticated feline" -k 5

  defemb reverse --run runs/r1 "to walk slowly" --pos verb --json

  defemb reverse --run runs/r1 --input definitions.txt -k 10 --out answers.parquet

  defemb reverse --run runs/r1 "a young dog" --scorer glosses --scorer senses

\b
  # every word through every scorer, not only the first pass's best 500: ~0.6x the queries/s for the
  # same acc@10 (benchmarks/HISTORY.md, "Reverse dictionary, fifth pass")
  defemb reverse --run runs/r1 --input definitions.txt --out answers.parquet --rerank 0
"""

RERANK_DEFAULT = 500  # index.reverse_dictionary.RERANK, spelled here so that --help needs no numpy


@click.command("reverse", epilog=_EPILOG)
@run_option()
@click.argument("text", required=False)
@click.option(
    "-k", "k", type=click.IntRange(1, 10000), default=10, show_default=True, help="Words per query."
)
@click.option(
    "--pos", default=None, help="Only words with a sense of this part of speech (noun, verb, adj, …)."
)
@click.option(
    "--scorer",
    "scorers",
    multiple=True,
    type=click.Choice(["tokens", "senses", "glosses", "headwords", "lexical", "frequency", "lemma"]),
    help="Use only these scorers (repeatable; default: the tuned combination of all the run supports).",
)
@choice_option(
    "--matrix",
    choices=["original", "generated"],
    default="original",
    help="Token rows the `tokens` scorer compares with.",
)
@click.option(
    "--rerank",
    type=click.IntRange(0),
    default=None,
    help=f"Words per query the first pass hands to the regressor, BM25 and headword scorers "
    f"(default {RERANK_DEFAULT}; 0: score every word with every scorer).",
)
@flag_option("--include-query-words", help="Keep words that appear in the query itself.")
@click.option(
    "--input", "input_file", type=click.Path(dir_okay=False, exists=True), help="One definition per line."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="File for the answers: .parquet (the batch's own format), .csv, .tsv, .json or .jsonl.",
)
@flag_option("--force", help="Overwrite --out if it exists.")
@flag_option("--rebuild", help="Rebuild the run's reverse-dictionary index first.")
@db_option()
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared sentence-embedding cache (default: $DEFEMB_CACHE or ~/.cache/definitionemb).",
)
@output_options(out=False)
def reverse(
    run_dir: str,
    text: str | None,
    k: int,
    pos: str | None,
    scorers: tuple[str, ...],
    matrix: str,
    rerank: int | None,
    include_query_words: bool,
    input_file: str | None,
    out: str | None,
    force: bool,
    rebuild: bool,
    db: str | None,
    cache_dir: str | None,
    output: Output,
) -> None:
    """Reverse dictionary: a definition → the headwords it describes, split words included."""
    if (text is None) == (input_file is None):
        raise click.UsageError('give either a definition ("a young dog") or --input FILE, not both')
    if input_file is not None and out is None:
        raise click.UsageError("--input needs --out OUT.parquet")
    if out is not None and not out.endswith(OUT_SUFFIXES):
        raise click.UsageError(f"--out {out}: name a file ending in {', '.join(OUT_SUFFIXES)}")
    as_json = output.json
    from definitionemb.index import reverse_dictionary as rv

    if rebuild:
        rv.build_reverse(run_dir, db=db, cache_dir=cache_dir, progress=not as_json)
    common: dict[str, Any] = {
        "pos": pos,
        "scorers": scorers or None,
        "include_query_words": include_query_words,
        "matrix": matrix,
        "rerank": rerank,
        "db": db,
        "cache_dir": cache_dir,
    }
    if input_file is not None:
        assert out is not None
        if not out.endswith(".parquet"):
            _batch_as(out, force, lambda part: rv.reverse_batch(run_dir, input_file, k, part, **common))
            return
        result = rv.reverse_batch(run_dir, input_file, k, out, overwrite=force, **common)
        emit(
            result.to_dict(),
            as_json,
            f"{result.queries} queries → {result.out} ({result.rows} rows, {result.queries_per_s:.1f} queries/s)",
        )
        return
    assert text is not None
    frame = rv.reverse_words(run_dir, text, k=k, progress=not output.quiet_progress, **common)
    if out is not None:  # one definition's answers into a file
        print_rows(frame, Output(out=Path(out), force=force))
        return
    print_rows(frame if output.fmt != "table" else frame.drop("query", "token_id", "sense_id"), output)


def _batch_as(out: str, force: bool, answer: Any) -> None:
    """A batch answered in another format than Parquet: `answer(part)` writes the batch's Parquet file
    into a temporary folder beside `out`, which is then written as `out` (the batch keeps one writer)."""
    import tempfile

    import polars as pl

    from definitionemb.core.fileio import claim_output

    claim_output(Path(out), "file", force, "the reverse-dictionary answers")
    with tempfile.TemporaryDirectory(dir=Path(out).resolve().parent, prefix=".defemb-reverse-") as tmp:
        part = Path(tmp) / "answers.parquet"
        result = answer(part)
        print_rows(pl.read_parquet(part), Output(out=Path(out), force=force))
    click.echo(f"{result.queries} queries → {out} ({result.queries_per_s:.1f} queries/s)")
