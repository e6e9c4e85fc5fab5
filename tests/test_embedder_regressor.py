"""The stronger regressor: pooling heads, sense averaging, the fixed held-out split, frozen probes, presets."""
# ruff: noqa: F811  (fixtures imported from test_embedder_support are named by the tests that use them)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from definitionemb.embedder.checkpoint import load_regressor
from definitionemb.embedder.config import PRESETS, TrainConfig, preset
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.examples import heldout_tokens
from definitionemb.embedder.inference import mean_by_token
from definitionemb.embedder.models import Regressor, load_pretrained
from definitionemb.embedder.rundir import RunDir
from definitionemb.embedder.trainer import ridge_fit
from test_embedder_support import base_lexicon, bert_lexicon, tiny_config  # noqa: F401

from definitionemb import embedder


def test_mean_by_token_averages_the_top_k_senses() -> None:
    token = np.array([5, 5, 5, 2, 9, 9])
    rank = np.array([1, 2, 3, 1, 2, 4])  # token 9 has no rank-1 sense left
    preds = np.array([[1.0, 0], [3, 0], [8, 0], [0, 2], [0, 4], [0, 6]], dtype=np.float32)
    ids, rows = mean_by_token(token, rank, preds, 1)
    assert ids.tolist() == [2, 5, 9]
    assert rows.tolist() == [[0, 2], [1, 0], [0, 4]]  # 9 falls back to its best rank
    _, rows2 = mean_by_token(token, rank, preds, 2)
    assert rows2.tolist() == [[0, 2], [2, 0], [0, 4]]
    _, rows3 = mean_by_token(token, rank, preds, 3)
    assert rows3[1].tolist() == [4, 0]  # (1 + 3 + 8) / 3
    _, rows9 = mean_by_token(token, rank, preds, 9)
    assert rows9[2].tolist() == [0, 5]
    with pytest.raises(EmbedderError):
        mean_by_token(token, rank, preds, 0)


def test_heldout_tokens_depend_on_the_split_seed_alone() -> None:
    ids = np.repeat(np.arange(400), 2)
    a = heldout_tokens(ids, 0.1, 1000, 0)
    assert len(a) == 40 and np.array_equal(a, heldout_tokens(ids, 0.1, 1000, 0))
    assert not np.array_equal(a, heldout_tokens(ids, 0.1, 1000, 1))
    # more senses per token (more rows per token) leave the split unchanged
    assert np.array_equal(a, heldout_tokens(np.repeat(np.arange(400), 5), 0.1, 1000, 0))
    capped = heldout_tokens(ids, 0.1, 15, 0)
    assert len(capped) == 15 and set(capped) <= set(a)


def test_ridge_fit_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    w_true = rng.normal(size=(8, 3))
    w, lam = ridge_fit(x, x @ w_true, 1e-6)
    assert lam > 0 and np.allclose(w, w_true, atol=1e-3)


def test_pooling_heads_read_the_right_features(tiny_bert_dir: Path) -> None:
    bb, _, fam = load_pretrained(tiny_bert_dir)
    batch = {
        "input_ids": torch.tensor([[101, 103, 2000, 102, 0], [101, 103, 2001, 2002, 102]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]),
        "target_pos": torch.tensor([1, 1]),
    }
    both = Regressor(bb, fam, "target+mean").eval()
    assert both.head.weight.shape == (32, 64)
    with torch.no_grad():
        target, mean = both.pooled(**batch)
        states = bb(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        assert torch.allclose(target, states[:, 1])
        assert torch.allclose(mean[0], states[0, :4].mean(0), atol=1e-6)  # padding left out
        assert torch.allclose(both.features(**batch), torch.cat([target, mean], -1))
        assert torch.allclose(Regressor(bb, fam, "mean").features(**batch), mean)
    with pytest.raises(EmbedderError, match="pooling"):
        Regressor(bb, fam, "cls")


def test_presets_exist_and_validate() -> None:
    assert {"quick", "standard", "gpu", "paper"} <= set(PRESETS)
    for name in PRESETS:
        cfg = preset(name, db="x", model="y", run="z")
        assert cfg.preset == name and TrainConfig.from_dict(cfg.to_dict()) == cfg
    quick, standard, gpu = (preset(n, db="x", model="y", run="z") for n in ("quick", "standard", "gpu"))
    # the longer presets see more tokens than the quick one, and the GPU one the most
    seen = [c.steps * c.batch_tokens * c.grad_accum for c in (quick, standard, gpu)]
    assert seen == sorted(seen) and seen[0] < seen[1] < seen[2]
    assert gpu.device in ("auto", "cuda")
    # An override of None keeps the preset's value (the pipeline passes its unset fields as None).
    assert preset("quick", db="x", model="y", run="z", topk=None).topk == PRESETS["quick"]["topk"] > 1
    assert preset("quick", db="x", model="y", run="z", topk=3).topk == 3
    # the neighbour step: on where it won the development data, and an explicit value wins
    assert (quick.smoothing, standard.smoothing, gpu.smoothing) == ("off", "auto", "auto")
    assert preset("standard", db="x", model="y", run="z", smoothing="off").smoothing == "off"
    with pytest.raises(EmbedderError, match="pooling"):
        TrainConfig(db="x", model="y", run="z", pooling="cls")


@pytest.fixture(scope="module")
def pooled_run(bert_lexicon: Path, tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("pooled") / "run"
    embedder.train(
        tiny_config(
            bert_lexicon,
            tiny_bert_dir,
            run,
            steps=2,
            eval_every=2,
            pooling="target+mean",
            senses_per_token=2,
            topk=2,
        )
    )
    return run


def test_run_scores_probes_and_sense_means_on_its_split(pooled_run: Path) -> None:
    m = RunDir.open(pooled_run).manifest()
    held = m["train"]["heldout"]
    assert {"cosine", "cosine_top2", "cosine_top3", "baseline_cosine"} <= set(held)
    probes = m["init"]["probes"]
    assert set(probes) == {"ridge_target", "ridge_mean", "ridge_target+mean"}
    for p in probes.values():
        assert p["tokens"] == held["tokens"] and -1 <= p["cosine"] <= 1
    tokens = np.load(pooled_run / "heldout_tokens.npy")
    assert len(tokens) == held["tokens"] == m["data"]["heldout_tokens"]


def test_split_is_shared_by_runs_with_other_seeds_and_senses(
    pooled_run: Path, bert_lexicon: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, other, steps=1, seed=7, probes=False))
    assert np.array_equal(np.load(other / "heldout_tokens.npy"), np.load(pooled_run / "heldout_tokens.npy"))
    moved = tmp_path / "moved"
    embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, moved, steps=1, split_seed=3, probes=False))
    assert not np.array_equal(np.load(moved / "heldout_tokens.npy"), np.load(other / "heldout_tokens.npy"))


def test_pooled_run_reloads_and_generates_with_its_topk(pooled_run: Path, bert_lexicon: Path) -> None:
    model, _, meta = load_regressor(pooled_run)
    assert meta["pooling"] == model.pooling == "target+mean" and model.head.weight.shape == (32, 64)
    g = embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(pooled_run), progress=False))
    m = RunDir.open(pooled_run).manifest()
    assert g.tokens > 300 and m["generate"]["topk"] == 2
    first = embedder.generate(
        embedder.GenerateConfig(db=str(bert_lexicon), run=str(pooled_run), topk=1, progress=False)
    )
    assert first.tokens == g.tokens and RunDir.open(pooled_run).manifest()["generate"]["topk"] == 1
