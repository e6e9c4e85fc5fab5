"""What `defemb serve` shows, as plain library calls on one run opened once: :class:`Explorer`.

The web app (:mod:`definitionemb.serve.app`) renders these dicts as pages and returns them as JSON; a
script can use the class directly. Everything heavy is opened in ``__init__`` — the run, one read-only
lexicon connection (checked against the run's lexicon fingerprint, so a mismatched run is refused with
the CLI's message), the token indexes, the run's policy rows, the tokenizer and the reverse dictionary
with its encoders — and requests only read them. Each request reads the lexicon through its own cursor
of that one connection (a DuckDB cursor is a cheap handle to the same database, safe per thread).

Nothing here writes: the lexicon is opened read-only, the SQL console goes through
:func:`definitionemb.lexicon.queries.query` (the guard `defemb sql` uses), the indexes are searched.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from definitionemb.core.errors import DefembError
from definitionemb.embedder.binding import RunLexicon
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.faiss_index import LoadedIndex, open_index
from definitionemb.index.query import clamp_k, neighbors, search_without_self
from definitionemb.index.reverse_dictionary import SCORERS, check_query, reverse_words
from definitionemb.index.reverse_dictionary.store import read_manifest, supported_scorers
from definitionemb.index.vocabulary import pieces_by_id
from definitionemb.lexicon.db import attach_read_only
from definitionemb.lexicon.errors import LexiconError
from definitionemb.lexicon.queries import query as guarded_query
from definitionemb.serve.batcher import Batcher

__all__ = [
    "CHEAP_SCORERS",
    "EXAMPLE_SQL",
    "Explorer",
    "InputError",
    "Limits",
    "WORK_RUN_HINT",
    "run_of_work",
]

# Scorers whose index is built in seconds from the lexicon alone (no encoder pass over every sense):
# what the server builds for a run that has no reverse-dictionary index yet.
CHEAP_SCORERS = ("tokens", "lexical", "frequency", "lemma")
WORK_RUN_HINT = "run `defemb run --work FOLDER` first, or pass the run with --run RUN"


class InputError(DefembError):
    """A request the explorer cannot answer as asked (empty, too long, k out of range, ...)."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: bigger asks get a message, not a slow answer."""

    max_k: int = 100
    max_query_chars: int = 1000  # a definition; a 100 KB paste is refused before anything runs
    max_word_chars: int = 100
    max_sql_chars: int = 20_000
    sql_rows: int = 1000  # rows a SQL answer shows (and downloads); the count says how many there were
    sql_seconds: float = 5.0  # DuckDB's max_execution_time for one console query
    table_k: int = 20  # neighbours per token kept in memory for the word page; a larger k searches live


EXAMPLE_SQL = (
    (
        "Coverage by bucket",
        "SELECT bucket, tokens, covered, round(ratio, 3) AS ratio FROM coverage ORDER BY bucket",
    ),
    (
        "A word's pieces and their first definition",
        "SELECT piece, bucket, rule, word, pos, gloss FROM token_definition\n"
        "WHERE rank = 1 AND word = 'bank' ORDER BY token_id",
    ),
    (
        "Alignment rules",
        "SELECT rule, count(*) AS tokens FROM token_definition WHERE rank = 1 GROUP BY rule ORDER BY tokens DESC",
    ),
    (
        "Rare tokens with definitions",
        "SELECT piece, word, gloss FROM token_definition\nWHERE bucket = 'rare' AND rank = 1 LIMIT 20",
    ),
)


