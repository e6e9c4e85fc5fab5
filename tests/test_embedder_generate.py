"""Generation: token rows, sense vectors, free-text definitions, refusals."""
# ruff: noqa: F811  (fixtures imported from test_embedder_support are named by the tests that use them)

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from definitionemb.embedder.errors import EmbedderError, NonFiniteOutput, RunMismatch
from definitionemb.embedder.rundir import RunDir
from test_embedder_support import base_lexicon, bert_lexicon, lexicon_with_one_more_sense, tiny_config  # noqa: F401

from definitionemb import embedder


@pytest.fixture(scope="module")
def generated(bert_lexicon: Path, tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("gen") / "run"
    embedder.train(tiny_config(bert_lexicon, tiny_bert_dir, run, steps=2, eval_every=2))
    embedder.generate(
        embedder.GenerateConfig(
            db=str(bert_lexicon), run=str(run), senses=True, smoothing="off", progress=False
        )
    )
    return run


def test_token_rows_cover_exactly_the_aligned_tokens(generated: Path, bert_lexicon: Path) -> None:
    rd = RunDir.open(generated)
    m = rd.manifest()
    from definitionemb.lexicon.db import connect

    con = connect(bert_lexicon)
    aligned = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT token_id FROM token_definition WHERE tokenizer_id = ? AND bucket <> 'special'",
            [m["tokenizer_id"]],
        ).fetchall()
    }
    n_senses = con.execute("SELECT count(*) FROM sense").fetchone()[0]  # type: ignore[index]
    con.close()
    covered = rd.covered_mask()
    assert set(np.flatnonzero(covered).tolist()) == aligned
    tv, orig = rd.token_vectors(), rd.original_vectors()
    assert tv.dtype == np.float32 and tv.shape == (30522, 32)
    assert np.array_equal(tv[~covered], orig[~covered])
    assert not np.allclose(tv[covered], orig[covered])
    assert rd.sense_vectors().shape == (n_senses, 32) and rd.sense_ids().dtype == np.int64
    assert m["generate"]["covered_tokens"] == len(aligned)


def test_token_row_is_the_first_definition_through_the_regressor(generated: Path, bert_lexicon: Path) -> None:
    from definitionemb.lexicon.db import connect

    con = connect(bert_lexicon)
    tid, pos, gloss = con.execute(
        "SELECT token_id, pos, gloss FROM token_definition WHERE rank = 1 AND piece = 'water' AND tokenizer_id = ?",
        [RunDir.open(generated).manifest()["tokenizer_id"]],
    ).fetchone()  # type: ignore[misc]
    con.close()
    vec = embedder.encode_definitions(generated, [gloss], [pos], device="cpu")
    assert np.allclose(vec[0], RunDir.open(generated).token_vectors()[tid], atol=1e-5)


def test_neighbour_step_moves_rows_as_its_choice_says(
    generated: Path, bert_lexicon: Path, tmp_path: Path
) -> None:
    from definitionemb.embedder.examples import build_examples
    from definitionemb.embedder.generator import _prompt_of
    from definitionemb.embedder.lexicon_io import fetch_definitions
    from definitionemb.embedder.smoothing import nearest_other, smoothed_rows

    run = tmp_path / "nb"
    shutil.copytree(generated, run)
    res = embedder.generate(
        embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), smoothing="auto", progress=False)
    )
    nb = RunDir.open(run).manifest()["generate"]["smoothing"]
    assert res.smoothing == nb and nb is not None
    assert {"k", "tau", "beta", "dev_tokens", "test_tokens", "scores", "curve"} <= set(nb)
    held = np.load(run / "heldout_tokens.npy")
    assert nb["dev_tokens"] + nb["test_tokens"] == len(held)
    # rebuild the rows from the plain run's per-definition predictions and the recorded choice
    rd = RunDir.open(generated)
    m = rd.manifest()
    defs = fetch_definitions(str(bert_lexicon), int(m["tokenizer_id"]), 1)
    _, tok, _ = embedder.checkpoint.load_regressor(generated, torch.device("cpu"))
    ex = build_examples(tok, _prompt_of(rd), defs)
    plain = embedder.encode_definitions(generated, list(defs.gloss), list(defs.pos), device="cpu")
    orig = rd.original_vectors()
    want = plain
    if nb["beta"] > 0:
        near = nearest_other(plain, ex.token_id, plain, ex.token_id, nb["k"])
        want = (1 - nb["beta"]) * plain + nb["beta"] * smoothed_rows(
            near, orig[ex.token_id], nb["k"], nb["tau"]
        )
    got = RunDir.open(run).token_vectors()
    from definitionemb.embedder.inference import mean_by_token

    uniq, rows = mean_by_token(ex.token_id, ex.rank, want, 1)
    assert np.allclose(got[uniq], rows, atol=1e-4)
    covered = rd.covered_mask()
    assert np.array_equal(got[~covered], orig[~covered])


