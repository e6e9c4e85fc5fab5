"""`defemb serve` on a small real run: every page and API route through FastAPI's test client, a
bounded load test and a real headless-Chromium session against the server on loopback.

The run (tests/serve_support.py) is the small real lexicon of tests/data with a short trained run of the
tiny random BERT made a sentence encoder, so every scorer of the reverse dictionary runs its real code.
What the pages show is compared with the library calls they stand for, computed before the server opens
the run: `index.neighbors`, `index.reverse_words`, the lexicon's own tables.
"""

from __future__ import annotations

import html
import os
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "fastapi", reason="defemb serve needs the serve extra: pip install 'definitionemb[serve]'"
)

from click.testing import CliRunner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serve_support import build_served_run  # noqa: E402

from definitionemb.cli import cli as defemb_cli  # noqa: E402

WORD = "will"  # two senses in tests/data/embedder/definitions.tsv, one piece of MiniLM's vocabulary
K = 8


def _expected(run: Path, db: Path, cache: Path) -> dict[str, Any]:
    """The library's own answers, from connections closed before the explorer opens the lexicon."""
    import duckdb
    from definitionemb.index.faiss_core import prepare
    from definitionemb.index.policy import policy_matrix

    from definitionemb import index

    con = duckdb.connect(str(db), read_only=True)
    try:
        senses = con.execute(
            "SELECT s.gloss, e.pos FROM entry e JOIN sense s USING (entry_id) WHERE e.word = ? "
            "ORDER BY e.entry_id, s.ord",
            [WORD],
        ).fetchall()
        gloss = con.execute(
            "SELECT s.gloss FROM entry e JOIN sense s USING (entry_id) WHERE e.word = 'said' ORDER BY s.sense_id"
        ).fetchone()
        buckets = dict(con.execute("SELECT bucket, covered FROM coverage").fetchall())
    finally:
        con.close()
    assert len(senses) >= 2 and gloss is not None
    frame = index.neighbors(run, [WORD], k=K, db=db)
    tid = int(frame["token_id"][0])
    # The policy's neighbours by brute force: cosine of the policy rows, non-special tokens, self left out.
    matrix, _ = policy_matrix(run, db)
    ids = index.open_index(run, "original").ids
    x = prepare(matrix[ids], "cosine")
    q = prepare(matrix[[tid]], "cosine")[0]
    scores = x @ q
    ranked = [i for i in np.argsort(-scores, kind="stable") if int(ids[i]) != tid][:K]
    from definitionemb.index.reverse_dictionary import reverse_words

    query = str(gloss[0])
    return {
        "senses": senses,
        "token_id": tid,
        "original": frame["original_id"].to_list(),
        "original_scores": frame["original_score"].to_list(),
        "generated": frame["generated_id"].to_list(),
        "generated_scores": frame["generated_score"].to_list(),
        "policy": [int(ids[i]) for i in ranked],
        "policy_scores": [float(scores[i]) for i in ranked],
        "reverse_query": query,
        "reverse": reverse_words(run, query, k=5, db=str(db), cache_dir=cache).to_dicts(),
        "reverse_verb": reverse_words(run, "to go somewhere", k=5, pos="verb", db=str(db), cache_dir=cache)[
            "word"
        ].to_list(),
        "covered": buckets,
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Any:
    from definitionemb.serve import Explorer, Limits, create_app

    work = tmp_path_factory.mktemp("serve")
    run, db, cache = build_served_run(work, tiny_bert_dir)
    expected = _expected(run, db, cache)
    explorer = Explorer(
        run,
        db,
        cache_dir=cache,
        limits=Limits(sql_rows=50, sql_seconds=1.0),
        progress=False,
        threads=None,
        neighbour_table="now",  # the word pages read the table, as a started server's do
    )
    app = create_app(explorer)
    yield {
        "run": run,
        "db": db,
        "cache": cache,
        "work": work,
        "expected": expected,
        "explorer": explorer,
        "app": app,
    }
    explorer.close()


@pytest.fixture(scope="module")
def client(served: Any) -> TestClient:
    return TestClient(served["app"])


def test_run_page_shows_the_model_lexicon_policy_and_report(served: Any, client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    page = r.text
    o = client.get("/api/run").json()
    assert o["run_id"] == served["explorer"].run.run_id and o["model"] in page
    assert str(served["db"]) in page and "definitions.tsv" in page
    assert {c["bucket"]: c["covered"] for c in o["coverage"]} == served["expected"]["covered"]
    assert o["policy"]["how"] in page and o["policy"]["changed_rows"] > 0
    assert o["wins"] and o["wins"][0] in page  # the report's wins line
    assert "EN-RG-65" in page and "IsoScore" in page
    for plot in o["plots"]:  # the report's PNGs, served and shown
        assert f"/plots/{plot}" in page
        png = client.get(f"/plots/{plot}")
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_word_page_senses_pieces_and_neighbours_equal_the_library(served: Any, client: TestClient) -> None:
    exp = served["expected"]
    w = client.get(f"/api/word/{WORD}", params={"k": K}).json()
    assert w["in_lexicon"] and [(s["gloss"], s["pos"]) for s in w["senses"]] == exp["senses"]
    assert w["single_token"] == exp["token_id"]
    (piece,) = w["pieces"]
    assert piece["token_id"] == exp["token_id"] and piece["word_initial"] and piece["bucket"]
    assert piece["covered"] is True and piece["rule"] and piece["aligned_gloss"]
    nb = w["neighbours"]
    for matrix in ("original", "generated", "policy"):  # rows with one definition tie: any order
        _same_up_to_ties(nb[matrix], np.asarray(exp[matrix]), np.asarray(exp[f"{matrix}_scores"]))
    page = client.get(f"/word/{WORD}", params={"k": K}).text
    for gloss, _ in exp["senses"]:
        assert gloss in page
    linked = [n for n in nb["original"] if n["word_initial"] and n["surface"]]
    assert linked and f'href="/word/{linked[0]["surface"]}"' in page


def _same_up_to_ties(got: list[dict[str, Any]], ids: np.ndarray, scores: np.ndarray) -> None:
    """One neighbour list equal to another but for the order of equal scores (two rows with the same
    definition are equally near, and the batched and the one-token search break such ties differently):
    the same scores, and the same ids within every group of equal scores but the last, which k may cut."""
    assert [n["score"] for n in got] == pytest.approx([round(float(s), 4) for s in scores], abs=2e-4)
    tie = np.round(scores, 4)
    last = tie[-1]
    head = [n["token_id"] for n in got if n["score"] != last]
    assert sorted(head) == sorted(int(i) for i, t in zip(ids, tie, strict=True) if t != last)


def test_the_neighbour_table_answers_as_the_live_search_does(served: Any) -> None:
    """The word page's table (every token searched at once) against the one-token search it replaces,
    for every token of the run and under all three matrices."""
    ex = served["explorer"]
    assert ex.neighbour_table_seconds is not None and set(ex.near) == {"original", "generated", "policy"}
    table = ex.near
    tokens = ex.indexes["original"].ids
    rng = np.random.default_rng(0)
    try:
        for tid in rng.choice(tokens, min(60, tokens.size), replace=False):
            kept = ex.neighbours(int(tid), K)
            ex.near = {}  # the live searches (index.neighbors and the policy's)
            live = ex.neighbours(int(tid), K)
            ex.near = table
            for matrix in ("original", "generated", "policy"):
                ids = np.asarray([n["token_id"] for n in live[matrix]])
                scores = np.asarray([n["score"] for n in live[matrix]])
                _same_up_to_ties(kept[matrix], ids, scores)
    finally:
        ex.near = table
    # a k beyond the table searches live: same answers, more of them
    wide = ex.neighbours(int(tokens[0]), ex.limits.table_k + 5)
    assert len(wide["original"]) == min(ex.limits.table_k + 5, ex.indexes["original"].manifest.ntotal - 1)


def test_pages_answer_while_the_neighbour_table_builds_in_the_background(served: Any) -> None:
    from definitionemb.serve import Explorer

    ex = Explorer(served["run"], served["db"], cache_dir=served["cache"], progress=False, threads=None)
    try:
        first = ex.word(WORD, K)  # the table may or may not be ready: the answer is the same
        assert ex.wait_for_neighbour_table(timeout=120)
        assert ex.overview()["neighbour_table"]["ready"]
        again = ex.word(WORD, K)
        for matrix in ("original", "generated", "policy"):
            want = first["neighbours"][matrix]
            _same_up_to_ties(
                again["neighbours"][matrix],
                np.asarray([n["token_id"] for n in want]),
                np.asarray([n["score"] for n in want]),
            )
    finally:
        ex.close()
    with pytest.raises(ValueError, match="neighbour_table"):
        Explorer(served["run"], served["db"], progress=False, threads=None, neighbour_table="later")


def test_a_split_word_shows_its_pieces_and_an_unknown_word_its_closest_spellings(client: TestClient) -> None:
    w = client.get("/api/word/unbelievably").json()
    assert len(w["pieces"]) > 1 and w["neighbours"] is None
    assert [p["position"] for p in w["pieces"]] == list(range(len(w["pieces"])))
    miss = client.get("/api/word/wil").json()
    assert not miss["in_lexicon"] and "will" in miss["closest"]
    page = client.get("/word/wil").text
    assert "is not a headword" in page and 'href="/word/will"' in page


def test_reverse_answers_equal_reverse_words(served: Any, client: TestClient) -> None:
    exp = served["expected"]
    got = client.get("/api/reverse", params={"q": exp["reverse_query"], "k": 5}).json()
    want = [{k: v for k, v in row.items() if k != "query"} for row in exp["reverse"]]
    assert [a["word"] for a in got["answers"]] == [a["word"] for a in want]
    assert [a["score"] for a in got["answers"]] == pytest.approx([a["score"] for a in want], rel=1e-5)
    assert [a["gloss"] for a in got["answers"]] == [a["gloss"] for a in want]
    verb = client.get("/api/reverse", params={"q": "to go somewhere", "k": 5, "pos": "verb"}).json()
    assert [a["word"] for a in verb["answers"]] == exp["reverse_verb"]
    page = client.get("/reverse", params={"q": exp["reverse_query"], "k": 5}).text
    assert f'href="/word/{want[0]["word"]}"' in page and want[0]["gloss"] in page


def test_sql_console_answers_reads_caps_rows_and_downloads(client: TestClient) -> None:
    one = client.get("/api/sql", params={"q": "SELECT count(*) AS n FROM sense"}).json()
    assert one["columns"] == ["n"] and one["rows"][0][0] > 0
    many = client.get("/api/sql", params={"q": "SELECT token_id FROM token ORDER BY token_id"}).json()
    assert many["truncated"] and len(many["rows"]) == 50 and many["total_rows"] > 50
    page = client.get("/sql", params={"q": "SELECT token_id FROM token ORDER BY token_id"}).text
    assert "the first 50 shown" in page and "format=csv" in page
    csv = client.get("/api/sql", params={"q": "SELECT 1 AS a, 'x' AS b", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines() == ["a,b", "1,x"]
    assert "Coverage by bucket" in client.get("/sql").text  # example queries


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("DELETE FROM sense", "DELETE statement is refused"),
        ("CREATE TABLE x AS SELECT 1", "CREATE statement is refused"),
        ("ATTACH 'other.duckdb' AS o", "ATTACH statement is refused"),
        ("COPY sense TO 'out.csv'", "COPY statement is refused"),
        ("SET threads = 1", "SET statement is refused"),
        ("INSTALL httpfs", "statement is refused ('INSTALL httpfs')"),
        ("SELECT * FROM read_csv('/etc/hostname')", "--allow-files"),
        ("SELECT count(*) FROM range(100000000) a, range(100000) b", "time limit"),
        ("SELEC 1", "SQL failed"),
    ],
)
def test_sql_guard_refusals_are_the_defemb_sql_guard(
    client: TestClient, served: Any, sql: str, says: str
) -> None:
    r = client.get("/api/sql", params={"q": sql})
    assert r.status_code == 400 and says in r.json()["error"]
    page = client.get("/sql", params={"q": sql})
    assert page.status_code == 400 and says in html.unescape(page.text) and "<textarea" in page.text
    if "statement is refused" in says:  # one code path: `defemb sql` says the same
        cli = CliRunner().invoke(defemb_cli, ["sql", "--db", str(served["db"]), sql])
        assert cli.exit_code == 1 and r.json()["error"] in cli.output


@pytest.mark.parametrize(
    "url",
    [
        "/api/reverse?q=&k=3",
        "/api/reverse?q=%20%20",
        "/api/reverse?q=12345",
        "/api/reverse?q=dog&k=0",
        "/api/reverse?q=dog&k=1000000000",
        "/api/reverse?q=dog&k=abc",
        "/api/reverse?q=dog&pos=nounish",
        "/api/reverse?q=" + "word%20" * 5000,
        "/api/word/" + "x" * 500,
        "/api/word/will?k=-1",
        "/api/sql?q=",
        "/api/sql?q=SELECT%201&format=xml",
        "/api/nothing",
        "/plots/..%2Fmanifest.json",
        "/reverse?q=dog&k=0",
        "/word/will?k=zero",
        "/no/such/page",
    ],
)
def test_bad_input_gets_a_message_not_a_traceback(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code in (400, 404)
    assert "Traceback" not in r.text and 'File "' not in r.text
    if url.startswith("/api/"):
        assert r.json()["error"]
    else:
        assert 'class="problem"' in r.text
    assert client.get("/api/word/will").status_code == 200  # and it keeps serving


def test_every_api_route_is_in_the_openapi_page(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/run", "/api/word/{word}", "/api/reverse", "/api/sql"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_nothing_a_request_does_writes(served: Any, client: TestClient) -> None:
    def stamp() -> dict[str, int]:
        return {
            str(p): p.stat().st_mtime_ns for p in [served["db"], *served["run"].rglob("*")] if p.is_file()
        }

    before = stamp()
    client.get("/api/sql", params={"q": "DROP TABLE sense"})
    client.get(f"/word/{WORD}")
    client.get("/api/reverse", params={"q": "a young dog"})
    assert stamp() == before


def test_a_mismatched_lexicon_is_refused_at_start_up_as_by_the_cli(served: Any, tmp_path: Path) -> None:
    from definitionemb.embedder.errors import RunMismatch

    from definitionemb import lexicon
    from definitionemb.serve import Explorer

    other = tmp_path / "other.duckdb"
    lexicon.build(
        str(other), [f"tsv:{Path(__file__).parent / 'data' / 'tsv' / 'user-definitions.tsv'}"], progress=False
    )
    with pytest.raises(RunMismatch) as exc:
        Explorer(served["run"], other, progress=False, threads=None)
    res = CliRunner().invoke(defemb_cli, ["serve", "--run", str(served["run"]), "--db", str(other)])
    assert res.exit_code == 1 and f"Error: {exc.value}" in res.output
    cli = CliRunner().invoke(
        defemb_cli, ["index", "neighbors", "--run", str(served["run"]), "--db", str(other), "will"]
    )
    assert cli.exit_code == 1 and str(exc.value) in cli.output


def test_serve_cli_usage_and_work_folders(tmp_path: Path) -> None:
    from definitionemb.cli_serve import is_loopback
    from definitionemb.serve.explorer import run_of_work

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    res = CliRunner().invoke(defemb_cli, ["serve"])
    assert res.exit_code == 2 and "--run RUN" in res.output
    res = CliRunner().invoke(defemb_cli, ["serve", "--work", str(tmp_path)])
    assert res.exit_code == 1 and "no pipeline.json" in res.output and "Traceback" not in res.output
    (tmp_path / "pipeline.json").write_text('{"index": {"result": {"run_dir": "runs/r", "db": "/l.duckdb"}}}')
    assert run_of_work(tmp_path) == (tmp_path / "runs" / "r", Path("/l.duckdb"), tmp_path / "cache")


# --- a real server on loopback ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(served: Any) -> Any:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(served["app"], host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_sixteen_concurrent_clients_get_no_errors(live: str, served: Any) -> None:
    import httpx

    urls = [
        f"/word/{WORD}",
        "/api/reverse?q=a%20young%20dog&k=5",
        "/api/sql?q=SELECT%20bucket%2C%20count(*)%20FROM%20token%20GROUP%20BY%20bucket",
        "/word/unbelievably",
        "/",
    ]

    def client_loop(i: int) -> list[int]:
        with httpx.Client(base_url=live, timeout=60) as c:
            return [c.get(urls[(i + j) % len(urls)]).status_code for j in range(6)]

    with ThreadPoolExecutor(16) as pool:
        codes = [c for batch in pool.map(client_loop, range(16)) for c in batch]
    assert len(codes) == 96 and codes == [200] * 96


def test_concurrent_reverse_queries_are_answered_together_as_if_alone(served: Any) -> None:
    """Sixteen reverse queries at once: each gets the answer it gets alone, in fewer library calls."""
    ex = served["explorer"]
    glosses = ["a young dog", "to go somewhere", "the quality of being kind", "a large body of water"]
    queries = [glosses[i % len(glosses)] + " " + w for i, w in enumerate("abcdefghijklmnop")]
    alone = {q: ex.reverse(q, 5)["answers"] for q in queries}
    batcher = ex._reverse_batcher
    calls0, items0 = batcher.batches, batcher.items
    barrier = threading.Barrier(len(queries))

    def ask(q: str) -> list[dict[str, Any]]:
        barrier.wait()
        return ex.reverse(q, 5)["answers"]

    with ThreadPoolExecutor(len(queries)) as pool:
        together = dict(zip(queries, pool.map(ask, queries), strict=True))
    assert batcher.items - items0 == len(queries) and batcher.batches - calls0 < len(queries)
    for q in queries:
        assert [a["word"] for a in together[q]] == [a["word"] for a in alone[q]]
        assert [a["score"] for a in together[q]] == pytest.approx([a["score"] for a in alone[q]], abs=1e-3)


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.slow
@pytest.mark.skipif(
    _chromium() is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
)
def test_a_real_browser_walks_the_explorer(live: str, served: Any, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = _chromium()  # type: ignore[misc]
    shots = Path(os.environ.get("DEFEMB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(60)

    def shown(element_id: str) -> Any:  # a form's answer, once the next page has loaded
        try:
            return WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, element_id)))
        except Exception as exc:
            raise AssertionError(
                f"#{element_id} not on {driver.current_url}: {driver.page_source[:3000]}"
            ) from exc

    try:
        driver.get(live + "/")
        assert "Coverage by bucket" in driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(shots / "run.png"))

        box = driver.find_element(By.ID, "word-search")
        box.send_keys(WORD, Keys.ENTER)
        senses = shown("senses").text
        assert driver.find_element(By.ID, "word").text == WORD
        for gloss, _ in served["expected"]["senses"]:
            assert gloss in senses
        driver.save_screenshot(str(shots / "word.png"))

        link = driver.find_elements(By.CSS_SELECTOR, "#neighbours-original a")[0]
        target = link.text
        link.click()
        WebDriverWait(driver, 60).until(ec.url_contains(f"/word/{target}"))
        WebDriverWait(driver, 60).until(ec.text_to_be_present_in_element((By.ID, "word"), target))
        assert driver.find_element(By.ID, "word").text == target

        driver.get(live + "/reverse")
        q = driver.find_element(By.ID, "reverse-q")
        q.send_keys(served["expected"]["reverse_query"])
        driver.find_element(By.ID, "reverse-go").click()
        shown("answers")
        first = driver.find_element(By.CSS_SELECTOR, "#answers tr:nth-child(2) td:nth-child(2)").text
        assert first == served["expected"]["reverse"][0]["word"]
        driver.save_screenshot(str(shots / "reverse.png"))

        driver.get(live + "/sql")
        area = driver.find_element(By.ID, "sql-q")
        area.send_keys(
            "SELECT word, count(*) AS senses FROM entry JOIN sense USING (entry_id) WHERE word = 'will' GROUP BY word"
        )
        driver.find_element(By.ID, "sql-go").click()
        table = shown("sql-result").text
        assert "will" in table and str(len(served["expected"]["senses"])) in table
        driver.save_screenshot(str(shots / "sql.png"))

        area = driver.find_element(By.ID, "sql-q")
        area.clear()
        area.send_keys("DELETE FROM sense")
        driver.find_element(By.ID, "sql-go").click()
        assert "DELETE statement is refused" in shown("problem").text
    finally:
        driver.quit()
    for name in ("run", "word", "reverse", "sql"):
        assert (shots / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_an_interrupted_sense_vector_build_resumes_and_says_what_it_builds(
    served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `defemb reverse` and `defemb serve` build first: announced with an estimate, resumable."""
    import math

    from definitionemb.embedder.rundir import RunDir
    from definitionemb.index.reverse_dictionary import build

    run = RunDir(shutil.copytree(served["run"], tmp_path / "run"))
    hw = served["explorer"].reverse_dictionary.headwords
    build._announce(run, hw, True, True)
    said = capsys.readouterr().err
    assert f"{hw.n_senses:,} sense vectors" in said and "Ctrl-C keeps what is done" in said

    from definitionemb.embedder.generator import DefinitionEncoder

    real = DefinitionEncoder.encode
    calls: list[int] = []
    interrupt = [True]

    def interrupted_on_the_third_chunk(
        self: Any, texts: list[str], pos: Any = None, batch_size: int = 64
    ) -> Any:
        calls.append(len(texts))
        if len(calls) == 3 and interrupt and interrupt.pop():
            raise KeyboardInterrupt
        return real(self, texts, pos, batch_size)

    monkeypatch.setattr(build, "_SENSE_CHUNK", 100)
    monkeypatch.setattr(DefinitionEncoder, "encode", interrupted_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        build._write_sense_vectors(run, hw, progress=False)
    assert (run.reverse_dir / ".sense_vectors.partial").is_dir()
    calls.clear()
    build._write_sense_vectors(run, hw, progress=False)
    assert len(calls) == math.ceil(hw.n_senses / 100) - 2  # the two finished chunks are not encoded again
    assert not (run.reverse_dir / ".sense_vectors.partial").exists()
    whole = real(DefinitionEncoder(run), hw.gloss.tolist(), hw.sense_pos.tolist())
    np.testing.assert_allclose(np.asarray(run.sense_vectors()), whole, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(run.sense_ids()), hw.sense_ids)
