"""The README's Python sample runs as written, on test data, with a short training recipe."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
# Only the training length changes: the preset's 150 steps and 20 000 ridge examples take minutes here.
QUICK = 'embedder.preset("quick", '
SHORT = 'embedder.preset("quick", steps=2, batch_tokens=512, eval_every=2, ckpt_every=2, ridge_examples=100, '


def readme_sample() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (sample,) = [
        b for b in blocks if b.startswith("from definitionemb import lexicon, embedder, index, evaluation")
    ]
    return sample


def test_the_sample_uses_the_public_api() -> None:
    sample = readme_sample()
    assert QUICK in sample
    for call in (
        "lexicon.build",
        "lexicon.align",
        "embedder.train",
        "index.neighbors",
        "evaluation.evaluate_run",
    ):
        assert call in sample


@pytest.mark.slow
def test_readme_python_sample_runs(
    tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The paths the sample names, pointing at test data and a tiny model with MiniLM's vocabulary.
    (tmp_path / "open-dictionary").mkdir()
    os.symlink(DATA / "lexicon-align" / "open-dictionary" / "api", tmp_path / "open-dictionary" / "api")
    (tmp_path / "models").mkdir()
    os.symlink(tiny_bert_dir, tmp_path / "models" / "minilm")
    (tmp_path / "word-similarity").mkdir()
    os.symlink(
        DATA / "eval" / "word-similarity" / "EN-RW-STANFORD-head200.txt",
        tmp_path / "word-similarity" / "EN-RW-STANFORD.txt",
    )
    script = tmp_path / "sample.py"
    script.write_text(readme_sample().replace(QUICK, SHORT), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    frames = re.findall(r"shape: \((\d+), (\d+)\)", out)
    assert frames[:2] == [("10", "12"), ("5", "7")], out  # 2 queries x k=5 neighbours; k=5 reverse hits
    assert "slates on ro" in out  # the reverse-dictionary frame carries its text (polars cuts it)
    report = tmp_path / "runs" / "m1" / "report"
    assert (report / "report.json").is_file() and (report / "report.md").is_file()
