"""Subword vocabularies read straight from tokenizer files, without transformers.

Three spellings of one idea are understood: byte-level BPE (RoBERTa, BART, GPT-2; `Ġ` is a leading
space, pieces are spelled in GPT-2's printable byte alphabet), WordPiece (BERT family; `##` marks a
continuation) and SentencePiece (T5, Llama; `▁` marks a word start). Every piece becomes a
`(surface, word_initial)` pair, which is all the alignment ever looks at.

A folder is read in this order: `tokenizer.json` (any Hugging Face fast tokenizer), then
`vocab.json` + `merges.txt` (byte-level BPE), then `vocab.txt` (WordPiece), then a SentencePiece
`.model` (only when the `sentencepiece` package is importable).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from definitionemb.lexicon.errors import TokenizerError

__all__ = [
    "Vocab",
    "TokenRows",
    "load_vocab",
    "vocab_fingerprint",
    "resolve_tokenizer_dir",
    "token_rows",
    "byte_decoder",
    "open_tokenizer",
]

Kind = Literal["bpe", "wordpiece", "sentencepiece"]

# Used only when a folder names no special tokens itself (a bare vocab.json or vocab.txt).
_DEFAULT_SPECIALS = frozenset(
    {"<s>", "</s>", "<pad>", "<unk>", "<mask>", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
)
# GPT-2's only special token; RoBERTa/BART keep it as an ordinary piece (it has a dict.txt count).
_GPT2_SPECIAL = "<|endoftext|>"
# BERT vocabularies reserve `[unusedN]` slots the tokenizer never produces; they carry no text, so they
# are treated like special tokens (kept out of frequency buckets and coverage).
_PLACEHOLDER = re.compile(r"^\[unused\d+\]$")
_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt")


@dataclass(frozen=True)
class Vocab:
    """A tokenizer's vocabulary, from its files only.

    `pieces[i]` is the piece of id `i`; `sha256` = :func:`vocab_fingerprint` of `pieces`, the identity the
    lexicon and the embedder agree on.
    """

    name: str
    kind: Kind
    pieces: list[str]
    special_ids: frozenset[int]
    sha256: str

    def __len__(self) -> int:
        return len(self.pieces)


@dataclass(frozen=True)
class TokenRows:
    """Column lists for the `token` table (id order), ready for a DataFrame."""

    token_id: list[int]
    piece: list[str]
    surface: list[str | None]
    word_initial: list[bool]
    special: list[bool]


def vocab_fingerprint(pieces: Sequence[str]) -> str:
    """sha256 hex digest of `json.dumps(pieces, ensure_ascii=False)`: the vocabulary's identity."""
    return hashlib.sha256(json.dumps(list(pieces), ensure_ascii=False).encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's printable alphabet: character -> the byte it stands for.

    Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, ...) are shifted to
    code points 256 and up, in byte order — which is why a leading space is spelled `Ġ` (U+0120).
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[str, int] = {chr(b): b for b in keep}
    shifted = 0
    for b in range(256):
        if b not in table.values():
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


