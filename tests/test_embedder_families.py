"""Every model family through the whole toolchain: align, train one step, generate, swap, export.

Tiny random-weight models built from configs: T5 v1.0 (tied LM head), T5 v1.1 (untied), a T5EncoderModel,
T5Gemma (one table per stack), MPNet and DeBERTa-v2 on MiniLM's real WordPiece vocabulary, ModernBERT on
the real RoBERTa byte-level BPE. The T5 families have no tokenizer in the repository: a SentencePiece
model is trained here from the test lexicon's glosses (`tests/data/embedder/definitions.tsv`).
"""
# ruff: noqa: F811  (fixtures imported from test_embedder_support are named by the tests that use them)

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from definitionemb.embedder.config import GenerateConfig
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.models import detect_family, load_pretrained
from definitionemb.index.exporter import export, load_base_model
from model_support import MINILM_TOKENIZER, ROBERTA_TOKENIZER, TINY, gloss_sentencepiece, t5_tokenizer
from test_embedder_support import align, base_lexicon, tiny_config  # noqa: F401

from definitionemb import embedder, lexicon


def _gemma_tokenizer(out: Path) -> Any:
    from transformers import T5Tokenizer

    # Gemma's own tokenizer class is BPE with merges; a unigram model with Gemma's special ids and
    # <mask> stands in for its vocabulary (T5Gemma's model code does not care which).
    vocab = gloss_sentencepiece(
        out,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        user_defined_symbols=["<mask>"],
    )
    return T5Tokenizer(
        vocab=vocab,
        extra_ids=0,
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<bos>",
        mask_token="<mask>",
    )


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    sentencepiece: bool
    target_table: str = "encoder"


CASES = [
    Case("t5-v1.0", "t5", True),
    Case("t5-v1.1", "t5", True),
    Case("t5-encoder", "t5-encoder", True),
    Case("t5gemma", "t5gemma", True),
    Case("t5gemma-decoder", "t5gemma", True, "decoder"),
    Case("mpnet", "encoder", False),
    Case("deberta-v2", "encoder", False),
    Case("modernbert", "encoder", False),
]


def _build(name: str, out: Path) -> None:
    import transformers as tf

    torch.manual_seed(0)
    small = dict(num_layers=1, num_heads=2, d_model=32, d_kv=16, d_ff=64, decoder_start_token_id=0)
    if name.startswith("t5"):  # T5 and T5Gemma: a SentencePiece model trained here
        pytest.importorskip("sentencepiece")
    if name.startswith("t5-"):
        tok = t5_tokenizer(out)
        v = len(tok)
        if name == "t5-v1.0":
            model = tf.T5ForConditionalGeneration(
                tf.T5Config(vocab_size=v, feed_forward_proj="relu", **small)
            )
        else:
            cfg = tf.T5Config(
                vocab_size=v, feed_forward_proj="gated-gelu", tie_word_embeddings=False, **small
            )
            cls = tf.T5EncoderModel if name == "t5-encoder" else tf.T5ForConditionalGeneration
            model = cls(cfg)
    elif name.startswith("t5gemma"):
        tok = _gemma_tokenizer(out)
        stack = dict(
            TINY,
            vocab_size=len(tok),
            num_hidden_layers=1,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=128,
            sliding_window=16,
            layer_types=["full_attention"],
        )
        cfg = tf.T5GemmaConfig(encoder=dict(stack), decoder=dict(stack), vocab_size=len(tok))
        model = tf.T5GemmaForConditionalGeneration(cfg)
    elif name == "modernbert":
        tok = tf.RobertaTokenizerFast.from_pretrained(str(ROBERTA_TOKENIZER))
        cfg = tf.ModernBertConfig(
            vocab_size=len(tok),
            max_position_embeddings=128,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            cls_token_id=tok.cls_token_id,
            sep_token_id=tok.sep_token_id,
            **TINY,
        )
        model = tf.ModernBertForMaskedLM(cfg)
    else:
        tok = tf.AutoTokenizer.from_pretrained(str(MINILM_TOKENIZER))
        common = dict(TINY, vocab_size=30522, max_position_embeddings=130)
        if name == "mpnet":
            model = tf.MPNetForMaskedLM(tf.MPNetConfig(**common))
        else:
            model = tf.DebertaV2ForMaskedLM(tf.DebertaV2Config(**common, type_vocab_size=0))
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    if name == "t5-v1.1":
        _untie_lm_head(out)


def _untie_lm_head(out: Path) -> None:
    """A T5 v1.1 checkpoint as published: `tie_word_embeddings: false` and an `lm_head.weight` of its own.

    transformers 5 builds every T5 tied and saves only `shared`; it loads a checkpoint with a distinct
    LM head untied.
    """
    from safetensors.torch import load_file, save_file

    state = load_file(str(out / "model.safetensors"))
    state["lm_head.weight"] = torch.randn_like(state["shared.weight"]) * 0.05
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["tie_word_embeddings"] = False
    (out / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.name)
