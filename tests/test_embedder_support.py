"""Shared pieces of the embedder tests: a real lexicon (lexicon.build + lexicon.align) over real glosses.

`tests/data/embedder/definitions.tsv` holds 826 real Open Dictionary glosses (400 frequent single-piece
words, 40 multi-piece words); see tests/data/README.md. Imported by the other test_embedder_* modules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from model_support import DEFINITIONS_TSV as DEFS_TSV


def build_lexicon(path: Path) -> Path:
    from definitionemb import lexicon

    lexicon.build(str(path), [f"tsv:{DEFS_TSV}"], progress=False)
    return path


def align(db: Path, model_dir: Path, frequencies: Path | None = None) -> None:
    from definitionemb.lexicon.aligner import align as _align

    _align(str(db), str(model_dir), frequencies=str(frequencies) if frequencies else None, progress=False)


def lexicon_with_one_more_sense(src: Path, folder: Path) -> Path:
    """`folder`/other.duckdb: a copy of the lexicon `src` with one more sense built in (zyzzyva), so
    another lexicon for a run made on `src`."""
    from definitionemb import lexicon

    other = folder / "other.duckdb"
    shutil.copy(src, other)
    extra = folder / "extra.tsv"
    extra.write_text("key\tpos\tdefinition\nzyzzyva\tnoun\tA tropical weevil.\n")
    lexicon.build(str(other), [f"tsv:{extra}"], progress=False)
    return other


@pytest.fixture(scope="session")
def base_lexicon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lexicon(tmp_path_factory.mktemp("lexicon") / "lexicon.duckdb")


@pytest.fixture(scope="session")
def bert_lexicon(base_lexicon: Path, tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("lex-bert") / "lexicon.duckdb"
    shutil.copy(base_lexicon, db)
    align(db, tiny_bert_dir)
    return db


@pytest.fixture(scope="session")
def roberta_lexicon(
    base_lexicon: Path,
    tiny_roberta_dir: Path,
    roberta_dict_txt: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Aligned to the RoBERTa/BART vocabulary, which tiny_roberta_dir and tiny_bart_dir share."""
    db = tmp_path_factory.mktemp("lex-roberta") / "lexicon.duckdb"
    shutil.copy(base_lexicon, db)
    align(db, tiny_roberta_dir, roberta_dict_txt)
    return db


def on_cpu(db: Path, model: Path, run: Path) -> dict[str, object]:
    """The settings every training test gives: its lexicon, model and run folder, the CPU, small batches
    (512 tokens), no progress bars."""
    return dict(db=str(db), model=str(model), run=str(run), batch_tokens=512, device="cpu", progress=False)


def tiny_config(db: Path, model: Path, run: Path, **kw: object):  # type: ignore[no-untyped-def]
    """A fast config for tiny random models: few steps, small batches, no progress bars."""
    from definitionemb.embedder.config import TrainConfig

    base: dict[str, object] = dict(
        on_cpu(db, model, run),
        steps=6,
        warmup=2,
        eval_every=3,
        ckpt_every=3,
        ridge_examples=300,
        seed=0,
        heldout_frac=0.1,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def trained_run(work: Path, model: Path, *, senses: bool = False, **train: object) -> tuple[Path, Path]:
    """In `work`: the real lexicon aligned to `model`, a tiny_config run on it (`train` overrides its
    settings) and the run's generated rows, sense vectors too with `senses`. Returns (run folder, lexicon)."""
    from definitionemb.embedder.config import GenerateConfig

    from definitionemb import embedder

    db = build_lexicon(work / "lexicon.duckdb")
    align(db, model)
    run = work / "run"
    embedder.train(tiny_config(db, model, run, **train))
    embedder.generate(GenerateConfig(db=str(db), run=str(run), senses=senses, device="cpu", progress=False))
    return run, db
