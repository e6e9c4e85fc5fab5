"""`defemb serve`: the local explorer page of a run (definitionemb.serve), served by uvicorn."""

from __future__ import annotations

import ipaddress
import os

import click

from definitionemb._cli import db_option, flag_option, run_option

__all__ = ["serve", "is_loopback", "serve_command"]

_EPILOG = """Examples:

  defemb serve --work defemb-work                  # the run `defemb run` made there

  defemb serve --run runs/r1 --db lex.duckdb --port 8001

Then open http://127.0.0.1:8000/ (the JSON API is documented at /docs).
"""


def is_loopback(host: str) -> bool:
    """Whether `host` only answers this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(work: str) -> str:
    """The command that serves a `defemb run` work folder (what `defemb run` prints at the end)."""
    import shlex

    return f"defemb serve --work {shlex.quote(str(work))}"


@click.command("serve", epilog=_EPILOG)
@run_option(required=False, help="Run folder (or give --work).")
@click.option(
    "--work",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="A `defemb run` work folder: serve the run it made, with its lexicon and sentence cache.",
)
@db_option()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared sentence-embedding cache (default: the work folder's, else $DEFEMB_CACHE or ~/.cache/definitionemb).",
)
@flag_option(
    "--allow-files",
    help="Let the SQL console's SELECT read local files (read_csv, ...); writing stays refused.",
)
def serve(
    run_dir: str | None,
    work: str | None,
    db: str | None,
    host: str,
    port: int,
    cache_dir: str | None,
    allow_files: bool,
) -> None:
    """Serve a local explorer of one run: words, neighbours before and after, reverse search, SQL.

    Everything is opened once at start-up (a mismatched run and lexicon are refused here, as by every
    command); requests only read. Binds 127.0.0.1 unless --host says otherwise.
    """
    if (run_dir is None) == (work is None):
        raise click.UsageError("give the run with --run RUN, or a `defemb run` folder with --work FOLDER")
    # One core per request (requests run side by side): OpenMP reads this once, for every thread, at the
    # first import of torch or FAISS; Explorer(threads=1) sets the same where they are imported already.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import uvicorn

        from definitionemb.serve.app import create_app
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"defemb serve needs the web extra ({exc.name} is missing): pip install 'definitionemb[serve]'"
        ) from exc
    from definitionemb.serve.explorer import Explorer, run_of_work

    if work is not None:
        run_path, work_db, work_cache = run_of_work(work)
        run_dir, db, cache_dir = str(run_path), db or str(work_db), cache_dir or str(work_cache)
    if not is_loopback(host):
        click.echo(
            f"Warning: listening on {host}: anyone who can reach this machine can read the run and the "
            "lexicon (the server never writes). Use --host 127.0.0.1 to keep it local.",
            err=True,
        )
    assert run_dir is not None
    explorer = Explorer(run_dir, db, cache_dir=cache_dir, allow_files=allow_files, work=work)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"Serving run {explorer.run.run_id} (started in {explorer.startup_seconds:.1f} s): "
        f"open http://{shown}:{port}/  (API: http://{shown}:{port}/docs; Ctrl-C stops). Every token's "
        f"neighbours ({explorer.vocab_size:,} tokens × 3 matrices) are being searched in the background; "
        "word pages search live until a line says they are ready.",
        err=True,
    )
    uvicorn.run(create_app(explorer), host=host, port=port, log_level="warning")
