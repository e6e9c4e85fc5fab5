"""`defemb lexicon ...` and `defemb sql` through click's CliRunner, on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from definitionemb import lexicon
from definitionemb.cli import cli

DATA = Path(__file__).parent / "data"
OD = DATA / "lexicon-align" / "open-dictionary" / "api"
TSV = DATA / "tsv" / "user-definitions.tsv"
MINILM = DATA / "minilm-tokenizer"


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, roberta_tokenizer_dir: Path, roberta_dict_txt: Path) -> Path:
    path = tmp_path_factory.mktemp("cli") / "lex.duckdb"
    code, out, err = run(
        "lexicon",
        "build",
        "--db",
        path,
        "--source",
        f"open-dictionary:{OD}",
        "--source",
        f"tsv:{TSV}",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert [s["kind"] for s in report["sources"]] == ["open-dictionary", "tsv"]
    code, out, err = run(
        "lexicon",
        "align",
        "--db",
        path,
        "--tokenizer",
        roberta_tokenizer_dir,
        "--frequencies",
        roberta_dict_txt,
        "--untrusted-rules",  # every rule at both positions ("ĠHello" is reached by casefold)
        "--json",
    )
    assert code == 0, err
    aligned = json.loads(out)
    assert aligned["tokenizer_id"] == 1 and aligned["vocab_size"] == 50265 and aligned["covered"] > 0
    return path


def test_coverage_json_is_the_library_dict(db: Path, roberta_tokenizer_dir: Path) -> None:
    code, out, _ = run("lexicon", "coverage", "--db", db, "--tokenizer", roberta_tokenizer_dir, "--json")
    assert code == 0
    assert json.loads(out) == lexicon.coverage(db, roberta_tokenizer_dir)
    code, out, _ = run("lexicon", "coverage", "--db", db, "--tokenizer", "1")
    assert code == 0 and "overall" in out and "rare" in out


def test_definitions(db: Path, roberta_tokenizer_dir: Path) -> None:
    code, out, err = run(
        "lexicon",
        "definitions",
        "--db",
        db,
        "--tokenizer",
        roberta_tokenizer_dir,
        "Ġcats",
        "ĠHello",
        "--senses",
        "1",
    )
    assert code == 0, err
    assert "An animal of the family Felidae" in out and "hello" in out
    code, out, _ = run(
        "lexicon", "definitions", "--db", db, "--tokenizer", roberta_tokenizer_dir, "Ġran", "--json"
    )
    rows = json.loads(out)
    assert rows[0]["word"] == "run" and [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


def test_sql_table_json_csv(db: Path) -> None:
    q = "SELECT bucket, count(*) AS n FROM token GROUP BY bucket ORDER BY bucket"
    code, out, _ = run("sql", "--db", db, q)
    assert code == 0 and "frequent" in out and "15078" in out
    code, out, _ = run("sql", "--db", db, "--json", q)
    assert json.loads(out)[0] == {"bucket": "frequent", "n": 15078}
    code, out, _ = run("sql", "--db", db, "--csv", q)
    assert out.splitlines()[:2] == ["bucket,n", "frequent,15078"]


def test_export(db: Path, tmp_path: Path) -> None:
    code, out, err = run("lexicon", "export", "--db", db, "--parquet", tmp_path / "pq")
    assert code == 0, err
    assert (tmp_path / "pq" / "token_definition.parquet").is_file() and "alignment" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["sql", "--db", "{db}", "SELEC 1"], "SQL failed"),
        (["lexicon", "align", "--db", "{db}", "--tokenizer", "{tmp}"], "holds no tokenizer files"),
        (["lexicon", "coverage", "--db", "{tmp}/missing.duckdb", "--tokenizer", "1"], "no lexicon at"),
        (
            ["lexicon", "definitions", "--db", "{db}", "--tokenizer", "1", "no-such-piece-xyz"],
            "not in the vocabulary",
        ),
        (["lexicon", "build", "--db", "{tmp}/x.duckdb", "--source", "nonsense:{tmp}"], "Error:"),
        (["lexicon", "align", "--db", "{db}", "--tokenizer", "1", "--buckets", "a,b"], "--buckets"),
        (
            ["lexicon", "align", "--db", "{db}", "--tokenizer", str(MINILM), "--frequencies", "{tmp}/no.txt"],
            "neither 'wordfreq' nor a file",
        ),
    ],
)
def test_errors_are_one_clean_line(db: Path, tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = run(*(a.format(db=db, tmp=tmp_path) for a in args))
    assert code == 1
    assert err.startswith("Error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "path",
    [
        ["lexicon"],
        ["lexicon", "build"],
        ["lexicon", "align"],
        ["lexicon", "coverage"],
        ["lexicon", "definitions"],
        ["lexicon", "export"],
        ["sql"],
    ],
)
def test_help_has_an_example(path: list[str]) -> None:
    code, out, _ = run(*path, "--help")
    assert code == 0 and "Example:" in out


def test_align_with_a_corpus_and_chosen_rules(db: Path, tmp_path: Path, minilm_tokenizer_dir: Path) -> None:
    import shutil

    copy = tmp_path / "lex.duckdb"
    shutil.copy(db, copy)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The cats sat on the beach.\nThe beach was wide.\n", encoding="utf-8")
    code, out, err = run(
        "lexicon",
        "align",
        "--db",
        copy,
        "--tokenizer",
        minilm_tokenizer_dir,
        "--corpus",
        corpus,
        "--rules",
        "exact,casefold",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["frequency_source"] == f"corpus:{corpus}"
    assert set(report["rules"]) <= {"exact", "casefold"}
    freq = lexicon.query(
        copy,
        f"SELECT piece, frequency FROM token WHERE tokenizer_id = {report['tokenizer_id']} "
        "AND piece IN ('the', 'beach', 'cats')",
    )
    assert dict(freq.iter_rows()) == {"the": 3, "beach": 2, "cats": 1}
    code, out, _ = run("lexicon", "build", "--db", copy, "--source", f"tsv:{TSV}")
    assert code == 0 and "already loaded" in out
