"""A short run on the real all-MiniLM-L6-v2 weights: the quick recipe must beat the definition-mean baseline."""
# ruff: noqa: F811  (fixtures imported from test_embedder_support are named by the tests that use them)

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_embedder_support import base_lexicon, on_cpu  # noqa: F401

from definitionemb import embedder


@pytest.mark.slow
def test_minilm_quick_run_beats_baseline(base_lexicon: Path, minilm_dir: Path, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "lex.duckdb"
    shutil.copy(base_lexicon, db)
    run = tmp_path / "run"
    cfg = embedder.preset("quick", **on_cpu(db, minilm_dir, run), steps=3, eval_every=3, heldout_frac=0.2)
    res = embedder.train(cfg)
    h = res.heldout
    assert res.steps == 3 and h["tokens"] >= 80 and math.isfinite(res.train_loss)
    # Frozen MiniLM features + the ridge-initialised head carry the definition's meaning: better than the mean
    # of the definition's own rows, which on these 400 frequent words is a strong baseline.
    assert h["cosine"] > h["baseline_cosine"], (h, res.history)
    g = embedder.generate(embedder.GenerateConfig(db=str(db), run=str(run), progress=False))
    rd = embedder.RunDir.open(run)
    tv, orig, cov = rd.token_vectors(), rd.original_vectors(), rd.covered_mask()
    assert g.tokens == int(cov.sum()) > 400 and tv.shape == (30522, 384)
    cos = (tv[cov] * orig[cov]).sum(1) / np.linalg.norm(tv[cov], axis=1) / np.linalg.norm(orig[cov], axis=1)
    assert float(cos.mean()) > 0.2  # generated rows live near their tokens' own rows
