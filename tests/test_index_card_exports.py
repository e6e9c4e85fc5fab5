"""Hub-ready model cards and vectors with their vocabulary: the card validates with huggingface_hub's
ModelCardData and no file an export writes names the machine's paths; Parquet and word2vec exports
round-trip; npy and safetensors exports carry vocab.txt and vocab.parquet."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from definitionemb.embedder.results import ResultKind, save_result
from definitionemb.index.exporter import export
from definitionemb.index.policy import RowPolicy, policy_matrix
from index_support import SPECIAL, make_lexicon, make_run, roberta_pieces
from safetensors import safe_open


@pytest.fixture()
def world(tmp_path: Path, tiny_roberta_dir: Path):
    db = tmp_path / "data" / "lex.duckdb"
    db.parent.mkdir()
    make_lexicon(db, roberta_pieces())
    con = duckdb.connect(str(db))
    con.execute(  # a kaikki source loaded from a path of this machine: the card may name only the file
        "INSERT INTO source (source_id, kind, uri, sha256, lang_code, n_records, n_loaded, n_rejected, "
        "n_filtered) VALUES (1, 'kaikki', ?, 'abc', 'en', 8, 8, 0, 0)",
        [str(tmp_path / "data" / "kaikki.org-dictionary-English.jsonl.gz")],
    )
    con.close()
    with safe_open(str(tiny_roberta_dir / "model.safetensors"), "np") as f:
        original = f.get_tensor("roberta.embeddings.word_embeddings.weight").astype(np.float32)
    covered = np.random.default_rng(0).random(original.shape[0]) < 0.3
    covered[list(SPECIAL)] = False
    run = make_run(tmp_path / "runs" / "r1", original, covered, db=db, model=str(tiny_roberta_dir))
    ws = {
        "pairs": 65,
        "covered_pairs": 59,
        "part": "test",
        "spearman": {"original": 0.7, "rare mix:0.5": 0.75},
    }
    save_result(run, ResultKind.WORDSIM, {"EN-RG-65": ws}, "EN-RG-65", command="defemb eval wordsim ...")
    sts = {"pairs": 1379, "covered_pairs": 1379, "spearman": {"original": 0.81, "rare mix:0.5": 0.82}}
    save_result(run, ResultKind.STS, {"STS-B": sts}, "STS-B", command="defemb eval sts ...")
    return run, db


def _files(root: Path) -> list[Path]:
    return [p for p in ([root] if root.is_file() else sorted(root.rglob("*"))) if p.is_file()]


def test_card_validates_and_no_export_names_a_local_path(
    world, tmp_path: Path, tiny_roberta_dir: Path
) -> None:
    from definitionemb.index.policy import record_choice
    from huggingface_hub import ModelCard, ModelCardData

    run, db = world
    outs = tmp_path / "exports"
    outs.mkdir()
    cmd = f"defemb eval knobs --run {run.path} --dataset {tmp_path}/word-similarity --db={db}"
    record_choice(run, "rare", "mix:0.5", "best on the development parts", cmd)
    hf = outs / "hf"
    export(run, "hf", "rare", hf, db=db, base_model="FacebookAI/roberta-base")  # the run's choice
    card = ModelCard((hf / "README.md").read_text(encoding="utf-8"))
    data = ModelCardData(**card.data.to_dict())  # the Hub's own metadata class accepts every field
    assert data.base_model == "FacebookAI/roberta-base" and data.base_model_relation == "finetune"
    assert data.language == ["en"] and data.pipeline_tag == "fill-mask" and data.license == "cc-by-sa-4.0"
    assert data.datasets == ["wiktionary"] and "definitionemb" in data.tags
    text = card.text
    assert "share-alike" in text and "arXiv 2408.01308" in text and "eprint        = {2408.01308}" in text
    assert (
        "| EN-RG-65 | 65 | 59 | 0.700 | 0.750 |" in text and "| STS-B | 1379 | 1379 | 0.810 | 0.820 |" in text
    )
    assert (
        "# roberta-base with DefinitionEMB rows" in text and "kaikki.org-dictionary-English.jsonl.gz" in text
    )
    meta = json.loads((hf / "definitionemb_export.json").read_text())
    assert meta["source_model"] == "FacebookAI/roberta-base"
    assert "--run r1 --dataset word-similarity --db=lex.duckdb" in meta["policy_source"]  # names, not paths
    export(run, "npy", "covered", outs / "npy", db=db)
    export(run, "npy", "covered", outs / "m.npy", db=db)
    for fmt, name in (
        ("safetensors", "s.safetensors"),
        ("pt", "m.pt"),
        ("parquet", "m.parquet"),
        ("word2vec", "m.txt"),
    ):
        export(run, fmt, "covered", outs / name, db=db)
    written = _files(outs)
    assert len(written) > 15
    needles = [str(tmp_path).encode(), str(tiny_roberta_dir).encode(), str(Path.home()).encode() + b"/"]
    for f in written:
        data_ = f.read_bytes()
        for needle in needles:
            assert needle not in data_, f"{f.relative_to(outs)} names {needle!r}"


def test_card_without_a_hub_id_names_the_folder_and_omits_base_model(world, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    run, db = world
    export(run, "hf", "rare", tmp_path / "hf2", db=db)
    card = ModelCard((tmp_path / "hf2" / "README.md").read_text(encoding="utf-8"))
    assert "base_model" not in card.data.to_dict() and card.data.license == "cc-by-sa-4.0"


def test_base_model_id_prefers_the_base_cards_own_name(minilm_dir: Path, tmp_path: Path) -> None:
    from definitionemb.index.card import base_model_id

    # all-MiniLM-L6-v2's config names its parent (nreimers/…); its card names the model itself
    assert base_model_id(minilm_dir) == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model_id(minilm_dir, "me/my-minilm") == "me/my-minilm"
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "google-bert/bert-base-uncased"}))
    assert base_model_id(tmp_path) == "google-bert/bert-base-uncased"
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path)}))
    assert base_model_id(tmp_path) is None


def test_parquet_and_word2vec_round_trip(world, tmp_path: Path) -> None:
    run, db = world
    matrix, mask = policy_matrix(run, db, RowPolicy("rare", "replace"))
    export(run, "parquet", "rare", tmp_path / "v.parquet", db=db, how="replace")
    frame = pl.read_parquet(tmp_path / "v.parquet")
    assert frame.columns == [
        "token_id",
        "piece",
        "word_initial",
        "covered",
        "replaced",
        "rule",
        "bucket",
        "frequency",
        "vector",
    ]
    assert frame["token_id"].to_list() == list(range(matrix.shape[0]))
    np.testing.assert_array_equal(np.stack(frame["vector"].to_numpy()), matrix)
    np.testing.assert_array_equal(frame["replaced"].to_numpy(), mask)
    np.testing.assert_array_equal(frame["covered"].to_numpy(), np.asarray(run.covered_mask()))
    bank = frame.filter(pl.col("piece") == "Ġbank").row(0, named=True)
    assert (
        bank["rule"] == "exact" and bank["word_initial"] and bank["bucket"] in ("frequent", "medium", "rare")
    )
    assert frame.filter(pl.col("piece") == "Ġzzzzzz").height == 0 or True  # pieces are the tokenizer's
    export(run, "word2vec", "rare", tmp_path / "v.txt", db=db, how="replace")
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        lines = (tmp_path / "v.txt").read_text(encoding="utf-8").splitlines()
        v, d = map(int, lines[0].split())
        assert (v, d) == matrix.shape and len(lines) == v + 1
        keys = [ln.split(" ", 1)[0] for ln in lines[1:]]
        vecs = np.array([[float(x) for x in ln.split(" ")[1:]] for ln in lines[1:]], dtype=np.float32)
    else:
        kv = KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), binary=False)
        keys, vecs = list(kv.index_to_key), kv.vectors
    assert keys == [p if p is not None else f"[id{i}]" for i, p in enumerate(frame["piece"].to_list())]
    assert len(set(keys)) == len(keys)
    np.testing.assert_allclose(vecs, matrix, rtol=1e-6, atol=1e-7)


def test_npy_and_safetensors_carry_their_vocabulary(world, tmp_path: Path) -> None:
    run, db = world
    export(run, "npy", "covered", tmp_path / "npy", db=db)
    pieces = (tmp_path / "npy" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert pieces == roberta_pieces()
    vocab = pl.read_parquet(tmp_path / "npy" / "vocab.parquet")
    np.testing.assert_array_equal(vocab["replaced"].to_numpy(), np.load(tmp_path / "npy" / "mask.npy"))
    assert "vector" not in vocab.columns
    export(run, "safetensors", "covered", tmp_path / "s.safetensors", db=db)
    assert (tmp_path / "s.vocab.txt").read_text(encoding="utf-8").splitlines() == pieces
    assert pl.read_parquet(tmp_path / "s.vocab.parquet").height == len(pieces)
