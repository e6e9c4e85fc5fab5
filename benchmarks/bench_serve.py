"""`defemb serve` latency: the word page, a reverse query and a small SQL query over HTTP on loopback,
sequentially and with 16 concurrent clients, against the same library calls made in-process.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_serve                         # a small run built here
    .venv/bin/python -m benchmarks.bench_serve --work defemb-work      # the `defemb run` demo's run
    .venv/bin/python -m benchmarks.bench_serve --run RUN --db LEX      # any run

The server is `defemb serve` itself, started as a subprocess (its own interpreter, as a user runs it);
the clients are threads of this process with one `httpx.Client` each. For every page: p50/p95 of
`sequential` requests one after another, then `clients` clients each sending `per_client` requests at
once (errors counted: any status but 200). The baseline of each is the library call the page stands
for, timed in this process on the same inputs: `Explorer.word` (the word page's lexicon reads and
neighbour searches), `index.reverse_words` (what `defemb reverse` calls) and `lexicon.queries.query`
(what `defemb sql` calls). The ratio is the page's p50 over the library's p50.

Without --run/--work it builds the small real run the tests serve (tests/data's lexicon, the tiny random
BERT made a sentence encoder, every reverse scorer) in a temporary folder, so `make bench` needs nothing
else; the README's figures name the run they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from benchmarks.bench_index import emit

ROOT = Path(__file__).resolve().parents[1]


def _small_run(work: Path) -> tuple[Path, Path, Path]:
    """The tests' served run (tests/serve_support.py) over the tests' tiny random BERT."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import save_tiny_bert
    from serve_support import build_served_run

    (work / "tiny-bert").mkdir()
    return build_served_run(work / "world", save_tiny_bert(work / "tiny-bert"))


def _inputs(db: Path, n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Words with senses, glosses to ask the reverse dictionary with, and small SQL queries."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        words = [
            str(r[0])
            for r in con.execute(
                "SELECT DISTINCT word FROM entry WHERE regexp_matches(word, '^[a-z]+$') ORDER BY word"
            ).fetchall()
        ]
        glosses = [str(r[0]) for r in con.execute("SELECT gloss FROM sense ORDER BY sense_id").fetchall()]
    finally:
        con.close()
    rng = np.random.default_rng(seed)
    pick_w = [words[i] for i in rng.choice(len(words), min(n, len(words)), replace=False)]
    pick_g = [
        " ".join(glosses[i].split()[:12])
        for i in rng.choice(len(glosses), min(n, len(glosses)), replace=False)
    ]
    sql = [
        f"SELECT piece, rule, word, pos, gloss FROM token_definition WHERE word = '{w}' ORDER BY rank LIMIT 20"
        for w in pick_w
    ]
    return pick_w, pick_g, sql


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(args: list[str], port: int) -> tuple[subprocess.Popen[bytes], float]:
    import httpx

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "definitionemb", "serve", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"defemb serve exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/run", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("defemb serve did not answer within 300 s")


