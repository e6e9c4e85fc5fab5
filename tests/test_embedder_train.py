"""Training on tiny random BERT / RoBERTa / BART with the real tokenizers over a real lexicon."""
# ruff: noqa: F811  (fixtures imported from test_embedder_support are named by the tests that use them)

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from definitionemb.embedder.checkpoint import latest_checkpoint
from definitionemb.embedder.errors import EmbedderError, RunMismatch
from definitionemb.embedder.models import Regressor, load_pretrained, set_trainable
from definitionemb.embedder.rundir import RunDir
from definitionemb.embedder.trainer import make_scheduler, regression_loss
from test_embedder_support import base_lexicon, bert_lexicon, roberta_lexicon, tiny_config  # noqa: F401

from definitionemb import embedder

MANIFEST_KEYS = {
    "run_id",
    "model",
    "model_family",
    "model_sha256",
    "tokenizer_sha256",
    "tokenizer_id",
    "lexicon_db",
    "lexicon_fingerprint",
    "vocab_size",
    "dim",
    "seed",
    "config",
    "versions",
    "timings",
}


def _state(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    ck = latest_checkpoint(run)
    assert ck is not None
    return load_file(str(ck / "model.safetensors"))


@pytest.fixture(scope="module")
def bert_run(bert_lexicon: Path, tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("bert-run") / "run"
    embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, run))
    return run


def test_bert_run_folder_and_manifest(bert_run: Path, bert_lexicon: Path, tiny_bert_dir: Path) -> None:
    rd = RunDir.open(bert_run)
    m = rd.manifest()
    assert set(m) >= MANIFEST_KEYS
    assert m["model_family"] == "bert" and m["vocab_size"] == 30522 and m["dim"] == 32
    assert m["lexicon_db"].startswith("../") and rd.lexicon_path() == bert_lexicon.resolve()
    from definitionemb.lexicon.tokenizers import load_vocab

    assert m["tokenizer_sha256"] == load_vocab(str(tiny_bert_dir)).sha256
    orig = rd.original_vectors()
    model, _, _ = load_pretrained(tiny_bert_dir)
    assert np.array_equal(orig, model.get_input_embeddings().weight.detach().numpy())
    assert m["train"]["steps"] == 6 and math.isfinite(m["train"]["train_loss"])
    held = m["train"]["heldout"]
    assert held["tokens"] > 0 and -1 <= held["cosine"] <= 1 and -1 <= held["baseline_cosine"] <= 1


