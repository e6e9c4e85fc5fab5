"""Vocabularies from real tokenizer folders: pieces, surfaces, specials, fingerprints and frequencies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from definitionemb.lexicon.errors import TokenizerError
from definitionemb.lexicon.frequencies import from_corpus, from_dict_txt, from_vocab_order, ranks_and_buckets
from definitionemb.lexicon.tokenizers import (
    byte_decoder,
    load_vocab,
    open_tokenizer,
    token_rows,
    vocab_fingerprint,
)


@pytest.fixture(scope="module")
def roberta(roberta_tokenizer_dir: Path):
    return load_vocab(roberta_tokenizer_dir)


@pytest.fixture(scope="module")
def minilm(minilm_tokenizer_dir: Path):
    return load_vocab(minilm_tokenizer_dir)


def test_roberta_vocab_is_byte_level_bpe_with_its_five_specials(roberta) -> None:
    assert roberta.kind == "bpe"
    assert len(roberta.pieces) == 50265
    assert roberta.special_ids == frozenset({0, 1, 2, 3, 50264})
    assert [roberta.pieces[i] for i in (0, 1, 2, 3, 50264)] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    # GPT-2's end-of-text piece is an ordinary RoBERTa token (it has a pre-training count)
    assert roberta.pieces[50260] == "<|endoftext|>" and 50260 not in roberta.special_ids
    assert roberta.sha256 == vocab_fingerprint(roberta.pieces)
    assert len(roberta.sha256) == 64


def test_fingerprint_is_sha256_of_the_json_pieces() -> None:
    import hashlib

    pieces = ["<s>", "Ġcafé", "##ing"]
    expected = hashlib.sha256(json.dumps(pieces, ensure_ascii=False).encode("utf-8")).hexdigest()
    assert vocab_fingerprint(pieces) == expected
    assert vocab_fingerprint(pieces) != vocab_fingerprint(list(reversed(pieces)))


def test_byte_level_surfaces_decode_the_gpt2_alphabet(roberta) -> None:
    rows = token_rows(roberta)
    v = {p: i for i, p in enumerate(roberta.pieces)}
    assert (rows.surface[v["Ġthe"]], rows.word_initial[v["Ġthe"]]) == ("the", True)
    assert (rows.surface[v["ing"]], rows.word_initial[v["ing"]]) == ("ing", False)
    assert (rows.surface[v["ĠHello"]], rows.word_initial[v["ĠHello"]]) == ("Hello", True)
    # "café" is spelled with the bytes of é (C3 A9) as two printable stand-ins
    assert rows.surface[v["ĠcafÃ©"]] == "café"
    assert rows.surface[v["Ċ"]] == "\n" and rows.word_initial[v["Ċ"]] is False
    assert len(byte_decoder()) == 256 and sorted(byte_decoder().values()) == list(range(256))


def test_pieces_that_are_not_utf8_alone_are_kept_without_surface(roberta) -> None:
    rows = token_rows(roberta)
    v = {p: i for i, p in enumerate(roberta.pieces)}
    # 'âĢ' is E2 80: the first two bytes of a three-byte character such as '’'
    assert rows.surface[v["âĢ"]] is None and rows.word_initial[v["âĢ"]] is False
    assert rows.surface[v["ĠâĢ"]] is None and rows.word_initial[v["ĠâĢ"]] is True
    broken = [i for i, s in enumerate(rows.surface) if s is None]
    assert 300 < len(broken) < 400  # kept, not dropped
    assert len(rows.piece) == len(roberta.pieces)


def test_roberta_ids_match_the_reference_encoding(roberta) -> None:
    tok = open_tokenizer(roberta)
    ids = tok.encode(" Hello world", add_special_tokens=False).ids
    assert [0, *ids, 2] == [0, 20920, 232, 2]


def test_wordpiece_continuations_and_placeholders(minilm) -> None:
    assert minilm.kind == "wordpiece"
    assert len(minilm.pieces) == 30522
    rows = token_rows(minilm)
    v = {p: i for i, p in enumerate(minilm.pieces)}
    assert (rows.surface[v["##ing"]], rows.word_initial[v["##ing"]]) == ("ing", False)
    assert (rows.surface[v["walking"]], rows.word_initial[v["walking"]]) == ("walking", True)
    for name in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused993]"):
        assert v[name] in minilm.special_ids, name
    assert v["the"] not in minilm.special_ids
    assert len(minilm.special_ids) == 5 + 994


def test_tokenizer_json_and_vocab_txt_give_the_same_identity(
    minilm, tmp_path: Path, minilm_tokenizer_dir: Path
) -> None:
    only_txt = tmp_path / "vocab-only"
    only_txt.mkdir()
    shutil.copy(minilm_tokenizer_dir / "vocab.txt", only_txt / "vocab.txt")
    bare = load_vocab(only_txt)
    assert bare.kind == "wordpiece"
    assert bare.sha256 == minilm.sha256
    assert bare.special_ids == minilm.special_ids


def test_byte_level_tokenizer_json_matches_vocab_json(
    roberta, roberta_tokenizer_dir: Path, tmp_path: Path
) -> None:
    import tokenizers

    tok = tokenizers.ByteLevelBPETokenizer(
        str(roberta_tokenizer_dir / "vocab.json"), str(roberta_tokenizer_dir / "merges.txt")
    )
    tok.save(str(tmp_path / "tokenizer.json"))
    fast = load_vocab(tmp_path)
    assert fast.kind == "bpe"
    assert fast.sha256 == roberta.sha256


@pytest.mark.slow
def test_saved_transformers_model_folder_has_the_lexicon_identity(
    roberta, tiny_roberta_dir: Path, minilm, minilm_dir: Path
) -> None:
    assert load_vocab(tiny_roberta_dir).sha256 == roberta.sha256
    assert load_vocab(minilm_dir).sha256 == minilm.sha256


def test_sentencepiece_style_tokenizer_json(tmp_path: Path) -> None:
    data = {
        "added_tokens": [{"id": 0, "content": "<unk>", "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"},
        "decoder": {"type": "Metaspace", "replacement": "▁"},
        "model": {
            "type": "Unigram",
            "unk_id": 0,
            "vocab": [
                ["<unk>", 0.0],
                ["▁the", -1.0],
                ["ing", -2.0],
                ["▁", -3.0],
                ["<0xE2>", -4.0],
                ["<0x41>", -4.0],
            ],
        },
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    vocab = load_vocab(tmp_path)
    assert vocab.kind == "sentencepiece"
    assert vocab.special_ids == frozenset({0})
    rows = token_rows(vocab)
    assert list(zip(rows.surface, rows.word_initial, strict=True))[1:] == [
        ("the", True),
        ("ing", False),
        ("", True),
        (None, False),
        ("A", False),
    ]


def test_unknown_folders_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="holds no tokenizer files"):
        load_vocab(tmp_path)
    with pytest.raises(TokenizerError, match="no tokenizer folder"):
        load_vocab(tmp_path / "missing" / "dir")
    (tmp_path / "vocab.json").write_text("{}", encoding="utf-8")
    with pytest.raises(TokenizerError, match="merges.txt"):
        load_vocab(tmp_path)


def test_dict_txt_maps_gpt2_ids_to_hf_ids(roberta, roberta_dict_txt: Path) -> None:
    freq = from_dict_txt(roberta_dict_txt, roberta)
    lines = roberta_dict_txt.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50260
    # line 1 is GPT-2 id 13 ('.'), HF id 4
    assert lines[0] == f"13 {freq.counts[4]}" and roberta.pieces[4] == "."
    # GPT-2 ids 18435 ('ĠHello') and 995 ('Ġworld') sit on the lines of HF ids 20920 and 232
    assert lines[20920 - 4].split()[0] == "18435" and int(lines[20920 - 4].split()[1]) == freq.counts[20920]
    assert lines[232 - 4].split()[0] == "995" and int(lines[232 - 4].split()[1]) == freq.counts[232]
    assert (freq.counts[50261:50264] == 0).all()  # madeupword0000..2
    assert (freq.counts[[0, 1, 2, 3, 50264]] == -1).all()  # specials have no line
    assert freq.source.startswith("dict.txt:")


def test_a_shifted_dict_txt_is_refused(roberta, roberta_dict_txt: Path, tmp_path: Path) -> None:
    lines = roberta_dict_txt.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "dict.txt"
    bad.write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="madeupword"):
        from_dict_txt(bad, roberta)
    bad.write_text("hello\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="<symbol> <count>"):
        from_dict_txt(bad, roberta)


def test_dict_txt_checked_against_encoder_json(roberta, roberta_dict_txt: Path, tmp_path: Path) -> None:
    # A GPT-2 encoder.json beside dict.txt makes every line checkable; one written from vocab.json
    # with two ids swapped must be caught.
    inv = {i: p for i, p in enumerate(roberta.pieces)}
    lines = roberta_dict_txt.read_text(encoding="utf-8").splitlines()
    encoder = {}
    for n, line in enumerate(lines):
        sym = line.split()[0]
        if sym.isdigit():
            encoder[inv[n + 4]] = int(sym)
    shutil.copy(roberta_dict_txt, tmp_path / "dict.txt")
    (tmp_path / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    assert from_dict_txt(tmp_path / "dict.txt", roberta).counts[20920] > 0
    encoder["ĠHello"], encoder["Ġworld"] = encoder["Ġworld"], encoder["ĠHello"]
    (tmp_path / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(TokenizerError, match="does not match"):
        from_dict_txt(tmp_path / "dict.txt", roberta)


def test_buckets_are_30_50_20_by_frequency_rank(roberta, roberta_dict_txt: Path) -> None:
    freq = from_dict_txt(roberta_dict_txt, roberta)
    special = [i in roberta.special_ids for i in range(len(roberta.pieces))]
    rank, bucket = ranks_and_buckets(freq, special)
    assert [bucket.count(b) for b in ("frequent", "medium", "rare", "special")] == [15078, 25130, 10052, 5]
    assert rank[4] == 0  # '.' is the most frequent piece
    assert sorted(rank[~np.asarray(special)]) == list(range(50260))
    order = np.argsort(rank[~np.asarray(special)])
    counts = freq.counts[~np.asarray(special)][order]
    assert (np.diff(counts) <= 0).all()
    _, other = ranks_and_buckets(freq, special, (0.5, 0.25, 0.25))
    assert other.count("frequent") == 25130
    with pytest.raises(TokenizerError, match="summing to 1"):
        ranks_and_buckets(freq, special, (0.5, 0.5, 0.5))


def test_vocab_order_ranks_follow_ids(minilm) -> None:
    freq = from_vocab_order(minilm)
    special = [i in minilm.special_ids for i in range(len(minilm.pieces))]
    rank, _ = ranks_and_buckets(freq, special)
    normal = [i for i in range(len(minilm.pieces)) if not special[i]]
    assert [int(rank[i]) for i in normal[:3]] == [0, 1, 2]
    assert freq.source == "vocab-order"


def test_corpus_counts_pieces(roberta, minilm) -> None:
    text = ["The cat sat on the mat.", "The cats sat.", ""]
    freq = from_corpus(text, roberta, "corpus:test")
    v = {p: i for i, p in enumerate(roberta.pieces)}
    assert freq.counts[v["Ġsat"]] == 2 and freq.counts[v["The"]] == 2 and freq.counts[v["Ġthe"]] == 1
    assert freq.counts[v["Ġcats"]] == 1 and freq.counts[v["."]] == 2
    assert freq.counts.sum() == 11
    wp = from_corpus(text, minilm, "corpus:test")
    w = {p: i for i, p in enumerate(minilm.pieces)}
    assert wp.counts[w["the"]] == 3  # uncased
    assert wp.counts[w["[CLS]"]] == 0


def test_a_hub_name_offline_is_refused_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TokenizerError, match="local tokenizer folder"):
        load_vocab("no-such-org/no-such-tokenizer-xyz")


def test_chunked_counting_equals_tokenizing_every_line(roberta, minilm) -> None:
    # real glosses and examples: counting each distinct space-separated chunk once must give exactly the
    # counts of tokenizing every line whole
    lines: list[str] = []
    for path in sorted((Path(__file__).parent / "data" / "lexicon-align").rglob("*.json")):
        for word in json.loads(path.read_text(encoding="utf-8")).values():
            for ety in word["etymologies"]:
                for pos in ety["partsOfSpeech"]:
                    for sense in pos["senses"]:
                        lines.append(sense["sense"])
                        lines.extend(sense["examples"])
    assert len(lines) > 500
    for vocab in (roberta, minilm):
        tok = open_tokenizer(vocab)
        direct = np.zeros(len(vocab.pieces), dtype=np.int64)
        for enc in tok.encode_batch(lines, add_special_tokens=False):
            np.add.at(direct, enc.ids, 1)
        assert (from_corpus(lines, vocab, "corpus:test").counts == direct).all(), vocab.kind


_WORDS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüß0123456789.,'-"


@pytest.fixture(scope="module")
def roberta_rows(roberta):
    return token_rows(roberta), open_tokenizer(roberta)


@pytest.fixture(scope="module")
def minilm_rows(minilm):
    return token_rows(minilm), open_tokenizer(minilm)


def test_surfaces_and_word_starts_rebuild_the_text(roberta_rows, minilm_rows) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    words = st.lists(st.text(alphabet=_WORDS, min_size=1, max_size=12), min_size=1, max_size=6)

    @settings(max_examples=200, deadline=None)
    @given(words)
    def check(ws: list[str]) -> None:
        text = " ".join(ws)
        rows, tok = roberta_rows
        ids = tok.encode(text, add_special_tokens=False).ids
        if all(rows.surface[i] is not None for i in ids):
            rebuilt = "".join((" " if rows.word_initial[i] else "") + rows.surface[i] for i in ids)
            assert rebuilt == text
        wrows, wtok = minilm_rows
        wids = wtok.encode(text, add_special_tokens=False).ids
        if 100 not in wids:  # [UNK] hides its text
            rebuilt = "".join((" " if wrows.word_initial[i] else "") + wrows.surface[i] for i in wids).strip()
            # BERT lower-cases, strips accents and splits punctuation off words
            normal = wtok.normalizer.normalize_str(text)
            assert rebuilt.replace(" ", "") == normal.replace(" ", "")
            # one word-initial piece per pre-tokenized word, continuations for the rest
            assert sum(wrows.word_initial[i] for i in wids) == len(
                wtok.pre_tokenizer.pre_tokenize_str(normal)
            )

    check()
