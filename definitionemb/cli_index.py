"""`defemb index …` and `defemb export`: FAISS indexes, neighbours, reverse dictionary, matrix export.

Each command is one call into the `index` package; `--json` prints its result for machines.
"""

from __future__ import annotations

import click

from definitionemb._cli import (
    choice_option,
    db_option,
    emit,
    flag_option,
    force_option,
    how_option,
    json_option,
    rows_option,
    run_option,
    stage_group,
)
from definitionemb._output import Output, output_options, print_rows

__all__ = ["index", "export"]

_RUN = run_option()
_DB = db_option()
_K = click.option(
    "-k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours per query."
)


index = stage_group(
    "index",
    "FAISS indexes over a run's vectors: neighbours, reverse dictionary, neighbour tables.",
    "defemb index build --run runs/r1 --factory HNSW32 --metric cosine",
    "defemb index neighbors --run runs/r1 cat Ġbank 1234 -k 5",
)


@index.command(
    "build",
    epilog="Example:\n\n  defemb index build --run runs/r1 --kind tokens --factory IVF1024,PQ64 --json",
)
@_RUN
@choice_option(
    "--kind",
    choices=["tokens", "senses", "generated", "original"],
    default="tokens",
    help="tokens = generated and original side by side.",
)
@click.option(
    "--factory",
    default="Flat",
    show_default=True,
    help="Any FAISS factory string (Flat, HNSW32, IVF4096,PQ64, …).",
)
@choice_option("--metric", choices=["ip", "cosine", "l2"], default="cosine")
@flag_option("--all-rows", help="Index every row of token_vectors, not only the covered ones.")
@_DB
@json_option
def build_cmd(
    run_dir: str, kind: str, factory: str, metric: str, all_rows: bool, db: str | None, as_json: bool
) -> None:
    """Build and save a run's FAISS index(es) under RUN/index/."""
    from definitionemb.index.faiss_index import build

    manifests = build(
        run_dir, kind=kind, factory=factory, metric=metric, all_rows=all_rows, db=db, progress=not as_json
    )
    emit(
        [m.to_dict() for m in manifests],
        as_json,
        "\n".join(
            f"{m.kind}: {m.factory} ({m.metric}), {m.ntotal} × {m.dim}, {m.seconds:.2f} s" for m in manifests
        ),
    )


@index.command(
    "neighbors", epilog="Example:\n\n  defemb index neighbors --run runs/r1 cat Ġbank 1234 -k 5 --json"
)
@_RUN
@click.argument("tokens", nargs=-1, required=True)
@_K
@_DB
@output_options()
def neighbors_cmd(run_dir: str, tokens: tuple[str, ...], k: int, db: str | None, output: Output) -> None:
    """Nearest tokens in the generated and the original matrix, side by side (piece, word or id)."""
    from definitionemb.index.query import neighbors

    print_rows(neighbors(run_dir, list(tokens), k=k, db=db), output)


@index.command("senses", epilog="Example:\n\n  defemb index senses --run runs/r1 Ġbank -k 5 --json")
@_RUN
@click.argument("token")
@_K
@_DB
@output_options()
def senses_cmd(run_dir: str, token: str, k: int, db: str | None, output: Output) -> None:
    """Senses nearest to a token's generated row (needs `defemb embed generate --senses` and a senses index)."""
    from definitionemb.index.query import senses_near

    print_rows(senses_near(run_dir, token, k=k, db=db), output)


@index.command(
    "neighbors-table",
    epilog="Example:\n\n  defemb index neighbors-table --run runs/r1 --db lex.duckdb -k 10\n\n"
    '  defemb sql --db lex.duckdb "SELECT * FROM neighbor JOIN token_definition USING (token_id)"',
)
@_RUN
@_DB
@_K
@click.option(
    "--matrix",
    "matrices",
    multiple=True,
    type=click.Choice(["generated", "original"]),
    help="Matrices to write (default: both).",
)
@json_option
def neighbors_table_cmd(
    run_dir: str, db: str | None, k: int, matrices: tuple[str, ...], as_json: bool
) -> None:
    """Write every indexed token's neighbours into the lexicon's `neighbor` table (atomic)."""
    from definitionemb.index.table import neighbors_table

    result = neighbors_table(
        run_dir, db=db, k=k, matrices=matrices or ("generated", "original"), progress=not as_json
    )
    rows = ", ".join(f"{m}: {n}" for m, n in result.rows.items())
    emit(
        result.to_dict(),
        as_json,
        f"neighbor rows for run {result.run_id} in {result.db}: {rows} ({result.seconds:.1f} s)",
    )


@click.command(
    "export",
    epilog="Example:\n\n  defemb export --run runs/r1 --format npy --out r1-matrix\n\n"
    "  defemb export --run runs/r1 --format hf --rows rare --how replace --out models/r1-rare\n\n"
    "  defemb export --run runs/r1 --format npy --rows task:train.tsv:0.2 --how mix:0.5 --out r1-task\n\n"
    "  defemb export --run runs/r1 --format parquet --out r1-vectors.parquet\n\n"
    "  defemb export --run runs/r1 --format word2vec --out r1.w2v.txt",
)
@_RUN
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["npy", "safetensors", "pt", "hf", "parquet", "word2vec"]),
    required=True,
    help="npy/safetensors/pt: the matrix and mask (npy and safetensors with vocab.txt and vocab.parquet); "
    "hf: a model folder with a Hub model card; parquet: one row per token with its vector; word2vec: "
    "text for gensim.",
)
@rows_option(run_choice=True)
@how_option()
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="File (safetensors, pt, parquet, word2vec; npy when named *.npy) or new folder (npy, hf).",
)
@click.option(
    "--base-model",
    metavar="HUB_ID",
    help="The base model's Hub id for the model card's base_model (default: the id its own card or config "
    "names).",
)
@flag_option(
    "--output-head",
    help="hf: also write the rows into an untied LM head (T5 v1.1, T5Gemma's with --target-table "
    "encoder); left alone by default.",
)
@_DB
@force_option
@json_option
def export(
    run_dir: str,
    fmt: str,
    rows: str | None,
    how: str | None,
    out: str,
    base_model: str | None,
    output_head: bool,
    db: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Export the embedding matrix under a row policy (default: the run's choice from `defemb eval
    knobs`, else the shipped one), plus the changed-row mask; `hf` writes a whole model folder with a
    model card."""
    from definitionemb.index.exporter import export as run_export

    result = run_export(
        run_dir, fmt, rows, out, db=db, force=force, how=how, base_model=base_model, output_head=output_head
    )
    emit(
        result.to_dict(),
        as_json,
        f"{result.rows_replaced} of {result.vocab_size} rows changed ({result.policy}) → {result.out} "
        f"({result.format}, {result.seconds:.2f} s)",
    )


def _add_reverse_alias() -> None:
    # `defemb index reverse` is the same command as `defemb reverse` (kept for old scripts).
    from definitionemb.cli_reverse import reverse

    index.add_command(reverse, "reverse")


_add_reverse_alias()
