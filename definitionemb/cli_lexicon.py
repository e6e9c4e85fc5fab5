"""`defemb lexicon ...` and `defemb sql`: each command is one call into the `lexicon` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from definitionemb._cli import (
    db_option,
    emit,
    flag_option,
    force_option,
    json_option,
    stage_group,
    wait_option,
)
from definitionemb._output import Output, output_options, print_rows
from definitionemb.lexicon.errors import LexiconError

__all__ = ["lexicon", "sql"]

_DB = db_option(required=True, help="The lexicon DuckDB file.")


def _coverage_lines(cov: dict[str, Any]) -> list[str]:
    o = cov["overall"]
    lines = [f"overall   {o['covered']:>7,} / {o['tokens']:>7,}  {o['ratio']:6.1%}"]
    for name, b in cov["buckets"].items():
        lines.append(f"{name:<9} {b['covered']:>7,} / {b['tokens']:>7,}  {b['ratio']:6.1%}")
    if cov.get("rules"):
        lines.append("rank-1 rule: " + ", ".join(f"{r} {n:,}" for r, n in cov["rules"].items()))
    return lines


lexicon = stage_group(
    "lexicon",
    "Build, align and inspect the DuckDB lexicon.",
    "defemb lexicon build --db lex.duckdb --source open-dictionary:data/open-dictionary/api",
    "defemb lexicon align --db lex.duckdb --tokenizer models/roberta-base --frequencies dict.txt",
)


@lexicon.command(
    epilog="Example:\n\n  defemb lexicon build --db lex.duckdb --source kaikki:kaikki-en.jsonl.gz "
    "--source tsv:my-definitions.tsv --json",
)
@_DB
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    metavar="KIND:PATH",
    help="A source to load: kaikki, open-dictionary, tsv or wiktionary-dump, then ':' and its path. "
    "Repeatable.",
)
@click.option(
    "--lang",
    "langs",
    multiple=True,
    default=("en",),
    show_default=True,
    help="Language code kept from multilingual sources; repeatable (--lang en --lang fr), * keeps all.",
)
@click.option("--pos", "pos", multiple=True, help="Keep only entries of this part of speech (repeatable).")
@click.option("--exclude-pos", multiple=True, help="Drop entries of this part of speech (repeatable).")
@flag_option(
    "--no-extras",
    help="Leave out kaikki's relations, etymology text, sense ids and every example but the first.",
)
@wait_option
@json_option
def build(
    db: str,
    sources: tuple[str, ...],
    langs: tuple[str, ...],
    pos: tuple[str, ...],
    exclude_pos: tuple[str, ...],
    no_extras: bool,
    wait: float,
    as_json: bool,
) -> None:
    """Load dictionary sources into the lexicon (created if missing), atomically.

    A source already loaded from the same path is skipped when its content is the same, and replaced
    when the file has changed.
    """
    from definitionemb.lexicon.builder import build as build_

    report = build_(
        db,
        list(sources),
        lang=langs,
        progress=False if as_json else None,
        wait=wait,
        pos=pos,
        exclude_pos=exclude_pos,
        extras=not no_extras,
    )
    data = report.to_dict()
    if as_json:
        emit(data, True)
        return
    for src in data.get("sources", []):
        if src.get("skipped"):
            click.echo(f"{src['kind']:<16} {src['uri']}: already loaded (same sha256), skipped")
            continue
        filtered = ", ".join(f"{k} {v:,}" for k, v in (src.get("filtered") or {}).items()) or "none"
        replaced = " (the file changed: replaced its earlier load; align tokenizers again)" * bool(
            src.get("replaced")
        )
        click.echo(
            f"{src['kind']:<16} {src['uri']}: {src['loaded']:,} loaded, {src['rejected']:,} rejected, "
            f"filtered: {filtered} ({src['seconds']:.1f} s){replaced}"
        )
    click.echo(f"lexicon: {getattr(report, 'db', db)}")


@lexicon.command(
    epilog="Example:\n\n  defemb lexicon align --db lex.duckdb --tokenizer tests/data/roberta-bart "
    "--frequencies tests/data/roberta-bart/dict.txt\n\n"
    "  defemb lexicon align --db lex.duckdb --tokenizer tests/data/minilm-tokenizer --frequencies wordfreq\n\n"
    "  defemb lexicon align --db lex.duckdb --tokenizer path/to/minilm --corpus corpus.txt --json",
)
@_DB
@click.option(
    "--tokenizer",
    required=True,
    metavar="DIR_OR_NAME",
    help="A tokenizer or model folder (tokenizer.json, vocab.json+merges.txt or vocab.txt).",
)
@click.option(
    "--frequencies",
    metavar="DICT_TXT|wordfreq",
    help="A fairseq dict.txt with pre-training counts (RoBERTa/BART), or 'wordfreq': real English "
    "word frequencies tokenized by this tokenizer (the default for WordPiece/SentencePiece).",
)
@click.option(
    "--corpus",
    help="A text file whose tokenization gives the counts; 'lexicon': the lexicon's own glosses "
    "and examples (the default for BPE without --frequencies); 'vocab-order': the vocabulary order.",
)
@click.option(
    "--buckets",
    default="0.3,0.5,0.2",
    show_default=True,
    help="Shares of the frequent, medium and rare buckets by frequency rank.",
)
@click.option("--max-senses", type=int, help="Keep at most this many ranked senses per token.")
@click.option(
    "--rules",
    help="Comma-separated alignment rules to apply (default all: user, exact, casefold, "
    "lemma, affix, numeral, unaccent, stem, completion), each where it is trusted.",
)
@flag_option(
    "--untrusted-rules",
    help="Also apply rules at the positions where their measured precision is below the bar "
    "(word-internal pieces through exact/lemma/stem…; stem and completion anywhere).",
)
@wait_option
@json_option
def align(
    db: str,
    tokenizer: str,
    frequencies: str | None,
    corpus: str | None,
    buckets: str,
    max_senses: int | None,
    rules: str | None,
    untrusted_rules: bool,
    wait: float,
    as_json: bool,
) -> None:
    """Load a tokenizer's vocabulary and link every token to its ranked definitions."""
    from definitionemb.lexicon.aligner import align as align_

    try:
        shares = tuple(float(x) for x in buckets.split(","))
    except ValueError as exc:
        raise LexiconError(
            f"--buckets takes three comma-separated shares like 0.3,0.5,0.2, got {buckets!r}"
        ) from exc
    report = align_(
        db,
        tokenizer,
        frequencies=frequencies,
        corpus=corpus,
        buckets=shares,
        max_senses=max_senses,
        progress=not as_json,
        rules=None if rules is None else [r.strip() for r in rules.split(",") if r.strip()],
        untrusted=untrusted_rules,
        wait=wait,
    )
    data = report.to_dict()
    if as_json:
        emit(data, True)
        return
    click.echo(
        f"tokenizer {data['tokenizer_id']} ({data['kind']}, {data['vocab_size']:,} pieces, "
        f"frequencies from {data['frequency_source']}): {data['links']:,} links in {data['seconds']:.1f} s"
    )
    cov = {
        "overall": {"tokens": data["tokens"], "covered": data["covered"], "ratio": data["ratio"]},
        "buckets": data["buckets"],
        "rules": data["rules"],
    }
    for line in _coverage_lines(cov):
        click.echo(line)