def family_run(
    request: pytest.FixtureRequest, base_lexicon: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Case, Path, Path, Path]:
    """(case, model folder, aligned lexicon, trained and generated run) for one family."""
    case: Case = request.param
    root = tmp_path_factory.mktemp(case.name)
    model_dir = root / "model"
    model_dir.mkdir()
    shared = tmp_path_factory.getbasetemp() / f"model-{case.name.removesuffix('-decoder')}"
    if shared.is_dir():
        shutil.copytree(shared, model_dir, dirs_exist_ok=True)
    else:
        _build(case.name.removesuffix("-decoder"), model_dir)
        shutil.copytree(model_dir, shared)
    db = root / "lexicon.duckdb"
    shutil.copy(base_lexicon, db)
    align(db, model_dir)
    run = root / "run"
    embedder.train(
        tiny_config(
            db,
            model_dir,
            run,
            steps=1,
            eval_every=1,
            ckpt_every=1,
            probes=False,
            head_init="random",
            target_table=case.target_table,
        )
    )
    embedder.generate(GenerateConfig(db=str(db), run=str(run), device="cpu", progress=False, smoothing="off"))
    return case, model_dir, db, run


def _changed(base: Any, other: Any) -> set[str]:
    b = dict(base.named_parameters(remove_duplicate=False))
    o = dict(other.named_parameters(remove_duplicate=False))
    return {n for n, p in b.items() if not torch.equal(p.detach(), o[n].detach())}


def _names_of(model: Any, weight: torch.Tensor) -> set[str]:
    return {n for n, p in model.named_parameters(remove_duplicate=False) if p is weight}


@pytest.mark.slow
def test_family_is_detected_and_trains(family_run: tuple[Case, Path, Path, Path]) -> None:
    case, model_dir, _, run = family_run
    _, tok, fam = load_pretrained(model_dir)
    assert fam == case.family
    m = json.loads((run / "manifest.json").read_text())
    assert m["model_family"] == case.family and m["config"]["target_table"] == case.target_table
    assert m["train"]["steps"] == 1 and np.isfinite(m["train"]["train_loss"])
    vectors = np.load(run / "token_vectors.npy")
    covered = np.load(run / "token_covered.npy")
    assert covered.sum() > 100 and np.isfinite(vectors).all()
    # the generated rows differ from the original ones where covered, equal elsewhere
    original = np.load(run / "original_vectors.npy")
    assert not np.allclose(vectors[covered], original[covered])
    np.testing.assert_array_equal(vectors[~covered], original[~covered])


@pytest.mark.slow
def test_sentencepiece_word_initial_pieces_align(family_run: tuple[Case, Path, Path, Path]) -> None:
    case, _, db, run = family_run
    if not case.sentencepiece:
        pytest.skip("a WordPiece/BPE vocabulary")
    tid = json.loads((run / "manifest.json").read_text())["tokenizer_id"]
    rows = lexicon.query(
        str(db),
        "SELECT d.piece, d.surface, d.word_initial, t.special, d.word FROM token_definition d "
        f"JOIN token t USING (tokenizer_id, token_id) WHERE d.tokenizer_id = {tid} AND d.rank = 1",
    )
    initial = rows.filter(rows["piece"].str.starts_with("▁"))
    assert initial.height > 100 and initial["word_initial"].all()
    # `▁sea` aligns to the headword "sea": the marker is stripped, the surface is the word
    same = initial.filter(initial["surface"].str.to_lowercase() == initial["word"].str.to_lowercase())
    assert same.height > 50
    assert not rows["special"].any()  # sentinels, <pad>, </s>, <mask> never get a definition
    if case.family.startswith("t5-") or case.family == "t5":
        sentinels = lexicon.query(
            str(db),
            f"SELECT count(*) AS n FROM token WHERE tokenizer_id = {tid} AND special AND piece LIKE '<extra_id_%'",
        )
        assert sentinels["n"][0] == 100


