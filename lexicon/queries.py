"""Read-side API of the lexicon: coverage, a token's definitions, free SQL, Parquet export.

Every function opens the database read-only and returns plain dicts or Polars frames.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from definitionemb.core.fileio import claim_output, output_dir
from definitionemb.lexicon.db import attach_read_only, connect
from definitionemb.lexicon.errors import LexiconError, TokenizerError
from definitionemb.lexicon.tokenizers import Vocab, load_vocab

__all__ = [
    "coverage",
    "coverage_of",
    "coverage_frame",
    "definitions",
    "query",
    "export_parquet",
    "resolve_tokenizer_id",
    "token_table",
    "probe_pieces",
    "vocabulary_table",
    "synonym_token_pairs",
]

TokenizerRef = str | os.PathLike[str] | Vocab | int
BUCKET_ORDER = ("frequent", "medium", "rare")


def resolve_tokenizer_id(con: duckdb.DuckDBPyConnection, tokenizer: TokenizerRef) -> int:
    """The `tokenizer_id` of an aligned tokenizer, given its id, its name as aligned, its folder or a Vocab."""
    if isinstance(tokenizer, int):
        row = con.execute("SELECT tokenizer_id FROM tokenizer WHERE tokenizer_id = ?", [tokenizer]).fetchone()
        if row:
            return int(row[0])
        raise TokenizerError(f"the lexicon has no tokenizer_id {tokenizer}")
    # A folder is identified by its content (it may have changed since it was aligned); a name that is
    # no folder here (a hub name, a folder since moved) by the name it was aligned under.
    if not isinstance(tokenizer, Vocab) and not Path(tokenizer).is_dir():
        rows = con.execute("SELECT tokenizer_id FROM tokenizer WHERE name = ?", [str(tokenizer)]).fetchall()
        if len(rows) == 1:
            return int(rows[0][0])
    vocab = tokenizer if isinstance(tokenizer, Vocab) else load_vocab(tokenizer)
    row = con.execute("SELECT tokenizer_id FROM tokenizer WHERE sha256 = ?", [vocab.sha256]).fetchone()
    if row is None:
        raise TokenizerError(
            f"tokenizer {vocab.name} is not aligned in this lexicon. Align it first: "
            f"defemb lexicon align --db DB --tokenizer {vocab.name}"
        )
    return int(row[0])


def token_table(con: duckdb.DuckDBPyConnection, tokenizer_id: int) -> pl.DataFrame:
    """token_id, piece, surface, word_initial, special, freq_rank, bucket of one tokenizer, by id."""
    df = _frame(
        con,
        "SELECT token_id, piece, surface, word_initial, special, freq_rank, bucket "
        "FROM token WHERE tokenizer_id = $tid ORDER BY token_id",
        {"tid": tokenizer_id},
    )
    if df.height == 0:
        raise TokenizerError(
            f"the lexicon has no tokens for tokenizer_id {tokenizer_id}; align it first with "
            "`defemb lexicon align --db DB --tokenizer MODEL`"
        )
    return df


def vocabulary_table(con: duckdb.DuckDBPyConnection, tokenizer_id: int) -> pl.DataFrame:
    """token_id, piece, word_initial, bucket, frequency and the rule of the token's first definition
    (NULL where none) of one tokenizer, by id: what an exported matrix's rows are."""
    return _frame(
        con,
        "SELECT t.token_id, t.piece, t.word_initial, a.rule, t.bucket, t.frequency "
        "FROM token t LEFT JOIN alignment a "
        "ON a.tokenizer_id = t.tokenizer_id AND a.token_id = t.token_id AND a.rank = 1 "
        "WHERE t.tokenizer_id = $tid ORDER BY t.token_id",
        {"tid": tokenizer_id},
    )


def synonym_token_pairs(con: duckdb.DuckDBPyConnection, tokenizer_id: int) -> pl.DataFrame:
    """(token_id, synonym_id): a word and one of its synonyms (`synonym` view), both whole words that are
    one word-initial, non-special token of this tokenizer (matched case-insensitively), distinct tokens."""
    return _frame(
        con,
        """
        WITH words AS (
            -- the lower-case spelling wins ("cat" before "Cat"), then the lowest id
            SELECT lower(surface) AS w,
                   arg_min(token_id, (surface <> lower(surface))::BIGINT * 4294967296 + token_id) AS token_id
            FROM token
            WHERE tokenizer_id = $tid AND word_initial AND NOT special AND surface IS NOT NULL
            GROUP BY 1
        )
        SELECT DISTINCT a.token_id, b.token_id AS synonym_id
        FROM synonym y
        JOIN words a ON a.w = lower(y.word)
        JOIN words b ON b.w = lower(y.synonym)
        WHERE a.token_id <> b.token_id
        ORDER BY 1, 2
        """,
        {"tid": tokenizer_id},
    )