@lexicon.command(
    epilog="Example:\n\n  defemb lexicon coverage --db lex.duckdb --tokenizer tests/data/roberta-bart --json",
)
@_DB
@click.option(
    "--tokenizer", required=True, metavar="DIR_OR_NAME", help="An aligned tokenizer (folder, name or id)."
)
@output_options()
def coverage(db: str, tokenizer: str, output: Output) -> None:
    """Share of non-special tokens with a definition, overall and per frequency bucket."""
    import polars as pl

    from definitionemb.lexicon.queries import coverage as coverage_

    cov = coverage_(db, int(tokenizer) if tokenizer.isdigit() else tokenizer)
    rows = [{"bucket": "overall", **cov["overall"]}] + [{"bucket": k, **v} for k, v in cov["buckets"].items()]
    frame = pl.DataFrame(rows).select("bucket", "tokens", "covered", "ratio")
    print_rows(frame, output, json_obj=cov)
    if output.fmt == "table" and output.out is None and cov.get("rules"):
        click.echo("rank-1 rule: " + ", ".join(f"{r} {n:,}" for r, n in cov["rules"].items()))


@lexicon.command(
    epilog="Example:\n\n  defemb lexicon definitions --db lex.duckdb --tokenizer tests/data/roberta-bart "
    "Ġcats ing 20920\n\n  (a token is a piece as spelled, a surface, or an id)",
)
@_DB
@click.option(
    "--tokenizer", required=True, metavar="DIR_OR_NAME", help="An aligned tokenizer (folder, name or id)."
)
@click.argument("tokens", nargs=-1, required=True)
@click.option(
    "--senses", type=click.IntRange(0), default=5, show_default=True, help="Senses per token (0 = all)."
)
@output_options()
def definitions(db: str, tokenizer: str, tokens: tuple[str, ...], senses: int, output: Output) -> None:
    """The ranked definitions of the given tokens (rank 1 = the token's first definition)."""
    import polars as pl

    from definitionemb.lexicon.queries import definitions as definitions_

    frame = definitions_(db, int(tokenizer) if tokenizer.isdigit() else tokenizer, list(tokens))
    if senses > 0:
        frame = frame.filter(pl.col("rank") <= senses)
    print_rows(frame, output, empty="no definitions for these tokens")