def test_a_local_model_given_relative_is_found_from_anywhere(
    bert_lexicon: Path, tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swap, export and fine-tuning load the base model from the manifest, from any working folder."""
    monkeypatch.chdir(tiny_bert_dir.parent)
    run = tmp_path / "rel"
    embedder.train(tiny_config(bert_lexicon, Path(tiny_bert_dir.name), run, steps=1, eval_every=1))
    rd = RunDir.open(run)
    # recorded absolute (the model is outside the run's work folder), found from any folder
    assert rd.manifest()["model"] == rd.model_path() == str(tiny_bert_dir.resolve())
    monkeypatch.chdir(tmp_path)
    assert rd.model_path() == str(tiny_bert_dir.resolve())


def test_refuses_to_overwrite_a_trained_run(bert_run: Path, bert_lexicon: Path, tiny_bert_dir: Path) -> None:
    with pytest.raises(EmbedderError, match="--resume"):
        embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, bert_run))


def test_resume_matches_uninterrupted(bert_lexicon: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, whole, ckpt_every=100))
    split = tmp_path / "split"
    first = embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, split, stop_after=4, ckpt_every=100))
    assert first.steps == 4
    second = embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, split, resume=True, ckpt_every=100))
    assert second.steps == 6
    again = embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, split, resume=True, ckpt_every=100))
    assert again.steps == 6 and math.isfinite(again.heldout["cosine"]) and math.isfinite(again.train_loss)
    a, b = _state(whole), _state(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_refuses_another_lexicon(
    bert_run: Path, base_lexicon: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from test_embedder_support import DEFS_TSV, align, lexicon_with_one_more_sense

    other = lexicon_with_one_more_sense(base_lexicon, tmp_path)
    align(other, tiny_bert_dir)
    assert DEFS_TSV.exists()
    with pytest.raises(RunMismatch, match="lexicon_fingerprint"):
        embedder.train(tiny_config(other, tiny_bert_dir, bert_run, resume=True, steps=8))


def test_roberta_trains_everything_and_loss_is_finite(
    roberta_lexicon: Path, tiny_roberta_dir: Path, tmp_path: Path
) -> None:
    res = embedder.train(
        tiny_config(
            roberta_lexicon, tiny_roberta_dir, tmp_path / "r", loss="mse", head_init="random", lr=1e-3
        )
    )
    assert res.steps == 6 and math.isfinite(res.train_loss) and res.tokens_per_s > 0
    st = _state(tmp_path / "r")
    orig = np.load(tmp_path / "r" / "original_vectors.npy")
    emb = st["backbone.embeddings.word_embeddings.weight"].numpy()
    assert not np.array_equal(emb, orig)  # RoBERTa default: the embedding matrix trains too
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["trainable"]["policy"] == "all" and m["model_family"] == "roberta"


def test_bart_keeps_shared_embeddings_frozen(
    roberta_lexicon: Path, tiny_bart_dir: Path, tmp_path: Path
) -> None:
    res = embedder.train(
        tiny_config(roberta_lexicon, tiny_bart_dir, tmp_path / "b", lr=1e-3, multipiece_words=True)
    )
    assert math.isfinite(res.train_loss)
    data = json.loads((tmp_path / "b" / "manifest.json").read_text())["data"]
    # the 40 multi-piece words of the test lexicon add one example per piece on top of the aligned tokens
    assert data["train_examples"] > data["aligned_tokens"] - data["heldout_tokens"] + 40
    st = _state(tmp_path / "b")
    orig = np.load(tmp_path / "b" / "original_vectors.npy")
    shared = [k for k in st if k.endswith("shared.weight") or k.endswith("embed_tokens.weight")]
    assert shared and all(np.array_equal(st[k].numpy(), orig) for k in shared)
    model, _, _ = load_pretrained(tiny_bart_dir)
    before = model.state_dict()["encoder.layers.0.fc1.weight"]
    assert not torch.equal(st["backbone.encoder.layers.0.fc1.weight"], before)
    g = embedder.generate(
        embedder.GenerateConfig(db=str(roberta_lexicon), run=str(tmp_path / "b"), progress=False)
    )
    assert g.tokens > 500 and g.vocab_size == 50265


def test_head_init_and_trainable_policies(tiny_bart_dir: Path) -> None:
    model, _, fam = load_pretrained(tiny_bart_dir)
    torch.manual_seed(0)
    reg = Regressor(model, fam)
    w = reg.head.weight.detach()
    assert reg.head.bias is None and w.shape == (32, 32)
    assert abs(float(w.std()) - 32**-0.5) < 0.03
    info = set_trainable(reg, "auto")
    assert info["policy"] == "no-embeddings" and not reg.input_embeddings().weight.requires_grad
    set_trainable(reg, "head")
    assert [n for n, p in reg.named_parameters() if p.requires_grad] == ["head.weight"]


def test_reference_loss_scale_and_schedules() -> None:
    pred = torch.zeros(3, 4)
    tgt = torch.ones(3, 4)
    loss, mse = regression_loss(pred, tgt, "mse")
    assert float(loss) == pytest.approx(100.0)  # sum sq err / d × 100, mean over targets
    both, mse2 = regression_loss(torch.ones(3, 4), 2 * torch.ones(3, 4), "mse+cos")
    assert float(mse2) == pytest.approx(100.0) and float(both) == pytest.approx(100.0, abs=1e-4)
    from definitionemb.embedder.config import TrainConfig

    p = torch.nn.Parameter(torch.zeros(1))
    for schedule, at_end in (("inverse_sqrt", math.sqrt(10 / 100)), ("cosine", 0.05), ("constant", 1.0)):
        opt = torch.optim.SGD([p], lr=1.0)
        cfg = TrainConfig(db="x", model="y", run="z", steps=100, warmup=10, schedule=schedule)
        sched = make_scheduler(opt, cfg)
        lrs = []
        for _ in range(100):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
        assert lrs[-1] == pytest.approx(at_end, rel=0.05)


def test_rundir_import_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, embedder.rundir, embedder; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
