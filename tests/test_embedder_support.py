"""Shared pieces of the embedder tests: a real lexicon (lexicon.build + lexicon.align) over real glosses.

`tests/data/embedder/definitions.tsv` holds 826 real Open Dictionary glosses (400 frequent single-piece
words, 40 multi-piece words); see tests/data/README.md. Imported by the other test_embedder_* modules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
DEFS_TSV = DATA / "embedder" / "definitions.tsv"


def build_lexicon(path: Path) -> Path:
    from definitionemb import lexicon

    lexicon.build(str(path), [f"tsv:{DEFS_TSV}"], progress=False)
    return path


def align(db: Path, model_dir: Path, frequencies: Path | None = None) -> None:
    from definitionemb.lexicon.aligner import align as _align

    _align(str(db), str(model_dir), frequencies=str(frequencies) if frequencies else None, progress=False)


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


def tiny_config(db: Path, model: Path, run: Path, **kw: object):  # type: ignore[no-untyped-def]
    """A fast config for tiny random models: few steps, small batches, no progress bars."""
    from definitionemb.embedder.config import TrainConfig

    base: dict[str, object] = dict(
        db=str(db),
        model=str(model),
        run=str(run),
        steps=6,
        batch_tokens=512,
        warmup=2,
        eval_every=3,
        ckpt_every=3,
        ridge_examples=300,
        device="cpu",
        progress=False,
        seed=0,
        heldout_frac=0.1,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]