def test_neighbour_step_defaults_to_the_runs_own(generated: Path, bert_lexicon: Path, tmp_path: Path) -> None:
    """GenerateConfig(smoothing=None) takes the run's TrainConfig.smoothing; an explicit value wins."""
    run = tmp_path / "own"
    shutil.copytree(generated, run)
    rd = RunDir.open(run)
    assert rd.manifest()["config"]["smoothing"] == "off"
    embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), progress=False))
    g = rd.manifest()["generate"]
    assert g["smoothing_mode"] == "off" and g["smoothing"] is None
    assert np.array_equal(rd.token_vectors(), RunDir.open(generated).token_vectors())

    rd.update_manifest(config={**rd.manifest()["config"], "smoothing": "auto"})
    embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), progress=False))
    g = rd.manifest()["generate"]
    assert g["smoothing_mode"] == "auto" and g["smoothing"] is not None

    embedder.generate(
        embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), smoothing="off", progress=False)
    )
    assert rd.manifest()["generate"]["smoothing"] is None
    assert np.array_equal(rd.token_vectors(), RunDir.open(generated).token_vectors())

    rd.update_manifest(config={k: v for k, v in rd.manifest()["config"].items() if k != "smoothing"})
    embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), progress=False))
    assert rd.manifest()["generate"]["smoothing_mode"] == "off"  # runs from before the field


def test_train_config_refuses_an_unknown_neighbour_mode() -> None:
    with pytest.raises(EmbedderError, match="smoothing must be"):
        embedder.TrainConfig(db="x", model="y", run="z", smoothing="on")


def test_encode_definitions_is_order_independent(generated: Path) -> None:
    texts = [
        "a domesticated animal",
        "the liquid that falls as rain, forming seas and rivers",
        "to move fast",
        "a building for living in, a home for a family of people",
        "red",
        "a very long definition " * 8,
    ]
    pos = ["noun", "noun", "verb", "noun", None, "noun"]
    a = embedder.encode_definitions(generated, texts, pos, batch_size=2, device="cpu")
    perm = np.random.default_rng(0).permutation(len(texts))
    b = embedder.encode_definitions(generated, [texts[i] for i in perm], [pos[i] for i in perm], batch_size=4)
    assert a.dtype == np.float32 and a.shape == (6, 32)
    assert np.allclose(a[perm], b, atol=1e-5)
    with pytest.raises(EmbedderError, match="pos has"):
        embedder.encode_definitions(generated, texts, pos[:2])


def test_nan_rows_are_refused_and_nothing_is_written(
    generated: Path, bert_lexicon: Path, tmp_path: Path
) -> None:
    from definitionemb.embedder.checkpoint import latest_checkpoint
    from safetensors.torch import load_file, save_file

    run = tmp_path / "nan"
    shutil.copytree(generated, run)
    (run / "token_vectors.npy").unlink()
    ck = latest_checkpoint(run)
    assert ck is not None
    st = load_file(str(ck / "model.safetensors"))
    st["head.weight"] = torch.full_like(st["head.weight"], float("nan"))
    save_file(st, str(ck / "model.safetensors"))
    with pytest.raises(NonFiniteOutput, match="NaN"):
        embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), progress=False))
    assert not (run / "token_vectors.npy").exists()
    assert not list(run.glob(".token_vectors*"))


def test_mismatched_lexicon_or_tokenizer_is_refused(
    generated: Path, base_lexicon: Path, bert_lexicon: Path, tmp_path: Path
) -> None:
    other = lexicon_with_one_more_sense(bert_lexicon, tmp_path)
    with pytest.raises(RunMismatch, match="lexicon"):
        embedder.generate(embedder.GenerateConfig(db=str(other), run=str(generated), progress=False))
    run = tmp_path / "swapped"
    shutil.copytree(generated, run)
    tok_dir = run / "regressor" / "tokenizer"
    shutil.rmtree(tok_dir)
    shutil.copytree(Path(__file__).parent / "data" / "roberta-bart", tok_dir)
    from transformers import RobertaTokenizerFast

    RobertaTokenizerFast.from_pretrained(str(tok_dir)).save_pretrained(str(tok_dir))
    with pytest.raises(RunMismatch, match="tokenizer"):
        embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(run), progress=False))
    with pytest.raises(EmbedderError, match="manifest"):
        embedder.generate(embedder.GenerateConfig(db=str(bert_lexicon), run=str(tmp_path), progress=False))