@lexicon.command(
    epilog="Example:\n\n  defemb lexicon export --db lex.duckdb --out out/lexicon-parquet",
)
@_DB
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write one <table>.parquet per table and view into.",
)
@click.option("--parquet", "parquet_dir", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@force_option
@json_option
def export(db: str, out_dir: Path | None, parquet_dir: Path | None, force: bool, as_json: bool) -> None:
    """Export every table and the token_definition view as Parquet files (into a new folder)."""
    from definitionemb.lexicon.queries import export_parquet

    if out_dir is not None and parquet_dir is not None:
        raise click.UsageError("--parquet is the old spelling of --out; give one")
    out_dir = out_dir or parquet_dir  # --parquet DIR: the spelling before --out, kept for old scripts
    if out_dir is None:
        raise click.UsageError("Missing option '--out' (the folder to write the Parquet files into).")

    written = export_parquet(db, out_dir, force=force)
    if as_json:
        emit({name: str(p) for name, p in written.items()}, True)
        return
    for name, p in written.items():
        click.echo(f"{name:<18} {p}")


@click.command(
    epilog='Example:\n\n  defemb sql --db lex.duckdb "SELECT bucket, count(*) FROM token GROUP BY bucket"\n\n'
    '  defemb sql --db lex.duckdb --csv "SELECT * FROM token_definition WHERE rank = 1" > first.csv\n\n'
    '  defemb sql --db lex.duckdb --out synonyms.parquet "SELECT * FROM synonym"',
)
@_DB
@click.argument("query")
@flag_option(
    "--allow-files",
    help="Let SELECT read local files (read_csv, read_parquet, ...); writing stays impossible (Linux "
    "Landlock; refused where the kernel cannot forbid writes).",
)
@output_options(limit=50)
def sql(db: str, query: str, allow_files: bool, output: Output) -> None:
    """Run read-only SQL on a lexicon and print the result.

    Only SELECT, EXPLAIN and PRAGMA statements run; ATTACH, COPY, EXPORT, INSTALL, LOAD, SET and every
    change are refused, and files are out of reach unless --allow-files. Nothing can write: the
    database is opened read-only and the query runs where the kernel forbids file writes.
    """
    from definitionemb.lexicon.queries import query as query_

    print_rows(query_(db, query, allow_files=allow_files), output)