def _wait_for_neighbour_table(base: str, timeout: float = 900) -> float:
    """Seconds the server's background neighbour table took (the word page reads it once ready)."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        table = httpx.get(f"{base}/api/run", timeout=30).json()["neighbour_table"]
        if table["ready"]:
            return float(table["seconds"])
        time.sleep(0.5)
    raise SystemExit(f"the server's neighbour table was not ready within {timeout:.0f} s")


def _pct(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def _timed(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=None)
    ap.add_argument("--db", default=None)
    ap.add_argument("--work", default=None, help="a `defemb run` work folder")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--sequential", type=int, default=40, help="requests per page, one after another")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--per-client", type=int, default=5, help="requests per client per page")
    a = ap.parse_args(argv)

    import httpx

    tmp = None
    if a.work:
        from definitionemb.serve.explorer import run_of_work

        run, db, cache = run_of_work(a.work)
        server_args = ["--work", a.work]
        label = f"work {a.work}"
    elif a.run:
        run, db = Path(a.run), Path(a.db) if a.db else None
        cache = Path(a.cache_dir) if a.cache_dir else None
        server_args = (
            ["--run", a.run]
            + (["--db", a.db] if a.db else [])
            + (["--cache-dir", a.cache_dir] if a.cache_dir else [])
        )
        label = f"run {a.run}"
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-serve-")
        run, db, cache = _small_run(Path(tmp.name))
        server_args = ["--run", str(run), "--db", str(db), "--cache-dir", str(cache)]
        label = "the tests' small run (tests/data lexicon, tiny random BERT)"
    if db is None:
        db = Path(json.loads((run / "manifest.json").read_text())["lexicon_db"])

    n = max(a.sequential, a.clients * a.per_client)
    words, glosses, sqls = _inputs(db, n)
    port = _free_port()
    proc, startup = _start_server(server_args, port)
    emit("serve_startup", startup, "s", run=label, note="process start to first answer, imports included")
    base = f"http://127.0.0.1:{port}"
    table = _wait_for_neighbour_table(base)
    emit(
        "serve_neighbour_table",
        table,
        "s",
        run=label,
        note="background search of every token's neighbours after start-up; pages search live until then",
    )
    pages = {
        "word_page": [f"/word/{quote(w, safe='')}" for w in words],
        "reverse_query": [f"/reverse?q={quote(g, safe='')}&k=10" for g in glosses],
        "small_sql": [f"/api/sql?q={quote(s, safe='')}" for s in sqls],
    }
    measured: dict[str, dict[str, Any]] = {}
    try:
        with httpx.Client(base_url=base, timeout=120) as c:
            for urls in pages.values():  # one warm-up request per page
                c.get(urls[0])
            for name, urls in pages.items():
                codes: list[int] = []

                def get(url: str, c: httpx.Client = c, codes: list[int] = codes) -> None:
                    codes.append(c.get(url).status_code)

                seq = _timed(get, urls[: a.sequential])
                measured[name] = {"seq": seq, "seq_errors": sum(code != 200 for code in codes)}

        for name, urls in pages.items():

            def client(i: int, urls: list[str] = urls) -> tuple[list[float], int]:
                times, errors = [], 0
                with httpx.Client(base_url=base, timeout=120) as cl:
                    for j in range(a.per_client):
                        url = urls[(i * a.per_client + j) % len(urls)]
                        t0 = time.perf_counter()
                        try:
                            ok = cl.get(url).status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        times.append(time.perf_counter() - t0)
                        errors += not ok
                return times, errors

            t0 = time.perf_counter()
            with ThreadPoolExecutor(a.clients) as pool:
                results = list(pool.map(client, range(a.clients)))
            wall = time.perf_counter() - t0
            measured[name]["conc"] = [t for ts, _ in results for t in ts]
            measured[name]["conc_errors"] = sum(e for _, e in results)
            measured[name]["conc_rps"] = len(measured[name]["conc"]) / wall
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # The library calls the pages stand for, in this process, on the same inputs.
    from definitionemb.lexicon.queries import query

    from definitionemb.serve.explorer import Explorer

    ex = Explorer(run, db, cache_dir=cache, progress=False, neighbour_table="off")
    # Before the neighbour table: the word page's three live searches (index.neighbors and the policy's).
    live = _timed(lambda w: ex.word(w), words[: a.sequential])
    ex.build_neighbour_table()
    lib = {
        "word_page": _timed(lambda w: ex.word(w), words[: a.sequential]),
        "reverse_query": _timed(lambda g: ex.reverse_words(g, 10, None), glosses[: a.sequential]),
    }
    ex.close()
    l50, l95 = _pct(live)
    emit(
        "word_library_p50_table",
        _pct(lib["word_page"])[0],
        "ms",
        l50,
        baseline_p95=round(l95, 2),
        baseline_is="Explorer.word searching live (no neighbour table)",
        run=label,
    )  # query() opens its own sealed connection, as `defemb sql` does
    lib["small_sql"] = _timed(lambda s: query(db, s), sqls[: a.sequential])
    lib_names = {
        "word_page": "Explorer.word in-process",
        "reverse_query": "index.reverse_words in-process",
        "small_sql": "lexicon.queries.query in-process",
    }
    for name, m in measured.items():
        b50, b95 = _pct(lib[name])
        s50, s95 = _pct(m["seq"])
        c50, c95 = _pct(m["conc"])
        emit(
            f"{name}_p50_sequential",
            s50,
            "ms",
            b50,
            p95=round(s95, 2),
            baseline_p95=round(b95, 2),
            errors=m["seq_errors"],
            requests=len(m["seq"]),
            baseline_is=lib_names[name],
            run=label,
        )
        emit(
            f"{name}_p50_{a.clients}_clients",
            c50,
            "ms",
            b50,
            p95=round(c95, 2),
            errors=m["conc_errors"],
            requests=len(m["conc"]),
            requests_per_s=round(m["conc_rps"], 1),
            baseline_is=lib_names[name],
            run=label,
        )
    if tmp is not None:
        tmp.cleanup()
    errors = sum(m["seq_errors"] + m["conc_errors"] for m in measured.values())
    return 1 if errors else 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
