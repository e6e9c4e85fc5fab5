"""Exports of a run's matrix (npy, safetensors, pt, hf), row selection and the tied-weight swap rules."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from definitionemb.index.errors import ExportError, SelectError, SwapError
from definitionemb.index.exporter import export
from definitionemb.index.select import parse_select, select_rows
from definitionemb.index.swap import replace_rows
from index_support import SPECIAL, make_lexicon, make_run, roberta_pieces, token_frame
from model_support import TINY
from safetensors import safe_open

COLA = Path(__file__).parent / "data" / "eval" / "glue" / "CoLA" / "in_domain_train.tsv"


def _embedding_of(model_dir: Path, key: str) -> np.ndarray:
    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        return f.get_tensor(key).astype(np.float32)


def _covered(v: int, seed: int = 0) -> np.ndarray:
    covered = np.random.default_rng(seed).random(v) < 0.3
    covered[list(SPECIAL)] = False
    return covered


@pytest.fixture(scope="module")
def roberta_lexicon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("lex") / "lex.duckdb"
    make_lexicon(db, roberta_pieces())
    return db


@pytest.fixture(scope="module")
def roberta_run(tmp_path_factory: pytest.TempPathFactory, tiny_roberta_dir: Path, roberta_lexicon: Path):
    original = _embedding_of(tiny_roberta_dir, "roberta.embeddings.word_embeddings.weight")
    path = tmp_path_factory.mktemp("runs") / "roberta"
    return make_run(
        path, original, _covered(original.shape[0]), db=roberta_lexicon, model=str(tiny_roberta_dir)
    )


def _expected(run, mask: np.ndarray) -> np.ndarray:
    m = np.asarray(run.original_vectors()).copy()
    m[mask] = np.asarray(run.token_vectors())[mask]
    return m


def _load(fmt: str, out: Path) -> tuple[np.ndarray, np.ndarray]:
    if fmt == "npy":
        return np.load(out / "matrix.npy"), np.load(out / "mask.npy")
    if fmt == "safetensors":
        with safe_open(str(out), "np") as f:
            return f.get_tensor("embeddings"), f.get_tensor("mask")
    d = torch.load(str(out), weights_only=True)
    return d["embeddings"].numpy(), d["mask"].numpy()


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
def test_round_trip_of_array_formats(roberta_run, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("export" if fmt == "npy" else f"export.{fmt}")  # npy: a folder (m.npy: a file)
    result = export(roberta_run, fmt, "covered", out, how="replace")
    matrix, mask = _load(fmt, out)
    covered = np.asarray(roberta_run.covered_mask())
    assert matrix.dtype == np.float32 and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, covered)
    np.testing.assert_array_equal(matrix, _expected(roberta_run, covered))
    assert result.rows_replaced == int(covered.sum()) and result.vocab_size == 50265 and result.dim == 32
    assert not np.array_equal(matrix[covered], np.asarray(roberta_run.original_vectors())[covered])
    # no temporary leftovers; a file output and its vocabulary have their ownership sidecars
    beside = [f"{out.stem}.vocab.txt", f"{out.stem}.vocab.parquet"] if fmt == "safetensors" else []
    files = [out.name, *beside] if fmt != "npy" else [out.name]
    sidecars = [f".{name}.definitionemb.json" for name in files] if fmt != "npy" else []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*files, *sidecars])


def test_select_rare_follows_the_lexicon_bucket(roberta_run, roberta_lexicon: Path) -> None:
    mask = select_rows(roberta_run, roberta_lexicon, "rare")
    bucket = np.asarray(token_frame(roberta_pieces())["bucket"].to_list())
    want = (bucket == "rare") & np.asarray(roberta_run.covered_mask())
    np.testing.assert_array_equal(mask, want)
    assert 0 < mask.sum() < np.asarray(roberta_run.covered_mask()).sum()


def test_select_task_takes_the_tail_by_count(roberta_run, tiny_roberta_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_roberta_dir))
    sentences = [line.split("\t")[3] for line in COLA.read_text(encoding="utf-8").splitlines()]
    counts = collections.Counter(i for s in sentences for i in tok(s, add_special_tokens=False)["input_ids"])
    covered = np.asarray(roberta_run.covered_mask())
    all_task = select_rows(roberta_run, None, f"task:{COLA}")
    np.testing.assert_array_equal(np.flatnonzero(all_task), sorted(i for i in counts if covered[i]))
    ranked = sorted(counts, key=lambda i: (-counts[i], i))
    tail = set(ranked[len(ranked) - int(np.ceil(0.25 * len(ranked))) :])
    quarter = select_rows(roberta_run, None, f"task:{COLA}:0.25")
    np.testing.assert_array_equal(np.flatnonzero(quarter), sorted(i for i in tail if covered[i]))
    assert max(counts[i] for i in np.flatnonzero(quarter)) <= min(
        counts[i] for i in np.flatnonzero(all_task) if i not in tail
    )


def test_bad_selections_are_refused(roberta_run, tmp_path: Path) -> None:
    with pytest.raises(SelectError, match="covered, rare or task"):
        select_rows(roberta_run, None, "frequent")
    with pytest.raises(SelectError, match="does not exist"):
        select_rows(roberta_run, None, f"task:{tmp_path / 'nope.tsv'}")
    with pytest.raises(SelectError, match=r"\(0, 1\]"):
        parse_select(f"task:{COLA}:1.5")
    assert parse_select("task:C:/data/x.tsv").path == Path("C:/data/x.tsv")


def test_failed_export_leaves_the_previous_one(roberta_run, tmp_path: Path) -> None:
    out = tmp_path / "npy"
    export(roberta_run, "npy", "covered", out, how="replace")
    before = (out / "matrix.npy").read_bytes()
    with pytest.raises(SelectError):
        export(roberta_run, "npy", "task:/no/such/file.tsv", out, force=True, how="replace")
    with pytest.raises(ExportError, match="unknown export format"):
        export(roberta_run, "onnx", "covered", out, force=True, how="replace")
    assert (out / "matrix.npy").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npy"]


def _hooked_embedding_output(model, ids: torch.Tensor, module=None, **inputs) -> torch.Tensor:
    """What the embedding module hands the first layer during a real forward pass."""
    seen: list[torch.Tensor] = []
    module = module if module is not None else model.get_input_embeddings()
    handle = module.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        model(input_ids=ids, **inputs)
    handle.remove()
    return seen[0]


def test_hf_export_roberta_ties_the_lm_head(roberta_run, tmp_path: Path) -> None:
    from transformers import AutoModel, AutoModelForMaskedLM

    out = tmp_path / "hf"
    result = export(roberta_run, "hf", "covered", out, how="replace")
    covered = np.asarray(roberta_run.covered_mask())
    matrix = _expected(roberta_run, covered)
    mlm = AutoModelForMaskedLM.from_pretrained(str(out))
    np.testing.assert_array_equal(mlm.get_input_embeddings().weight.detach().numpy(), matrix)
    np.testing.assert_array_equal(mlm.get_output_embeddings().weight.detach().numpy(), matrix)
    np.testing.assert_array_equal(np.load(out / "replaced_mask.npy"), covered)
    assert result.tables == ("roberta.embeddings.word_embeddings.weight=lm_head.decoder.weight",)
    ids = torch.tensor([[0, *np.flatnonzero(covered)[:5].tolist(), 2]])
    emb = _hooked_embedding_output(mlm, ids)
    np.testing.assert_array_equal(emb[0].numpy(), matrix[ids[0].numpy()])
    base = AutoModel.from_pretrained(str(out))
    np.testing.assert_array_equal(base.get_input_embeddings().weight.detach().numpy(), matrix)
    assert (out / "tokenizer.json").exists() or (out / "vocab.json").exists()
    meta = json.loads((out / "definitionemb_export.json").read_text())
    assert meta["run_id"] == "run-a" and meta["rows"] == "covered" and meta["how"] == "replace"


def test_hf_export_bart_shares_one_matrix(tmp_path: Path, tiny_bart_dir: Path, roberta_lexicon: Path) -> None:
    from transformers import AutoModel, BartForConditionalGeneration

    original = _embedding_of(tiny_bart_dir, "model.shared.weight")
    run = make_run(
        tmp_path / "run",
        original,
        _covered(original.shape[0], 1),
        db=roberta_lexicon,
        model=str(tiny_bart_dir),
        family="bart",
    )
    out = tmp_path / "hf"
    export(run, "hf", "rare", out, how="replace")
    mask = select_rows(run, roberta_lexicon, "rare")
    matrix = _expected(run, mask)
    model = BartForConditionalGeneration.from_pretrained(str(out))
    for w in (
        model.model.shared.weight,
        model.model.encoder.embed_tokens.weight,
        model.model.decoder.embed_tokens.weight,
        model.lm_head.weight,
    ):
        np.testing.assert_array_equal(w.detach().numpy(), matrix)
    ids = torch.tensor([[0, *np.flatnonzero(mask)[:4].tolist(), 2]])
    # BART's encoder looks rows up through its own embed_tokens module (same tensor as model.shared).
    emb = _hooked_embedding_output(model, ids, model.model.encoder.embed_tokens, decoder_input_ids=ids)
    scale = float(getattr(model.model.encoder.embed_tokens, "embed_scale", 1.0))
    np.testing.assert_allclose(emb[0].numpy(), matrix[ids[0].numpy()] * scale, rtol=1e-6)
    base = AutoModel.from_pretrained(str(out))
    np.testing.assert_array_equal(base.get_input_embeddings().weight.detach().numpy(), matrix)


def test_hf_export_bert_and_model_mismatch(
    tmp_path: Path, tiny_bert_dir: Path, tiny_roberta_dir: Path
) -> None:
    from transformers import AutoModelForMaskedLM

    original = _embedding_of(tiny_bert_dir, "bert.embeddings.word_embeddings.weight")
    covered = np.random.default_rng(2).random(original.shape[0]) < 0.3
    run = make_run(tmp_path / "run", original, covered, model=str(tiny_bert_dir), family="bert")
    export(run, "hf", "covered", tmp_path / "hf", how="replace")
    model = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "hf"))
    matrix = _expected(run, covered)
    np.testing.assert_array_equal(model.get_input_embeddings().weight.detach().numpy(), matrix)
    np.testing.assert_array_equal(model.get_output_embeddings().weight.detach().numpy(), matrix)
    # A run whose original rows are not this model's is refused rather than silently mixed.
    run.update_manifest(model=str(tiny_roberta_dir))
    with pytest.raises(ExportError, match="embedding"):
        export(run, "hf", "covered", tmp_path / "hf2", how="replace")
    other = make_run(tmp_path / "run2", original + 1.0, covered, model=str(tiny_bert_dir), family="bert")
    with pytest.raises(ExportError, match="not the one run"):
        export(other, "hf", "covered", tmp_path / "hf3", how="replace")
    assert not (tmp_path / "hf2").exists() and not (tmp_path / "hf3").exists()


def test_swap_reads_a_read_only_memory_map(roberta_run, tiny_roberta_dir: Path) -> None:
    import warnings

    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(tiny_roberta_dir))
    tokens = roberta_run.token_vectors()  # np.load(mmap_mode="r"): not writable
    assert not tokens.flags.writeable
    covered = np.asarray(roberta_run.covered_mask())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = replace_rows(model, tokens, covered)
    np.testing.assert_array_equal(model.lm_head.decoder.weight.detach().numpy()[covered], tokens[covered])
    assert report.rows == int(covered.sum())


def test_swap_rules_on_untied_models_and_bad_shapes() -> None:
    from transformers import BertConfig, BertForMaskedLM

    v, d = 50, TINY["hidden_size"]
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=v, tie_word_embeddings=False, **TINY))
    head_before = model.get_output_embeddings().weight.detach().clone()
    matrix = np.random.default_rng(0).standard_normal((v, d)).astype(np.float32)
    mask = np.zeros(v, dtype=bool)
    mask[[3, 7, 11]] = True
    report = replace_rows(model, matrix, mask)
    w = model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(w[mask], matrix[mask])
    assert not np.array_equal(w[~mask], matrix[~mask])
    assert torch.equal(model.get_output_embeddings().weight, head_before)
    assert report.rows == 3 and report.untied == ("cls.predictions.decoder.weight",)
    with pytest.raises(SwapError, match=f"{v}×{d}"):
        replace_rows(model, matrix[:, :4], mask)
    with pytest.raises(SwapError, match="boolean"):
        replace_rows(model, matrix, mask.astype(np.int64))
    bad = matrix.copy()
    bad[7, 0] = np.nan
    with pytest.raises(SwapError, match="NaN"):
        replace_rows(model, bad, mask)