def probe_pieces(db: str | os.PathLike[str], tokenizer_id: int | None = None, n: int = 6) -> list[str]:
    """A few word-initial pieces spelling a whole lowercase word (5+ letters) with an exact or casefold
    first definition, rarest bucket first, in a fixed pseudo-random order: tokens worth showing the
    neighbours of. `tokenizer_id` None: any aligned tokenizer."""
    where = "" if tokenizer_id is None else "AND tokenizer_id = $tid"
    with connect(db) as con:
        frame = _frame(
            con,
            f"""SELECT piece FROM token_definition
                WHERE rank = 1 AND word_initial AND rule IN ('exact', 'casefold')
                  AND regexp_matches(surface, '^[a-z]{{5,}}$') {where}
                ORDER BY CASE bucket WHEN 'rare' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, hash(piece)
                LIMIT $n""",
            {"n": n} if tokenizer_id is None else {"n": n, "tid": tokenizer_id},
        )
    return [str(p) for p in frame["piece"].to_list()]


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    # A cursor of its own: the connection may still hold a half-read result (DuckDB refuses new relations
    # on it until that result is finished).
    rel = con.cursor().sql(sql, params=params)
    return rel.pl() if rel is not None else pl.DataFrame()


def _cell(tokens: int, covered: int) -> dict[str, Any]:
    return {"tokens": tokens, "covered": covered, "ratio": covered / tokens if tokens else 0.0}


def coverage_of(con: duckdb.DuckDBPyConnection, tid: int) -> dict[str, Any]:
    """:func:`coverage` on an open connection and a known tokenizer id."""
    rows = con.execute(
        """SELECT t.bucket, count(*) AS tokens, count(a.token_id) AS covered
           FROM token t
           LEFT JOIN (SELECT DISTINCT token_id FROM alignment WHERE tokenizer_id = $tid) a USING (token_id)
           WHERE t.tokenizer_id = $tid AND NOT t.special
           GROUP BY t.bucket""",
        {"tid": tid},
    ).fetchall()
    per = {b: (int(n), int(c)) for b, n, c in rows}
    rules = con.execute(
        """SELECT rule, count(*) FROM alignment WHERE tokenizer_id = ? AND rank = 1
           GROUP BY rule ORDER BY count(*) DESC, rule""",
        [tid],
    ).fetchall()
    tokens = sum(n for n, _ in per.values())
    covered = sum(c for _, c in per.values())
    return {
        "overall": _cell(tokens, covered),
        "buckets": {b: _cell(*per.get(b, (0, 0))) for b in BUCKET_ORDER},
        "rules": {r: int(n) for r, n in rules},
    }


def coverage(db: str | os.PathLike[str], tokenizer: TokenizerRef) -> dict[str, Any]:
    """How many non-special tokens have at least one definition, overall and per frequency bucket.

    Returns ``{"overall": {"tokens", "covered", "ratio"}, "buckets": {"frequent": {...}, "medium": {...},
    "rare": {...}}, "rules": {rule: tokens whose rank-1 link has that rule}}``.
    """
    with connect(db) as con:
        return coverage_of(con, resolve_tokenizer_id(con, tokenizer))


def coverage_frame(db: str | os.PathLike[str], tokenizer: TokenizerRef) -> pl.DataFrame:
    """Coverage as a frame: one row per bucket plus `all`, with one `by_<rule>` column per rank-1 rule."""
    with connect(db) as con:
        tid = resolve_tokenizer_id(con, tokenizer)
        frame = _frame(
            con,
            """WITH first AS (SELECT token_id, rule FROM alignment WHERE tokenizer_id = $tid AND rank = 1)
               SELECT coalesce(t.bucket, 'all') AS bucket, count(*) AS tokens, count(f.token_id) AS covered,
                      count(f.token_id) / count(*) AS ratio,
                      list_sort(list(DISTINCT f.rule) FILTER (WHERE f.rule IS NOT NULL)) AS rules
               FROM token t LEFT JOIN first f USING (token_id)
               WHERE t.tokenizer_id = $tid AND NOT t.special
               GROUP BY ROLLUP (t.bucket)""",
            {"tid": tid},
        )
        by_rule = _frame(
            con,
            """SELECT coalesce(t.bucket, 'all') AS bucket, a.rule, count(*) AS n
               FROM alignment a JOIN token t USING (tokenizer_id, token_id)
               WHERE a.tokenizer_id = $tid AND a.rank = 1
               GROUP BY ROLLUP (t.bucket), a.rule HAVING a.rule IS NOT NULL""",
            {"tid": tid},
        )
    frame = frame.drop("rules")
    if by_rule.height:
        wide = by_rule.pivot(on="rule", index="bucket", values="n").fill_null(0)
        wide = wide.rename({c: f"by_{c}" for c in wide.columns if c != "bucket"})
        frame = frame.join(wide, on="bucket", how="left").fill_null(0)
    order = {b: i for i, b in enumerate((*BUCKET_ORDER, "all"))}
    return (
        frame.with_columns(pl.col("bucket").replace_strict(order, default=99).alias("_o"))
        .sort("_o")
        .drop("_o")
    )


