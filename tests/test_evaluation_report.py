"""Isotropy of a run, the report files, and the `defemb eval` commands on fabricated run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from definitionemb.embedder.results import load_results
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.geometry import isotropy
from definitionemb.evaluation.report import build_report, evaluate_run, isotropy_of_run
from definitionemb.index.policy import DEFAULT_HOW
from evaluation_support import DATA, input_matrix, make_lexicon, make_run

SPECIAL = (0, 1, 2, 3, 50264)


@pytest.fixture(scope="module")
def roberta_run(tiny_roberta_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, Path]:
    root = tmp_path_factory.mktemp("eval-report")
    db = root / "lexicon.duckdb"
    # A real PLM's rows share a common direction and a few dominant ones; random init has neither, so the
    # fixture's rows get both (the swap itself is not exercised here, only the measurements).
    rng = np.random.default_rng(7)
    base = input_matrix(tiny_roberta_dir)
    stretch = np.ones(base.shape[1], dtype=np.float32)
    stretch[:3] = (6.0, 4.0, 3.0)
    original = (base * stretch + 0.05 * rng.standard_normal(base.shape[1])).astype(np.float32)
    run = make_run(root / "run-roberta", tiny_roberta_dir, seed=3, db=db, original=original)
    make_lexicon(db, 50265, SPECIAL, np.asarray(run.covered_mask()))
    return run, db


def test_isotropy_of_run_compares_three_matrices(roberta_run: tuple[RunDir, Path]) -> None:
    run, db = roberta_run
    res, mats, labels = isotropy_of_run(run, db)
    assert res["buckets_source"].startswith("lexicon:")
    assert set(res["matrices"]) == {"original", DEFAULT_HOW, "replace", "abtt"}
    assert res["policies"] == [DEFAULT_HOW, "replace"]
    assert res["bucket_rows"]["special"] == len(SPECIAL)
    for by in res["matrices"].values():
        assert set(by) == {"all", "frequent", "medium", "rare"}
    keep = labels != "special"
    assert res["matrices"]["original"]["all"]["isotropy"] == pytest.approx(
        isotropy(np.asarray(run.original_vectors())[keep]), rel=1e-12
    )
    assert res["matrices"]["original"]["all"]["rows"] == 50265 - len(SPECIAL)
    # Generated rows here are isotropic Gaussians, so the swapped matrix must be measurably more isotropic,
    # and ABTT removes the common and dominant directions.
    iso = {k: v["all"] for k, v in res["matrices"].items()}
    assert iso["replace"]["isoscore"] > iso["original"]["isoscore"]
    assert iso["replace"]["isotropy"] > iso["original"]["isotropy"]
    assert iso["abtt"]["top1_share"] < iso["original"]["top1_share"]
    assert abs(iso["abtt"]["mean_cosine"]) < abs(iso["original"]["mean_cosine"])
    np.testing.assert_array_equal(mats["original"], np.asarray(run.original_vectors()))


def test_buckets_fall_back_to_row_order_without_a_lexicon(tiny_bert_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    run = make_run(tmp_path / "r", tiny_bert_dir, original=rng.standard_normal((30522, 8)).astype(np.float32))
    res, _, labels = isotropy_of_run(run)
    assert res["buckets_source"] == "row-order"
    # BERT's specials ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103) come from the tokenizer.
    assert set(np.flatnonzero(labels == "special")) == {0, 100, 101, 102, 103}


def test_report_files_and_keys(roberta_run: tuple[RunDir, Path], tmp_path: Path) -> None:
    run, db = roberta_run
    rep = evaluate_run(
        run, db, wordsim=[DATA / "word-similarity" / "EN-RG-65.txt"], command="defemb eval report"
    )
    out = Path(rep.report_dir)
    assert out == run.path / "report"
    content = json.loads((out / "report.json").read_text())
    for key in (
        "run_id",
        "manifest",
        "isotropy",
        "wordsim",
        "glue",
        "summarization",
        "coverage",
        "plots",
        "commands",
    ):
        assert key in content
    assert content["manifest"]["model_family"] == "roberta"
    assert content["wordsim"]["EN-RG-65"]["pairs"] == 65
    assert set(content["wordsim"]["EN-RG-65"]["spearman"]) == {"original", DEFAULT_HOW, "replace", "abtt"}
    assert {w["name"] for w in content["wordsim_wins"]} == {DEFAULT_HOW, "replace", "abtt"}
    cov = {(r["bucket"], r["rule"]): r["tokens"] for r in content["coverage"]}
    assert sum(cov.values()) == 50265 - len(SPECIAL)
    assert cov[("rare", "uncovered")] > 0 and ("frequent", "exact") in cov
    for name in ("svd_scatter.png", "isotropy_by_bucket.png", "coverage.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "## Isotropy" in md and "## Word similarity" in md and "defemb eval report" in md
    assert "IsoScore rare" in md and f"Δ {DEFAULT_HOW}" in md and "beats original on" in md
    assert '"model_family": "roberta"' in md  # the manifest is in the Markdown
    assert "wordsim-EN-RG-65" in {r.name for r in load_results(run)}
    assert not list(out.glob(".*tmp"))  # nothing half-written left behind


def test_cli_isotropy_json_on_matrix(tmp_path: Path) -> None:
    from definitionemb.cli import cli

    rng = np.random.default_rng(1)
    w = rng.standard_normal((204, 6)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    res = CliRunner().invoke(cli, ["eval", "isotropy", "--matrix", str(tmp_path / "w.npy"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"matrix", "abtt"}
    assert set(out["matrix"]) == {"all", "frequent", "medium", "rare"}
    assert out["matrix"]["all"]["rows"] == 200 and out["matrix"]["rare"]["rows"] == 40
    assert out["matrix"]["all"]["isotropy"] == pytest.approx(isotropy(w[4:]), rel=1e-9)


def test_cli_run_commands_and_report(roberta_run: tuple[RunDir, Path]) -> None:
    from definitionemb.cli import cli

    run, db = roberta_run
    r = CliRunner()
    res = r.invoke(cli, ["eval", "isotropy", "--run", str(run.path), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.stdout)) == {"original", DEFAULT_HOW, "replace", "abtt"}
    rw = str(DATA / "word-similarity" / "EN-RW-STANFORD-head200.txt")
    res = r.invoke(cli, ["eval", "wordsim", "--run", str(run.path), "--dataset", rw, "--json"])
    assert res.exit_code == 0, res.output
    ws = json.loads(res.stdout)["sets"]["EN-RW-STANFORD-head200"]
    assert ws["pairs"] == 200 and 0 < ws["covered_pairs"] < 200
    res = r.invoke(cli, ["eval", "report", "--run", str(run.path), "--no-plots", "--json"])
    assert res.exit_code == 0, res.output
    assert "EN-RW-STANFORD-head200" in json.loads(res.stdout)["wordsim"]


def test_cli_errors_are_one_clean_line(tmp_path: Path) -> None:
    from definitionemb.cli import cli

    np.save(tmp_path / "bad.npy", np.full((10, 3), np.nan, dtype=np.float32))
    res = CliRunner().invoke(cli, ["eval", "isotropy", "--matrix", str(tmp_path / "bad.npy")])
    assert res.exit_code == 1 and "NaN" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["eval", "isotropy"])
    assert res.exit_code == 2 and "exactly one of" in res.output
    (tmp_path / "notarun").mkdir()
    res = CliRunner().invoke(cli, ["eval", "report", "--run", str(tmp_path / "notarun")])
    assert res.exit_code == 1 and "manifest.json" in res.output


def test_build_report_twice_replaces_atomically(roberta_run: tuple[RunDir, Path]) -> None:
    run, db = roberta_run
    a = build_report(run, db, plots=False).content
    b = build_report(run, db, plots=False).content
    assert a["isotropy"] == b["isotropy"]


def test_a_run_refuses_another_lexicon(roberta_run: tuple[RunDir, Path], tmp_path: Path) -> None:
    from definitionemb.embedder.errors import RunMismatch
    from definitionemb.evaluation.rows import run_buckets

    run, db = roberta_run
    other = make_run(
        tmp_path / "other",
        Path(run.manifest()["model"]),
        original=np.asarray(run.original_vectors()),
    )
    other.update_manifest(lexicon_fingerprint="0123456789abcdef")
    with pytest.raises(RunMismatch, match="built from lexicon"):
        run_buckets(other, db)


def test_cli_isotropy_of_a_model_folder(tiny_bert_dir: Path) -> None:
    from definitionemb.cli import cli

    res = CliRunner().invoke(cli, ["eval", "isotropy", "--model", str(tiny_bert_dir), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"original", "abtt"}
    assert out["original"]["all"]["rows"] == 30522 - 5  # the tokenizer's five special tokens left out
    assert out["abtt"]["all"]["mean_cosine"] < out["original"]["all"]["mean_cosine"] + 1e-9


def test_build_report_opens_the_lexicon_once(
    roberta_run: tuple[RunDir, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buckets, the rare selection, coverage: one binding of the run to its lexicon, one connection."""
    from definitionemb import lexicon

    run, _ = roberta_run
    real = lexicon.db.connect
    opened: list[str] = []

    def counting(path: object, *args: object, **kwargs: object) -> object:
        opened.append(str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lexicon.db, "connect", counting)
    rep = build_report(run, rows="rare", plots=False)  # the lexicon the manifest records
    assert rep.content["isotropy"]["buckets_source"].startswith("lexicon:")
    assert rep.content["coverage"] and rep.content["isotropy"]["rows"] == "rare"
    assert opened == [str(run.lexicon_path())]