def resolve_tokenizer_dir(name_or_dir: str | os.PathLike[str]) -> Path:
    """The local folder of a tokenizer: the path itself, or a Hugging Face hub snapshot when reachable."""
    p = Path(name_or_dir).expanduser()
    if p.is_dir():
        if not any((p / f).is_file() for f in _TOKENIZER_FILES) and not list(p.glob("*.model")):
            raise TokenizerError(
                f"{p} holds no tokenizer files: expected tokenizer.json, vocab.json + merges.txt (byte-level "
                f"BPE), vocab.txt (WordPiece) or a SentencePiece .model. Point --tokenizer at a Hugging Face "
                f"tokenizer or model folder."
            )
        return p
    name = str(name_or_dir)
    if p.exists():
        raise TokenizerError(f"{p} is a file; pass the folder that holds the tokenizer files instead.")
    if not _HUB_NAME.match(name) or name.startswith((".", "/")):
        raise TokenizerError(f"no tokenizer folder at {p}. Pass a folder with tokenizer.json or vocab files.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise TokenizerError(
            f"no folder {name!r}, and huggingface_hub is not installed to resolve it as a hub name. "
            f"Pass a local tokenizer folder."
        ) from exc
    patterns = [
        "tokenizer.json",
        "vocab.json",
        "merges.txt",
        "vocab.txt",
        "*.model",
        "dict.txt",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "config.json",
    ]
    try:
        return Path(snapshot_download(repo_id=name, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, gated: all mean "not resolvable here"
        raise TokenizerError(
            f"no tokenizer folder at {p}, and {name!r} could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}). Pass a local tokenizer folder."
        ) from exc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise TokenizerError(f"{path} is not readable JSON: {exc}") from exc


def _json_object(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise TokenizerError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _declared_specials(folder: Path) -> set[str] | None:
    """Special-token strings a folder declares in its config files; None when it declares none."""
    found: set[str] = set()
    declared = False

    def add(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict) and isinstance(value.get("content"), str):
            found.add(value["content"])
        elif isinstance(value, list):
            for v in value:
                add(v)

    stm = folder / "special_tokens_map.json"
    if stm.is_file():
        declared = True
        for v in _json_object(stm).values():
            add(v)
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        data = _json_object(cfg)
        for key in (
            "bos_token",
            "eos_token",
            "unk_token",
            "sep_token",
            "pad_token",
            "cls_token",
            "mask_token",
            "additional_special_tokens",
            "extra_special_tokens",
        ):
            if key in data and data[key] is not None:
                declared = True
                add(data[key])
        decoder = data.get("added_tokens_decoder")
        for tok in (decoder if isinstance(decoder, dict) else {}).values():
            if isinstance(tok, dict) and tok.get("special"):
                declared = True
                add(tok)
    return found if declared else None


def _special_ids(pieces: list[str], declared: set[str] | None, flagged: set[int]) -> frozenset[int]:
    names = declared if declared is not None else set(_DEFAULT_SPECIALS)
    if declared is None and not names.intersection(pieces):
        names.add(_GPT2_SPECIAL)
    ids = set(flagged)
    for i, p in enumerate(pieces):
        if p in names or _PLACEHOLDER.match(p):
            ids.add(i)
    return frozenset(ids)


def _dense(mapping: dict[str, int], source: Path) -> list[str]:
    # Every id is checked before anything is allocated: one id of 3e8 would otherwise ask for gigabytes.
    for piece, idx in mapping.items():
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise TokenizerError(f"{source}: id {idx!r} of piece {piece!r} is not a non-negative integer")
    size = max(mapping.values(), default=-1) + 1
    if size > len(mapping):
        raise TokenizerError(
            f"{source}: the largest id is {size - 1} but there are only {len(mapping)} pieces; "
            "the vocabulary must be contiguous (ids 0 to size-1)"
        )
    pieces: list[str | None] = [None] * size
    for piece, idx in mapping.items():
        if pieces[idx] is not None:
            raise TokenizerError(f"{source}: id {idx} is given to both {pieces[idx]!r} and {piece!r}")
        pieces[idx] = piece
    holes = [i for i, p in enumerate(pieces) if p is None]
    if holes:
        raise TokenizerError(f"{source}: ids {holes[:5]} have no piece; the vocabulary must be contiguous")
    return [p for p in pieces if p is not None]


def _from_tokenizer_json(path: Path) -> tuple[Kind, list[str], set[int]]:
    data = _read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise TokenizerError(f'{path} is not a Hugging Face tokenizer.json (no "model" object)')
    mtype = model.get("type")
    vocab = model.get("vocab")
    mapping: dict[str, int]
    if mtype == "Unigram" and isinstance(vocab, list):
        mapping = {}
        for i, item in enumerate(vocab):
            if not isinstance(item, list) or not item or not isinstance(item[0], str):
                raise TokenizerError(f"{path}: Unigram vocabulary entry {i} is not [piece, score]")
            mapping.setdefault(item[0], i)
    elif mtype in ("BPE", "WordPiece", "WordLevel") and isinstance(vocab, dict):
        mapping = dict(vocab)
    else:
        raise TokenizerError(
            f"{path}: tokenizer model type {mtype!r} is not supported (BPE, WordPiece, Unigram)"
        )
    flagged: set[int] = set()
    for tok in data.get("added_tokens") or []:
        if not isinstance(tok, dict):
            continue
        content, idx = tok.get("content"), tok.get("id")
        if not isinstance(content, str) or not isinstance(idx, int):
            continue
        if mapping.get(content, idx) != idx:
            raise TokenizerError(
                f"{path}: added token {content!r} has id {idx}, the model says {mapping[content]}"
            )
        mapping[content] = idx
        if tok.get("special"):
            flagged.add(idx)
    text = json.dumps([data.get("pre_tokenizer"), data.get("decoder"), data.get("normalizer")])
    kind: Kind
    if mtype == "WordPiece":
        kind = "wordpiece"
    elif mtype == "Unigram" or "Metaspace" in text or "▁" in text:
        kind = "sentencepiece"
    elif mtype == "BPE" and "ByteLevel" in text:
        kind = "bpe"
    else:
        raise TokenizerError(
            f"{path}: a {mtype} tokenizer without byte-level or Metaspace pre-tokenization has no word-start "
            f"marker this lexicon knows; supported: byte-level BPE, WordPiece, SentencePiece"
        )
    return kind, _dense(mapping, path), flagged


def _from_sentencepiece(path: Path) -> list[str]:
    try:
        import sentencepiece as spm
    except ImportError as exc:
        raise TokenizerError(
            f"{path} is a SentencePiece model, and the sentencepiece package is not installed; install it "
            f"or convert the tokenizer to tokenizer.json"
        ) from exc
    sp = spm.SentencePieceProcessor(model_file=str(path))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def load_vocab(name_or_dir: str | os.PathLike[str]) -> Vocab:
    """Read a tokenizer folder (or a hub name, when the hub is reachable) into a :class:`Vocab`."""
    folder = resolve_tokenizer_dir(name_or_dir)
    declared = _declared_specials(folder)
    flagged: set[int] = set()
    kind: Kind
    if (folder / "tokenizer.json").is_file():
        kind, pieces, flagged = _from_tokenizer_json(folder / "tokenizer.json")
    elif (folder / "vocab.json").is_file():
        if not (folder / "merges.txt").is_file():
            raise TokenizerError(f"{folder} has vocab.json but no merges.txt; a byte-level BPE needs both")
        mapping = _read_json(folder / "vocab.json")
        if not isinstance(mapping, dict):
            raise TokenizerError(f"{folder / 'vocab.json'} must map pieces to ids")
        kind, pieces = "bpe", _dense(mapping, folder / "vocab.json")
    elif (folder / "vocab.txt").is_file():
        try:
            lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as exc:
            raise TokenizerError(
                f"{folder / 'vocab.txt'} is not UTF-8 text ({exc.reason} at byte {exc.start}); a WordPiece "
                "vocab.txt holds one piece per line in UTF-8"
            ) from exc
        if lines and lines[-1] == "":
            lines.pop()
        kind, pieces = "wordpiece", lines
    else:
        models = sorted(folder.glob("*.model"))
        kind, pieces = "sentencepiece", _from_sentencepiece(models[0])
        if declared is None:
            declared = {"<s>", "</s>", "<pad>", "<unk>"}
    if not pieces:
        raise TokenizerError(f"{folder}: the vocabulary is empty")
    return Vocab(
        name=str(name_or_dir),
        kind=kind,
        pieces=pieces,
        special_ids=_special_ids(pieces, declared, flagged),
        sha256=vocab_fingerprint(pieces),
    )


def _bpe_surface(piece: str, decoder: dict[str, int]) -> tuple[str | None, bool]:
    try:
        raw = bytes(decoder[c] for c in piece)
    except KeyError:
        return piece, False  # an added token spelled in plain text, not in the byte alphabet
    initial = raw.startswith(b" ")
    if initial:
        raw = raw[1:]
    try:
        return raw.decode("utf-8"), initial
    except UnicodeDecodeError:
        return None, initial  # part of a multi-byte character: no text on its own


def _sp_surface(piece: str) -> tuple[str | None, bool]:
    m = _SP_BYTE.match(piece)
    if m:
        b = int(m.group(1), 16)
        return (chr(b) if b < 0x80 else None), False
    if piece.startswith("▁"):
        return piece[1:].replace("▁", " "), True
    return piece.replace("▁", " "), False


def token_rows(vocab: Vocab) -> TokenRows:
    """Decode every piece into `(surface, word_initial)`; special pieces keep their own spelling."""
    surfaces: list[str | None] = []
    initial: list[bool] = []
    decoder = byte_decoder()
    for i, piece in enumerate(vocab.pieces):
        if i in vocab.special_ids:
            surfaces.append(piece)
            initial.append(False)
            continue
        if vocab.kind == "bpe":
            s, w = _bpe_surface(piece, decoder)
        elif vocab.kind == "wordpiece":
            w = not piece.startswith("##") or piece == "##"
            s = piece if w else piece[2:]
        else:
            s, w = _sp_surface(piece)
        surfaces.append(s)
        initial.append(w)
    n = len(vocab.pieces)
    return TokenRows(
        token_id=list(range(n)),
        piece=list(vocab.pieces),
        surface=surfaces,
        word_initial=initial,
        special=[i in vocab.special_ids for i in range(n)],
    )


def open_tokenizer(vocab: Vocab) -> Any:
    """A `tokenizers.Tokenizer` for the same folder, to count pieces in a corpus.

    Its ids are checked against `vocab` so that counts can never land on the wrong piece.
    """
    import tokenizers

    folder = resolve_tokenizer_dir(vocab.name)
    tok: Any
    if (folder / "tokenizer.json").is_file():
        tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    elif vocab.kind == "bpe":
        tok = tokenizers.ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    elif vocab.kind == "wordpiece":
        lower = True
        cfg = folder / "tokenizer_config.json"
        if cfg.is_file():
            lower = bool(_read_json(cfg).get("do_lower_case", True))
        tok = tokenizers.BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=lower)
    else:
        raise TokenizerError(
            f"{folder}: counting a corpus with a SentencePiece .model needs tokenizer.json; pass "
            f"--frequencies or convert the tokenizer"
        )
    tok.no_padding()
    tok.no_truncation()
    size = tok.get_vocab_size(with_added_tokens=True)
    if size != len(vocab.pieces) or tok.id_to_token(len(vocab.pieces) - 1) != vocab.pieces[-1]:
        raise TokenizerError(f"{folder}: the tokenizer files disagree with each other on the vocabulary")
    return tok