def _token_ids(con: duckdb.DuckDBPyConnection, tid: int, tokens: Sequence[str | int]) -> list[int]:
    """Ids of the tokens named by id, piece or surface (see :func:`definitions`); unknown ones are refused."""
    # (query, key, kind, word_initial): kind 0 = piece, 1 = surface, 2 = surface at a given word_initial
    wanted: list[tuple[str, str, int, bool | None]] = []
    for t in tokens:
        if isinstance(t, int):
            continue
        q = str(t)
        wanted += [(q, q, 0, None), (q, q, 1, None)]
        if len(q) > 1 and q[0] in "Ġ▁ ":
            wanted.append((q, q[1:], 2, True))
        if len(q) > 2 and q.startswith("##"):
            wanted.append((q, q[2:], 2, False))
    hits: dict[str, set[int]] = {}
    if wanted:
        frame = pl.DataFrame(wanted, schema=["q", "key", "kind", "wi"], orient="row")
        cur = con.cursor()
        cur.register("_wanted", frame)
        rows = cur.execute(
            """SELECT w.q, t.token_id FROM _wanted w JOIN token t
               ON t.tokenizer_id = $tid AND ((w.kind = 0 AND t.piece = w.key) OR (w.kind = 1 AND t.surface = w.key)
                  OR (w.kind = 2 AND t.surface = w.key AND t.word_initial = w.wi))""",
            {"tid": tid},
        ).fetchall()
        for q, i in rows:
            hits.setdefault(q, set()).add(int(i))
    n = con.execute("SELECT count(*) FROM token WHERE tokenizer_id = ?", [tid]).fetchone()
    size = int(n[0]) if n else 0
    ids: set[int] = set()
    missing: list[str] = []
    for t in tokens:
        if isinstance(t, int) or (str(t) not in hits and str(t).isdigit()):
            i = int(t)
            if 0 <= i < size:
                ids.add(i)
            else:
                missing.append(str(t))
        elif str(t) in hits:
            ids |= hits[str(t)]
        else:
            missing.append(str(t))
    if missing:
        raise TokenizerError(
            f"not in the vocabulary of tokenizer {tid}: {', '.join(map(repr, missing[:10]))} "
            f"(give pieces as spelled, e.g. 'Ġcat' or '##ing', surfaces, or ids)"
        )
    return sorted(ids)


def definitions(
    db: str | os.PathLike[str],
    tokenizer: TokenizerRef,
    tokens: Sequence[str | int] | None = None,
) -> pl.DataFrame:
    """Rows of the `token_definition` view for the given tokens (all tokens when None), by token and rank.

    A token is an id (int), a piece as spelled in the vocabulary (``Ġcat``, ``##ing``), a surface
    (``cat`` finds both ``cat`` and ``Ġcat``), or a surface behind a word-start mark (``Ġcafé``, ``▁cafe``,
    `` café``: the word-initial token; ``##ing``: the continuation). A string that is none of these but is
    all digits is taken as an id. Tokens the vocabulary lacks are refused; tokens without definitions
    simply have no rows.
    """
    with connect(db) as con:
        tid = resolve_tokenizer_id(con, tokenizer)
        ids = None if tokens is None else _token_ids(con, tid, tokens)
        where = "" if ids is None else "AND token_id IN (SELECT unnest($ids::INTEGER[]))"
        params: dict[str, Any] = {"tid": tid}
        if ids is not None:
            params["ids"] = ids
        return _frame(
            con,
            f"SELECT * FROM token_definition WHERE tokenizer_id = $tid {where} ORDER BY token_id, rank",
            params,
        )


# Statements that only read; anything else is refused with a friendly word before it runs. That is
# courtesy, not the guarantee: EXPLAIN (or a statement type not listed) must not be able to write, so the
# guarantee is in how the query runs (:func:`query`).
_READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA"})
# DuckDB settings fixed when the connection opens; `lock_configuration` keeps SQL from undoing them.
_SEALED = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}