def run_of_work(work: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(run, lexicon, sentence cache) of a `defemb run` work folder, from its pipeline.json."""
    w = Path(work)
    state_path = w / "pipeline.json"
    if not state_path.is_file():
        raise InputError(f"{w} is not a `defemb run` work folder (no pipeline.json); {WORK_RUN_HINT}")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{state_path} is not readable ({exc}); {WORK_RUN_HINT}") from exc
    index_stage = state.get("index") if isinstance(state, dict) else None
    result = index_stage.get("result") if isinstance(index_stage, dict) else None
    run = result.get("run_dir") if isinstance(result, dict) else None
    db = result.get("db") if isinstance(result, dict) else None
    if not run or not db:
        raise InputError(
            f"the pipeline in {w} has not indexed a run yet (or ran before `defemb serve` existed): "
            f"run `defemb run --work {w}` to finish it, or pass the run with --run RUN --db LEXICON"
        )
    # pipeline.json names its paths relative to the work folder (an absolute one stays as it is)
    return w / str(run), w / str(db), w / "cache"


def _check_k(k: int, limits: Limits) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise InputError(f"k must be a whole number from 1 to {limits.max_k}, not {k!r}")
    return k


class Explorer:
    """One run and its lexicon, opened once, answering the explorer's questions (module docstring).

    `scorers`: the reverse dictionary's scorers (default: those the run's reverse index was built
    with; a run without one gets :data:`CHEAP_SCORERS`, built here in seconds). `work`: the `defemb run`
    folder the run came from, whose pipeline.json the run page reads too. `threads`: the torch and FAISS
    threads of this process from then on (None leaves them; see :meth:`_set_threads`).

    `neighbour_table`: when to search every token's neighbours once, so that a word page reads its
    three neighbour lists instead of searching three matrices (~7 ms each on the demo's 30,522 × 384
    rows; the lists are :func:`index.table.neighbor_arrays`, the batched form of the same search):
    ``"background"`` (default: start-up does not wait; pages search live until the table is ready),
    ``"now"`` (start-up waits) or ``"off"``.
    """

    def __init__(
        self,
        run: str | os.PathLike[str],
        db: str | os.PathLike[str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        scorers: tuple[str, ...] | None = None,
        allow_files: bool = False,
        work: str | os.PathLike[str] | None = None,
        limits: Limits = Limits(),
        progress: bool = True,
        threads: int | None = 1,
        neighbour_table: str = "background",
    ) -> None:
        if neighbour_table not in ("background", "now", "off"):
            raise ValueError(f"neighbour_table must be 'background', 'now' or 'off', not {neighbour_table!r}")
        t0 = time.perf_counter()
        self.run = RunDir.open(run)
        self.limits = limits
        self.allow_files = allow_files
        self.work = Path(work) if work is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.lex = RunLexicon(self.run, db)
        self.db = self.lex.check()  # opens read-only and refuses another run's lexicon
        self.manifest = self.run.manifest()
        self.vocab_size = self.lex.vocab_size
        self.table = self.lex.token_table()
        self.pieces = pieces_by_id(self.table, self.vocab_size)
        self.surfaces = dict(
            zip(self.table["token_id"].to_list(), self.table["surface"].to_list(), strict=True)
        )
        self.word_initial = set(self.table.filter(pl.col("word_initial"))["token_id"].to_list())
        self.covered = np.asarray(self.run.covered_mask(), dtype=bool)
        self.indexes: dict[str, LoadedIndex] = {m: open_index(self.run, m) for m in ("generated", "original")}
        self.pipeline = self._read_json(self.work / "pipeline.json") if self.work else None
        self._policy_index()
        self._tokenizer = self._open_tokenizer()
        # Concurrent reverse queries with the same k and POS are answered by one call (see the batcher);
        # one call at a time: the encoders and the dictionary's lazily filled caches are shared (two
        # runners side by side measured no faster on 2 cores: RESULTS.md, "Explorer page").
        self._reverse_batcher: Batcher[str, pl.DataFrame] = Batcher(self._reverse_many)
        # The guard opens its own DuckDB instance per query, and DuckDB refuses a second instance of a
        # file with other settings in one process: console queries run one at a time.
        self._sql_lock = threading.Lock()
        self.scorers = scorers or self._built_scorers()
        # `defemb reverse` without --scorer uses every scorer the run supports with the tuned weights; a
        # run whose index has fewer is asked as `--scorer …` names them (explicit scorers, their weights).
        self.query_scorers = None if set(self.scorers) == set(supported_scorers(self.run)) else self.scorers
        self._open_reverse(progress)
        # The pages read through one connection that attaches the lexicon read-only. The SQL console's
        # guard (`lexicon.queries.query`) opens the file as a DuckDB instance of its own, inside a thread
        # the kernel forbids to write, and DuckDB allows one instance per file and process: so the
        # binding's start-up connection is closed (its token table and tokenizer id stay cached) and the
        # pages' connection is an in-memory instance that only attaches the file.
        self.lex.close()
        self.con = self._attach(self.db)
        # What a word page reads, held in memory: no query per request.
        self.tokens = self._token_rows()
        self.sense_frame, self.sense_span = self._all_senses()
        self.report = self._read_json(self.run.report_dir / "report.json")
        self.threads = threads
        if threads is not None:
            self._set_threads(threads)
        self.near: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.neighbour_table_seconds: float | None = None
        self._table_thread: threading.Thread | None = None
        if neighbour_table == "now":
            self.build_neighbour_table()
        elif neighbour_table == "background":
            self._table_thread = threading.Thread(
                target=self.build_neighbour_table, args=(progress,), name="neighbour-table", daemon=True
            )
            self._table_thread.start()
        self.startup_seconds = time.perf_counter() - t0

    # --- start-up ----------------------------------------------------------------------------------
    def _policy_index(self) -> None:
        """The run's row policy as a searchable matrix beside the two saved indexes."""
        from definitionemb.index.faiss_core import build_faiss, prepare
        from definitionemb.index.policy import RowPolicy, default_policy, policy_matrix, run_choice

        evaluated = ((self.pipeline or {}).get("evaluate") or {}).get("result") or {}
        chosen = evaluated.get("policy") if isinstance(evaluated, dict) else None
        choice = run_choice(self.run)
        if isinstance(chosen, dict) and chosen.get("rows") and chosen.get("how"):
            # The policy `defemb run` evaluated and swapped into <run>/model: its config's [evaluation].
            self.policy = RowPolicy(str(chosen["rows"]), str(chosen["how"]))
            self.policy_reason = "the pipeline's [evaluation] rows and how (the rows of <run>/model)"
        elif choice is not None:
            self.policy, self.policy_reason = default_policy(self.run), choice.reason
        else:
            self.policy = default_policy(self.run)
            self.policy_reason = "the shipped default (no `defemb eval knobs` choice recorded for this run)"
        matrix, self.policy_mask = policy_matrix(self.run, self.lex, self.policy)
        original = self.indexes["original"]
        ids = original.ids
        x = prepare(matrix[ids], original.manifest.metric)
        self.policy_matrix = matrix
        self.indexes["policy"] = LoadedIndex(
            build_faiss(x, "Flat", original.manifest.metric), ids, original.manifest
        )

    def _token_rows(self) -> dict[int, dict[str, Any]]:
        """Every token of the run's tokenizer with its bucket, frequency and rank-1 alignment."""
        frame = self._frame(
            """SELECT t.token_id, t.piece, t.word_initial, t.bucket, t.frequency, t.freq_rank,
                      a.rule, a.sense_id, e.word AS aligned_word, s.gloss AS aligned_gloss,
                      coalesce(n.senses, 0) AS senses
               FROM token t
               LEFT JOIN alignment a ON a.tokenizer_id = t.tokenizer_id AND a.token_id = t.token_id AND a.rank = 1
               LEFT JOIN sense s ON s.sense_id = a.sense_id
               LEFT JOIN entry e ON e.entry_id = s.entry_id
               LEFT JOIN (SELECT token_id, count(*) AS senses FROM alignment WHERE tokenizer_id = $1
                          GROUP BY token_id) n ON n.token_id = t.token_id
               WHERE t.tokenizer_id = $1""",
            [self.lex.tokenizer_id],
        )
        return {int(r["token_id"]): r for r in frame.to_dicts()}

    def _all_senses(self) -> tuple[pl.DataFrame, dict[str, tuple[int, int]]]:
        """Every sense, ordered by headword, and each headword's (first row, number of senses)."""
        frame = self._frame(
            """SELECT e.word, s.sense_id, e.pos, s.gloss, s.tags, s.example, s.form_of, s.alt_of,
                      src.kind AS source
               FROM entry e JOIN sense s USING (entry_id) JOIN source src USING (source_id)
               ORDER BY e.word, e.entry_id, s.ord"""
        )
        spans = (
            frame.with_row_index("row")
            .group_by("word", maintain_order=True)
            .agg(pl.col("row").first(), pl.len())
        )
        span = {
            str(w): (int(r), int(n))
            for w, r, n in zip(spans["word"], spans["row"], spans["len"], strict=True)
        }
        return frame.drop("word"), span

    def build_neighbour_table(self, say: bool = False) -> None:
        """Every token's `table_k` nearest rows under the three matrices (see the class docstring);
        `say`: print a line on stderr when they are ready."""
        import faiss

        from definitionemb.index.table import neighbor_arrays

        t0 = time.perf_counter()
        # This thread alone may use every core (FAISS's OpenMP threads are set per calling thread).
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        sources = {
            "original": self.run.original_vectors(),
            "generated": self.run.token_vectors(),
            "policy": self.policy_matrix,
        }
        for matrix, source in sources.items():
            index = self.indexes[matrix]
            k = min(self.limits.table_k, index.manifest.ntotal - 1)
            if k < 1:
                continue
            ids, scores = neighbor_arrays(index, source, k)
            row = np.full(self.vocab_size, -1, dtype=np.int64)
            row[index.ids] = np.arange(index.ids.size)
            self.near[matrix] = (row, ids, scores)  # one assignment: a page sees all of it or none
        self.neighbour_table_seconds = time.perf_counter() - t0
        if say:
            print(
                f"word pages now read every token's {self.limits.table_k} nearest neighbours from memory "
                f"(searched in {self.neighbour_table_seconds:.1f} s)",
                file=sys.stderr,
            )

    def wait_for_neighbour_table(self, timeout: float | None = None) -> bool:
        """Block until the background neighbour table is built; True when it is ready."""
        if self._table_thread is not None:
            self._table_thread.join(timeout)
        return self.neighbour_table_seconds is not None

    def _open_tokenizer(self) -> Any:
        from definitionemb.lexicon.tokenizers import load_vocab, open_tokenizer

        model = self.manifest.get("model")
        if not model or not Path(str(model)).is_dir():
            return None  # the word page then shows only single-token words' pieces
        vocab = load_vocab(str(model))
        self._bpe = vocab.kind == "bpe"
        return open_tokenizer(vocab)

    def _built_scorers(self) -> tuple[str, ...]:
        """The scorers the run's reverse index was built with; :data:`CHEAP_SCORERS` when it has none."""
        man = read_manifest(self.run)
        return (
            tuple(s for s in SCORERS if s in man.scorers)
            if man is not None and man.scorers
            else CHEAP_SCORERS
        )

    def _open_reverse(self, progress: bool) -> None:
        from definitionemb.index.reverse_dictionary import open_reverse

        man = self.run.reverse_dir / "manifest.json"
        if progress and not man.is_file():
            print(
                f"building the reverse-dictionary index of run {self.run.path} for the scorers "
                f"{', '.join(self.scorers)} (seconds: no encoder pass over the senses)",
                file=sys.stderr,
            )
        self.reverse_dictionary = open_reverse(
            self.run,
            str(self.db),
            self.cache_dir,
            progress=progress,
            device="cpu",
            scorers=self.query_scorers,
        )
        self.pos_values = list(self.reverse_dictionary.pos_values)
        # One query now loads the encoders (the regressor, the sentence encoder), not the first visitor's.
        self.reverse_words("a word that is asked once at start-up", 1, None)

    def _pin_threads(self) -> None:
        """FAISS's OpenMP thread count is per calling thread: set it in each server thread too."""
        if self.threads is not None:
            import faiss

            faiss.omp_set_num_threads(self.threads)

    @staticmethod
    def _set_threads(threads: int) -> None:
        """Each request computes on `threads` cores (1 by default); requests run side by side in the
        server's threads.

        A single query is small: with the default OpenMP pools, torch's and FAISS's idle threads spin
        against each other on a shared 2-core machine and one reverse query took 350–450 ms instead of
        15–25 ms (benchmarks/RESULTS.md, issue 27). Set once the start-up builds are done.
        """
        import faiss
        import torch

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def close(self) -> None:
        self.con.close()

    # --- reading the lexicon -----------------------------------------------------------------------
    @staticmethod
    def _attach(db: Path) -> duckdb.DuckDBPyConnection:
        """The lexicon attached read-only as `lex` in an in-memory DuckDB, file access then locked
        (`lexicon.db.attach_read_only`, what `defemb sql` runs on)."""
        return attach_read_only(
            db, {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )

    def _frame(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        cur = self.con.cursor()  # one per request: a cursor is a thread's own handle on the instance
        try:
            cur.execute("USE lex")
            return cur.sql(sql, params=params).pl()
        finally:
            cur.close()

    # --- the run page ------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """Model, lexicon and its sources, coverage by bucket, the policy and why, the report's numbers."""
        m = self.manifest
        sources = self._frame(
            "SELECT kind, uri, n_loaded, n_rejected, n_filtered, loaded_at FROM source ORDER BY source_id"
        )
        coverage = self._frame(
            "SELECT bucket, tokens, covered, ratio FROM coverage WHERE tokenizer_id = ? ORDER BY bucket",
            [self.lex.tokenizer_id],
        )
        rep = self.report or {}
        from definitionemb.evaluation.knobs import wins_line

        return {
            "run": str(self.run.path),
            "run_id": self.run.run_id,
            "model": m.get("model"),
            "model_family": m.get("model_family"),
            "dim": m.get("dim"),
            "vocab_size": self.vocab_size,
            "covered_rows": int(self.covered.sum()),
            "lexicon": str(self.db),
            "sources": sources.to_dicts(),
            "coverage": coverage.to_dicts(),
            "policy": {
                "rows": self.policy.rows,
                "how": self.policy.how,
                "changed_rows": int(self.policy_mask.sum()),
                "why": self.policy_reason,
            },
            "knobs": (rep.get("knobs") or {}).get("chosen"),
            "wins": [wins_line(w) for w in rep.get("wordsim_wins") or []],
            "wordsim": rep.get("wordsim") or {},
            "isotropy": (rep.get("isotropy") or {}).get("matrices") or {},
            "plots": sorted((rep.get("plots") or {}).values()),
            "reverse_scorers": list(self.scorers),
            "pos_values": self.pos_values,
            "startup_seconds": round(self.startup_seconds, 2),
            "neighbour_table": {
                "ready": self.neighbour_table_seconds is not None,
                "k": self.limits.table_k,
                "seconds": None
                if self.neighbour_table_seconds is None
                else round(self.neighbour_table_seconds, 2),
            },
        }

    def plot_path(self, name: str) -> Path:
        """A PNG the report wrote, by file name (nothing else under the run is served)."""
        plots = set(((self.report or {}).get("plots") or {}).values())
        if name not in plots:
            raise InputError(f"the report has no plot {name!r}")
        return self.run.report_dir / name

    # --- the word page -----------------------------------------------------------------------------
    def _check_word(self, word: str) -> str:
        w = word.strip() if isinstance(word, str) else ""
        if not w:
            raise InputError("give a word, e.g. /word/bank")
        if len(w) > self.limits.max_word_chars:
            raise InputError(f"a word has at most {self.limits.max_word_chars} characters, this one {len(w)}")
        return w

    def _piece_ids(self, word: str) -> list[int]:
        if self._tokenizer is None:
            return []
        text = " " + word if self._bpe else word  # a byte-level BPE marks the word-initial piece by its space
        return [int(i) for i in self._tokenizer.encode(text, add_special_tokens=False).ids]

    def senses(self, word: str) -> list[dict[str, Any]]:
        """Every sense of the headword `word`: POS, gloss, tags, example, source."""
        first, n = self.sense_span.get(word, (0, 0))
        return self.sense_frame.slice(first, n).to_dicts()

    def pieces_of(self, word: str) -> list[dict[str, Any]]:
        """The word's pieces in the model's tokenizer, with bucket, frequency and rank-1 alignment."""
        ids = self._piece_ids(word)
        out = []
        for pos, tid in enumerate(ids):
            row = dict(self.tokens.get(tid, {"token_id": tid, "piece": self.pieces[tid]}))
            row["position"] = pos
            row["covered"] = bool(self.covered[tid]) if 0 <= tid < self.covered.size else False
            out.append(row)
        return out

    def single_token(self, word: str) -> int | None:
        """The token id of `word` when the tokenizer keeps it whole (one word-initial piece)."""
        ids = self._piece_ids(word)
        if len(ids) == 1:
            return ids[0]
        if self._tokenizer is None:
            hit = self.table.filter(pl.col("word_initial") & (pl.col("surface") == word))
            return int(hit["token_id"][0]) if hit.height else None
        return None

    def neighbours(self, token_id: int, k: int = 10) -> dict[str, list[dict[str, Any]]]:
        """Nearest tokens under the original rows, the run's policy rows and the generated rows.

        `original` and `generated` are :func:`index.neighbors` itself (on the indexes opened at
        start-up); `policy` searches the policy matrix the same way. Once the neighbour table is built,
        a k within it is read from the table (the same search, made for every token at once).
        """
        _check_k(k, self.limits)
        kept = {m: self._kept(m, token_id, k) for m in ("original", "generated", "policy")}
        if all(v is not None for v in kept.values()):
            return {
                m: [self._hit(int(i), float(s)) for i, s in zip(*hits, strict=True) if i >= 0]
                for m, hits in kept.items()
                if hits is not None
            }
        self._pin_threads()
        with warnings.catch_warnings():  # k is within the limit; a smaller index returns what it holds
            warnings.simplefilter("ignore")
            frame = neighbors(self.run, [token_id], k=k, db=self.lex, indexes=self.indexes)
            kk = clamp_k(k, self.indexes["policy"].manifest.ntotal - 1, "the policy index")
        ids, scores = search_without_self(
            self.indexes["policy"], self.policy_matrix[[token_id]], np.asarray([token_id]), kk
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for matrix in ("original", "generated"):
            out[matrix] = [
                self._hit(int(i), float(s))
                for i, s in zip(
                    frame[f"{matrix}_id"].to_list(), frame[f"{matrix}_score"].to_list(), strict=True
                )
                if i >= 0
            ]
        out["policy"] = [
            self._hit(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0
        ]
        return out

    def _kept(self, matrix: str, token_id: int, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The table's first k neighbours of `token_id` under `matrix`, or None when the table cannot
        answer (not built yet, k beyond it, the token not in that index)."""
        held = self.near.get(matrix)
        if held is None or not 0 <= token_id < held[0].size:
            return None
        row_of, ids, scores = held
        row = int(row_of[token_id])
        width = ids.shape[1]
        if row < 0 or (k > width and width < self.indexes[matrix].manifest.ntotal - 1):
            return None
        return ids[row, :k], scores[row, :k]

    def _hit(self, tid: int, score: float) -> dict[str, Any]:
        ok = 0 <= tid < self.vocab_size
        return {
            "token_id": tid,
            "piece": self.pieces[tid] if ok else None,
            "surface": self.surfaces.get(tid),
            "word_initial": tid in self.word_initial,
            "score": round(score, 4),
        }

    def closest_spellings(self, word: str, n: int = 8) -> list[str]:
        """Headwords nearest to `word` by edit distance (for a word the lexicon lacks)."""
        frame = self._frame(
            """SELECT word FROM (SELECT DISTINCT word FROM entry)
               WHERE abs(length(word) - length($1)) <= 2
               ORDER BY levenshtein(lower(word), lower($1)), word LIMIT $2""",
            [word, n],
        )
        return [str(w) for w in frame["word"].to_list()]

    def word(self, word: str, k: int = 10) -> dict[str, Any]:
        """Everything the word page shows about `word` (see the module docstring)."""
        w = self._check_word(word)
        _check_k(k, self.limits)
        senses = self.senses(w)
        tid = self.single_token(w)
        return {
            "word": w,
            "in_lexicon": bool(senses),
            "senses": senses,
            "pieces": self.pieces_of(w),
            "single_token": tid,
            "neighbours": self.neighbours(tid, k) if tid is not None else None,
            "policy": f"{self.policy.rows} {self.policy.how}",
            "closest": [] if senses else self.closest_spellings(w),
        }

    # --- reverse search ----------------------------------------------------------------------------
    def reverse(self, q: str, k: int = 10, pos: str | None = None) -> dict[str, Any]:
        """The headword reverse dictionary of `defemb reverse` (:func:`index.reverse_words`)."""
        if not isinstance(q, str) or not q.strip():
            raise InputError('describe a word, e.g. "a young dog"')
        if len(q) > self.limits.max_query_chars:
            raise InputError(
                f"a definition has at most {self.limits.max_query_chars} characters, this one {len(q):,}"
            )
        _check_k(k, self.limits)
        pos = pos or None
        if pos is not None and pos not in self.pos_values:
            raise InputError(
                f"no sense has part of speech {pos!r}; choose one of {', '.join(self.pos_values)}"
            )
        text = check_query(q)
        t0 = time.perf_counter()
        frame = self._reverse_batcher.submit((k, pos), text)
        return {
            "query": text,
            "k": k,
            "pos": pos,
            "scorers": list(self.scorers),
            "command": self.reverse_command(text, k, pos),
            "seconds": round(time.perf_counter() - t0, 4),
            "answers": frame.drop("query").to_dicts(),
        }

    def reverse_command(self, text: str, k: int, pos: str | None) -> str:
        """The `defemb reverse` command line that gives the same answers."""
        import shlex

        parts = ["defemb", "reverse", "--run", str(self.run.path), "--db", str(self.db), text, "-k", str(k)]
        parts += ["--pos", pos] if pos else []
        for s in self.query_scorers or ():
            parts += ["--scorer", s]
        if self.cache_dir is not None:
            parts += ["--cache-dir", str(self.cache_dir)]
        return shlex.join(parts)

    def _reverse_many(self, key: Hashable, texts: Sequence[str]) -> list[pl.DataFrame]:
        """One :meth:`reverse_words` call for queries asked together with the same (k, pos)."""
        assert isinstance(key, tuple)  # (k, pos): the key `reverse` submits under
        k, pos = key
        self._pin_threads()
        frame = self.reverse_words(texts[0] if len(texts) == 1 else list(texts), k, pos)
        first = pl.lit(0, dtype=frame.schema["query"])  # each answer as if asked alone
        parts = frame.partition_by("query", as_dict=True)  # one pass, not a filter per query
        empty = frame.clear()
        return [parts.get((i,), empty).with_columns(query=first) for i in range(len(texts))]

    def reverse_words(self, text: str | Sequence[str], k: int, pos: str | None) -> pl.DataFrame:
        """The library call itself, as `defemb reverse --run RUN --db DB TEXT -k K --pos POS` makes it."""
        return reverse_words(
            self.run,
            text,
            k=k,
            pos=pos,
            scorers=self.query_scorers,
            db=str(self.db),
            cache_dir=self.cache_dir,
        )

    # --- SQL console -------------------------------------------------------------------------------
    def sql_frame(self, text: str) -> tuple[pl.DataFrame, int, float]:
        """(the first `limits.sql_rows` rows, the row count, seconds) of read-only SQL run through
        `defemb sql`'s own guard, under `limits.sql_seconds`."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("write a query, e.g. SELECT count(*) FROM sense")
        if len(text) > self.limits.max_sql_chars:
            raise InputError(
                f"a query has at most {self.limits.max_sql_chars:,} characters, this one {len(text):,}"
            )
        t0 = time.perf_counter()
        try:
            with self._sql_lock:
                frame = guarded_query(
                    self.db, text, allow_files=self.allow_files, max_seconds=self.limits.sql_seconds
                )
        except LexiconError as exc:
            raise InputError(str(exc)) from exc
        return frame.head(self.limits.sql_rows), frame.height, time.perf_counter() - t0

    def sql(self, text: str) -> dict[str, Any]:
        """The SQL console's answer: columns, rows (JSON-able), the row count and whether it was cut."""
        shown, total, seconds = self.sql_frame(text)
        return {
            "query": text,
            "columns": shown.columns,
            "rows": [list(r) for r in shown.rows()],
            "total_rows": total,
            "truncated": total > shown.height,
            "row_cap": self.limits.sql_rows,
            "seconds": round(seconds, 4),
        }