@pytest.mark.slow
def test_swap_changes_exactly_the_target_tables(
    family_run: tuple[Case, Path, Path, Path], tmp_path: Path
) -> None:
    """hf export: which tensors changed (tied vs untied), sentinels untouched, AutoModel reload = npy."""
    from transformers import AutoModel

    case, model_dir, db, run = family_run
    export(run, "npy", "covered", tmp_path / "npy", db=str(db), how="replace")
    matrix = np.load(tmp_path / "npy" / "matrix.npy")
    mask = np.load(tmp_path / "npy" / "mask.npy")
    assert mask.sum() > 100
    _, tok, _ = load_pretrained(model_dir)
    assert not mask[sorted(tok.all_special_ids)].any()  # T5's sentinels and every special row stay

    res = export(run, "hf", "covered", tmp_path / "hf", db=str(db), how="replace")
    base, _ = load_base_model(model_dir)
    swapped, _ = load_base_model(tmp_path / "hf")
    changed = _changed(base, swapped)
    enc = base.get_input_embeddings().weight
    if case.name == "t5gemma":
        expected = {"model.encoder.embed_tokens.weight"}
    elif case.name == "t5gemma-decoder":
        expected = {"model.decoder.embed_tokens.weight", "lm_head.out_proj.weight"}
    else:
        expected = _names_of(base, enc)  # the input table and whatever is tied to it
    assert changed == expected, res.tables
    if case.name == "t5-v1.0":
        assert "lm_head.weight" in changed  # tied
    if case.name == "t5-v1.1":
        assert "lm_head.weight" not in changed and "encoder.embed_tokens.weight" in changed
        meta = json.loads((tmp_path / "hf" / "definitionemb_export.json").read_text())
        assert meta["untied"] == ["lm_head.weight"]

    reloaded = AutoModel.from_pretrained(str(tmp_path / "hf"))
    table = (
        reloaded.get_decoder().get_input_embeddings()
        if case.target_table == "decoder"
        else reloaded.get_input_embeddings()
    )
    np.testing.assert_array_equal(table.weight.detach().numpy(), matrix)


@pytest.mark.slow
def test_untied_output_head_is_written_only_when_asked(
    family_run: tuple[Case, Path, Path, Path], tmp_path: Path
) -> None:
    case, model_dir, db, run = family_run
    if case.name != "t5-v1.1":
        pytest.skip("T5 v1.1 is the untied case")
    export(run, "hf", "covered", tmp_path / "hf", db=str(db), how="replace", output_head=True)
    base, _ = load_base_model(model_dir)
    swapped, _ = load_base_model(tmp_path / "hf")
    assert "lm_head.weight" in _changed(base, swapped)


@pytest.mark.slow
def test_sentence_transformers_layout_is_kept(
    family_run: tuple[Case, Path, Path, Path], tmp_path: Path
) -> None:
    """A sentence-transformers base of each family exports into a folder ST loads (ST runs the encoder of
    T5 and T5Gemma), and the encoder ST runs holds the exported rows."""
    st = pytest.importorskip("sentence_transformers")
    case, model_dir, db, run = family_run
    (model_dir / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (model_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    (model_dir / "1_Pooling").mkdir(exist_ok=True)
    (model_dir / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    try:
        res = export(run, "hf", "covered", tmp_path / "st", db=str(db), how="replace")
    finally:
        for f in ("modules.json", "sentence_bert_config.json"):
            (model_dir / f).unlink()
        shutil.rmtree(model_dir / "1_Pooling")
    assert "modules.json" in res.kept
    model = st.SentenceTransformer(str(tmp_path / "st"), device="cpu")
    vec = model.encode(["a small domesticated animal"])
    assert vec.shape == (1, 32) and np.isfinite(vec).all()
    export(run, "npy", "covered", tmp_path / "npy", db=str(db), how="replace")
    rows = model[0].auto_model.get_input_embeddings().weight.detach().numpy()
    if case.target_table == "encoder":
        np.testing.assert_array_equal(rows, np.load(tmp_path / "npy" / "matrix.npy"))
    else:  # the decoder's table changed; the encoder ST runs kept the base model's rows
        base, _ = load_base_model(model_dir)
        np.testing.assert_array_equal(rows, base.get_input_embeddings().weight.detach().numpy())


def test_unsupported_architecture_is_refused_with_the_list(tmp_path: Path) -> None:
    from transformers import GPT2Config

    with pytest.raises(EmbedderError) as err:
        detect_family(GPT2Config())
    msg = str(err.value)
    assert "'gpt2'" in msg and "t5gemma" in msg and "mpnet" in msg and "\n" not in msg


def test_cli_refuses_an_unsupported_architecture_in_one_line(base_lexicon: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from transformers import GPT2Config

    from definitionemb.cli import cli

    model = tmp_path / "gpt2"
    GPT2Config(n_layer=1, n_embd=32, n_head=2).save_pretrained(str(model))
    r = CliRunner().invoke(
        cli,
        ["embed", "train", "--db", str(base_lexicon), "--model", str(model), "--run", str(tmp_path / "r")],
    )
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: model type 'gpt2'") and "t5gemma" in lines[0]


def test_models_without_sdpa_fall_back_to_eager_attention() -> None:
    """MPNet raises ValueError for SDPA in transformers 5: the backbone loads with eager attention."""
    import transformers as tf
    from definitionemb.embedder.models import backbone_from_config

    kw = dict(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    with pytest.raises(ValueError, match="attention implementation"):
        tf.MPNetModel._from_config(tf.MPNetConfig(**kw), attn_implementation="sdpa")
    mpnet = backbone_from_config(tf.MPNetConfig(**kw))
    assert mpnet.config._attn_implementation == "eager" and mpnet.pooler is None
    bert = backbone_from_config(tf.BertConfig(**kw))
    assert bert.config._attn_implementation == "sdpa"  # where SDPA works it is kept