def query(
    db: str | os.PathLike[str], sql: str, allow_files: bool = False, max_seconds: float | None = None
) -> pl.DataFrame:
    """Run SQL that only reads the lexicon and return the (last statement's) result as a frame.

    The one guard for SQL from a person (`defemb sql`, and any later console): nothing it runs can write.
    The database is opened read-only, extensions are neither installed nor loaded, and the settings are
    locked. Without `allow_files` DuckDB has no file access at all (``enable_external_access=false``: no
    ``read_csv``, ``COPY``, ``ATTACH``). With `allow_files` a query may read local files
    (``read_csv('x.csv')``) but the kernel forbids it to write any (:func:`core.sandbox.without_writes`,
    Linux Landlock): ``EXPLAIN ANALYZE COPY … TO`` fails like every other write. Where the kernel cannot
    forbid writes, `allow_files` is refused; without it the same sandbox is used when available.
    `max_seconds` stops a query that runs longer (DuckDB's ``max_execution_time``) with a clear error.
    """
    from definitionemb.core.sandbox import SandboxUnavailable, without_writes, writes_blockable

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise LexiconError(f"SQL failed: {str(exc).splitlines()[0]}") from exc
    if not statements:
        raise LexiconError("no SQL statement given; e.g. defemb sql --db DB 'SELECT count(*) FROM sense'")
    for st in statements:
        kind = st.type.name
        if kind not in _READ_STATEMENTS:
            raise LexiconError(
                f"defemb sql only reads: a {kind} statement is refused ({st.query.strip()[:60]!r}); "
                "use SELECT (write results elsewhere with --csv or --json)"
            )
    if allow_files and not writes_blockable():
        raise LexiconError(
            "--allow-files needs a system that can forbid the query to write files (Linux 5.13+ with "
            "Landlock); here only the lexicon itself can be queried"
        )
    import tempfile

    with tempfile.TemporaryDirectory(prefix="defemb-sql-") as scratch:
        config: dict[str, Any] = {
            **_SEALED,
            "enable_external_access": allow_files,
            "temp_directory": scratch,
            "lock_configuration": True,
        }
        if max_seconds is not None:
            config["max_execution_time"] = max(1, round(max_seconds * 1000))  # milliseconds

        def run() -> pl.DataFrame:
            with attach_read_only(db, config, allow_files) as con:
                try:
                    rel = con.sql(sql)  # on the connection itself: its default catalog is the lexicon
                    return rel.pl() if rel is not None else pl.DataFrame()
                except duckdb.InterruptException as exc:
                    if max_seconds is None:
                        raise
                    raise LexiconError(
                        f"the query ran past its {max_seconds:g} s time limit and was stopped; "
                        "narrow it (WHERE, LIMIT) or aggregate"
                    ) from exc
                except duckdb.Error as exc:
                    msg = str(exc).splitlines()[0]
                    if isinstance(exc, duckdb.PermissionException) and not allow_files:
                        msg += " (reading files needs --allow-files)"
                    elif "permission denied" in msg.lower() and allow_files:
                        msg += " (defemb sql never writes files; write results with --csv or --json)"
                    raise LexiconError(f"SQL failed: {msg}") from exc

        if not writes_blockable():
            return run()
        try:
            return without_writes(run, scratch=scratch)
        except SandboxUnavailable as exc:
            raise LexiconError(f"cannot run SQL without write access: {exc}") from exc


def export_parquet(
    db: str | os.PathLike[str], out_dir: str | os.PathLike[str], force: bool = False
) -> dict[str, Path]:
    """Write every table and the `token_definition` and `coverage` views as `<name>.parquet` in `out_dir`.

    The folder is written whole beside its final name and moved into place, so a reader never sees half
    of it. An existing `out_dir` is replaced only with `force`, and only when it is an earlier export
    (:func:`core.fileio.claim_output`).
    """
    out = Path(out_dir)
    claim_output(out, "dir", force, "Parquet export")
    written: dict[str, Path] = {}
    with connect(db) as con, output_dir(out, force, "Parquet export") as tmp:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "AND (table_type = 'BASE TABLE' OR table_name IN ('token_definition', 'coverage')) ORDER BY 1"
            ).fetchall()
        ]
        for name in names:
            target = (tmp / f"{name}.parquet").as_posix().replace("'", "''")
            con.execute(f"COPY (SELECT * FROM \"{name}\") TO '{target}' (FORMAT parquet)")
            written[name] = out / f"{name}.parquet"
    return written
