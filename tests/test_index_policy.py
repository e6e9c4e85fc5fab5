"""Row policies: the arithmetic of replace / mix / dirmix / normmix, masks, parsing, and policies through exports
(tied weights, metadata, model card, the sentence-transformers pipeline of the real MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from definitionemb.index.errors import SelectError
from definitionemb.index.exporter import export
from definitionemb.index.policy import (
    DEFAULT_HOW,
    How,
    RowPolicy,
    apply_how,
    blend,
    default_policy,
    parse_how,
    policy_matrix,
)
from index_support import SPECIAL, make_lexicon, make_run, roberta_pieces
from safetensors import safe_open


def _rows(n: int = 40, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    o = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.5, 3.0, (n, 1)).astype(np.float32)
    g = rng.standard_normal((n, d)).astype(np.float32) * 0.3
    return o, g


def test_mix_is_exactly_the_weighted_sum() -> None:
    o, g = _rows()
    for a in (0.0, 0.2, 0.5, 1.0):
        want = (1 - a) * o.astype(np.float64) + a * g.astype(np.float64)
        np.testing.assert_allclose(blend(o, g, f"mix:{a}"), want.astype(np.float32), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(blend(o, g, "replace"), g)
    np.testing.assert_allclose(blend(o, g, "mix:0"), o, rtol=1e-6)


def test_dirmix_keeps_the_norm_and_mixes_directions() -> None:
    o, g = _rows()
    out = blend(o, g, "dirmix:0.3").astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(o, axis=1), rtol=1e-5)
    uo = o / np.linalg.norm(o, axis=1, keepdims=True)
    ug = g / np.linalg.norm(g, axis=1, keepdims=True)
    d = 0.7 * uo + 0.3 * ug
    want = d / np.linalg.norm(d, axis=1, keepdims=True) * np.linalg.norm(o, axis=1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blend(o, g, "dirmix:0"), o, rtol=1e-5, atol=1e-6)
    ends = blend(o, g, "dirmix:1").astype(np.float64)  # g's direction, o's length
    np.testing.assert_allclose(ends, ug * np.linalg.norm(o, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    # a zero original row stays zero; opposite unit rows at α = 0.5 cancel and keep the original
    z = blend(np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32), "dirmix:0.5")
    np.testing.assert_array_equal(z, np.zeros((1, 3)))
    x = np.array([[1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(blend(x, -x, "dirmix:0.5"), x)


def _cosines(w: np.ndarray) -> np.ndarray:
    u = w / np.linalg.norm(w, axis=1, keepdims=True)
    return u @ u.T


def test_normmix_points_where_mix_points_with_the_original_length() -> None:
    o, g = _rows()
    out = blend(o, g, "normmix:0.45").astype(np.float64)
    mixed = blend(o, g, "mix:0.45").astype(np.float64)
    no = np.linalg.norm(o, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1, keepdims=True), no, rtol=1e-5)
    np.testing.assert_allclose(
        out, mixed / np.linalg.norm(mixed, axis=1, keepdims=True) * no, rtol=1e-5, atol=1e-6
    )
    # every cosine between two rows is the plain mix's: a word-similarity score cannot tell them apart
    np.testing.assert_allclose(_cosines(out), _cosines(mixed), atol=1e-5)
    np.testing.assert_allclose(blend(o, g, "normmix:0"), o, rtol=1e-5, atol=1e-6)
    ends = blend(o, g, "normmix:1").astype(np.float64)  # g's direction, o's length
    np.testing.assert_allclose(ends, g / np.linalg.norm(g, axis=1, keepdims=True) * no, rtol=1e-5, atol=1e-6)
    x = np.array([[1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(blend(x, -x, "normmix:0.5"), x)  # cancelled out: the original stays
    np.testing.assert_array_equal(blend(np.zeros((1, 2), np.float32), x, "normmix:0.5"), np.zeros((1, 2)))


def test_masks_leave_other_rows_alone() -> None:
    o, g = _rows()
    mask = np.zeros(len(o), dtype=bool)
    mask[[1, 5, 9]] = True
    out = apply_how(o, g, mask, "mix:0.25")
    np.testing.assert_array_equal(out[~mask], o[~mask])
    np.testing.assert_allclose(out[mask], 0.75 * o[mask] + 0.25 * g[mask], rtol=1e-6)
    with pytest.raises(SelectError, match="boolean"):
        apply_how(o, g, mask.astype(int), "replace")
    with pytest.raises(SelectError, match="same|shape"):
        blend(o, g[:, :3], "replace")


def test_parsing_and_spelling() -> None:
    assert str(parse_how("dirmix:0.20")) == "dirmix:0.2" and parse_how("replace").alpha == 1.0
    assert parse_how(" normmix:0.450 ") == How("normmix", 0.45)
    for bad, msg in (
        ("mix", "needs a weight"),
        ("mix:1.5", r"\[0, 1\]"),
        ("replace:0.5", "no weight"),
        ("blend:0.2", "unknown"),
    ):
        with pytest.raises(SelectError, match=msg):
            parse_how(bad)
    p = RowPolicy("rare", "mix:0.50")
    assert p.how == "mix:0.5" and p.label == "rare mix:0.5" and p.spelling == "--rows rare --how mix:0.5"
    assert (
        RowPolicy().label == DEFAULT_HOW
        and default_policy().spelling == f"--rows covered --how {DEFAULT_HOW}"
    )
    assert RowPolicy("task:/data/cola/train.tsv:0.2", "replace").label == "task:train.tsv:0.2 replace"
    with pytest.raises(SelectError, match="unknown selection"):
        RowPolicy("frequent", "replace")


@pytest.fixture()
def bert_run(tmp_path: Path, tiny_bert_dir: Path):
    with safe_open(str(tiny_bert_dir / "model.safetensors"), "np") as f:
        original = f.get_tensor("bert.embeddings.word_embeddings.weight").astype(np.float32)
    covered = np.random.default_rng(3).random(original.shape[0]) < 0.3
    covered[:5] = False
    return make_run(tmp_path / "run", original, covered, model=str(tiny_bert_dir), family="bert")


def test_default_export_is_the_shipped_policy(bert_run, tmp_path: Path) -> None:
    out = tmp_path / "npy"
    res = export(bert_run, "npy", None, out)
    meta = json.loads((out / "export.json").read_text())
    assert (res.rows, res.how) == ("covered", DEFAULT_HOW) and meta["policy"] == default_policy().spelling
    o = np.asarray(bert_run.original_vectors(), dtype=np.float64)
    g = np.asarray(bert_run.token_vectors(), dtype=np.float64)
    mask = np.asarray(bert_run.covered_mask())
    method, a = DEFAULT_HOW.split(":")[0], float(DEFAULT_HOW.split(":")[1])
    om, gm = o[mask], g[mask]
    want = o.copy()
    if method == "mix":
        want[mask] = (1 - a) * om + a * gm
    else:
        no = np.linalg.norm(om, axis=1, keepdims=True)
        d = (1 - a) * om / no + a * gm / np.linalg.norm(gm, axis=1, keepdims=True)
        want[mask] = d / np.linalg.norm(d, axis=1, keepdims=True) * no
    np.testing.assert_allclose(np.load(out / "matrix.npy"), want, rtol=1e-5, atol=1e-6)
    matrix, m2 = policy_matrix(bert_run, None, RowPolicy("covered", DEFAULT_HOW))
    np.testing.assert_array_equal(m2, mask)
    np.testing.assert_array_equal(matrix, np.load(out / "matrix.npy"))


def test_hf_export_writes_blended_rows_into_tied_tables_and_a_card(bert_run, tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM

    out = tmp_path / "hf"
    res = export(bert_run, "hf", "covered", out, how="mix:0.25")
    model = AutoModelForMaskedLM.from_pretrained(str(out))
    matrix, mask = policy_matrix(bert_run, None, RowPolicy("covered", "mix:0.25"))
    w = model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(w, matrix)
    np.testing.assert_array_equal(model.get_output_embeddings().weight.detach().numpy(), matrix)
    np.testing.assert_array_equal(np.load(out / "replaced_mask.npy"), mask)
    meta = json.loads((out / "definitionemb_export.json").read_text())
    assert meta["policy"] == "--rows covered --how mix:0.25" and meta["rows_replaced"] == str(int(mask.sum()))
    card = (out / "README.md").read_text()
    assert "--rows covered --how mix:0.25" in card and "CC BY-SA" in card and f"{int(mask.sum()):,}" in card
    assert "No word-similarity results" in card  # nothing measured yet: the card says how to measure
    assert res.kept == ()  # not a sentence-transformers base


def test_card_carries_the_stored_wordsim_table_and_lexicon(tmp_path: Path, tiny_roberta_dir: Path) -> None:
    from definitionemb.embedder.results import ResultKind, save_result

    db = tmp_path / "lex.duckdb"
    make_lexicon(db, roberta_pieces())
    with safe_open(str(tiny_roberta_dir / "model.safetensors"), "np") as f:
        original = f.get_tensor("roberta.embeddings.word_embeddings.weight").astype(np.float32)
    covered = np.random.default_rng(0).random(original.shape[0]) < 0.3
    covered[list(SPECIAL)] = False
    run = make_run(tmp_path / "run", original, covered, db=db, model=str(tiny_roberta_dir))
    ws = {"pairs": 65, "covered_pairs": 59, "coverage": 0.9, "part": "test"}
    ws["spearman"] = {"original": 0.715, "rare dirmix:0.2": 0.75, "abtt": 0.7}
    save_result(run, ResultKind.WORDSIM, {"EN-RG-65": ws}, "EN-RG-65", command="defemb eval wordsim ...")
    export(run, "hf", "rare", tmp_path / "hf", db=db, how="dirmix:0.2")
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "| EN-RG-65 | 65 | 59 | 0.715 | 0.750 | 0.700 |" in card
    assert "test part" in card


@pytest.mark.slow
def test_sentence_transformers_pipeline_survives_the_export(tmp_path: Path, minilm_dir: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    with safe_open(str(minilm_dir / "model.safetensors"), "np") as f:
        key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))  # noqa: SIM118
        original = f.get_tensor(key).astype(np.float32)
    covered = np.random.default_rng(1).random(original.shape[0]) < 0.5
    covered[:1000] = False  # [PAD], [unused…], [CLS], [SEP], [MASK]
    run = make_run(tmp_path / "run", original, covered, model=str(minilm_dir), family="bert")
    out = tmp_path / "st"
    res = export(run, "hf", "covered", out)
    assert "modules.json" in res.kept and "1_Pooling/" in res.kept
    base = st.SentenceTransformer(str(minilm_dir), device="cpu")
    new = st.SentenceTransformer(str(out), device="cpu")
    assert [type(m).__name__ for m in new] == [type(m).__name__ for m in base]
    sentences = ["A falcon is a bird of prey.", "The wain rolled into the barn."]
    emb = new.encode(sentences, convert_to_numpy=True)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(emb, base.encode(sentences, convert_to_numpy=True))  # the rows did change
    card = (out / "README.md").read_text()
    assert "library_name: sentence-transformers" in card and "license: cc-by-sa-4.0" in card
    assert (
        "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and "apache-2.0" in card
    )  # base's, named
    versions = json.loads((out / "config_sentence_transformers.json").read_text())["__version__"]
    assert versions["sentence_transformers"] == st.__version__  # written by sentence-transformers itself


def test_a_run_that_chose_its_policy_exports_with_it_until_its_vectors_change(
    bert_run, tmp_path: Path
) -> None:
    from definitionemb.index.exporter import as_policy
    from definitionemb.index.policy import record_choice, run_choice

    assert run_choice(bert_run) is None and default_policy(bert_run) == default_policy()
    record_choice(
        bert_run, "covered", "dirmix:0.45", "best on the development parts", "defemb eval knobs --run r"
    )
    assert default_policy(bert_run) == RowPolicy("covered", "dirmix:0.45")
    assert default_policy().how == DEFAULT_HOW  # the shipped default itself is unchanged
    res = export(bert_run, "npy", None, tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "export.json").read_text())
    assert res.how == "dirmix:0.45" and meta["policy_source"] == "run choice (defemb eval knobs --run r)"
    want, _ = policy_matrix(bert_run, None, RowPolicy("covered", "dirmix:0.45"))
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "matrix.npy"), want)
    export(bert_run, "hf", None, tmp_path / "hf")  # the model card says why this policy
    assert "chosen for this run: best on the development parts" in (tmp_path / "hf" / "README.md").read_text()
    # An explicit --how wins; other rows than the choice's take the shipped α.
    given = export(bert_run, "npy", None, tmp_path / "b", how="replace")
    assert given.how == "replace"
    assert (
        json.loads((tmp_path / "b" / "export.json").read_text())["policy_source"]
        == "given or shipped default"
    )
    with pytest.warns(UserWarning, match="made for other rows"):  # said aloud, not silently
        assert as_policy("rare", None, bert_run) == RowPolicy("rare", DEFAULT_HOW)
    # Regenerated vectors: the choice was made on other rows, so the shipped default applies again.
    tv = bert_run.path / "token_vectors.npy"
    np.save(tv, np.load(tv) * 2.0)
    with pytest.warns(UserWarning, match="chosen on other vectors"):
        assert default_policy(bert_run) == default_policy()
    (bert_run.path / "policy.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SelectError, match="not a readable policy choice"):
        default_policy(bert_run)
