"""Token frequencies, frequency ranks and frequency buckets.

Three sources, best first: a fairseq `dict.txt` (RoBERTa/BART ship their pre-training counts in it),
counts from tokenizing a corpus, or the vocabulary order (BPE vocabularies are roughly in merge order).
Ranks and buckets are over non-special tokens only; special tokens get the bucket `special`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from definitionemb.core.progress import bar_disable
from definitionemb.lexicon.errors import TokenizerError
from definitionemb.lexicon.tokenizers import Vocab, open_tokenizer, resolve_tokenizer_dir

__all__ = [
    "Frequencies",
    "FAIRSEQ_SPECIALS",
    "from_dict_txt",
    "from_corpus",
    "from_chunks",
    "from_vocab_order",
    "ranks_and_buckets",
    "check_buckets",
]

# fairseq's Dictionary puts <s> <pad> </s> <unk> before the dict.txt lines, so HF id = line index + 4.
FAIRSEQ_SPECIALS = 4
BUCKETS = ("frequent", "medium", "rare")


@dataclass(frozen=True)
class Frequencies:
    """Per-token counts in id order (-1 where the source says nothing) and where they came from."""

    counts: np.ndarray
    source: str


def _parse_dict_lines(path: Path) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenizerError(f"cannot read the frequency file {path}: {exc}") from exc
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split(" ")
        if parts[-1] == "#fairseq:overwrite":
            parts = parts[:-1]
        if len(parts) < 2 or not parts[-1].lstrip("-").isdigit():
            raise TokenizerError(f"{path}:{n}: expected '<symbol> <count>', found {line[:80]!r}")
        rows.append((" ".join(parts[:-1]), int(parts[-1])))
    if not rows:
        raise TokenizerError(f"{path} holds no '<symbol> <count>' lines")
    return rows


def _gpt2_encoder(path: Path, vocab: Vocab) -> dict[int, str] | None:
    """GPT-2's own id -> piece map, when encoder.json lies beside dict.txt or the tokenizer."""
    for folder in (path.parent, resolve_tokenizer_dir(vocab.name)):
        enc = folder / "encoder.json"
        if enc.is_file():
            data = json.loads(enc.read_text(encoding="utf-8"))
            return {int(i): p for p, i in data.items()}
    return None


def from_dict_txt(path: str | os.PathLike[str], vocab: Vocab) -> Frequencies:
    """Counts from a fairseq dictionary file.

    Two layouts exist. GPT-2-based models (RoBERTa, BART) write GPT-2 BPE ids as symbols: line *i* is the
    token of Hugging Face id *i* + 4. Other fairseq models write the pieces themselves. The layout is told
    apart by the symbols; the id mapping is verified (against `encoder.json` when one is at hand, and
    always against the literal symbols such as `madeupword0000`), and a mismatch is refused.
    """
    p = Path(path)
    rows = _parse_dict_lines(p)
    counts = np.full(len(vocab.pieces), -1, dtype=np.int64)
    numeric = sum(sym.isdigit() for sym, _ in rows)
    if numeric > len(rows) // 2:
        if len(rows) + FAIRSEQ_SPECIALS > len(vocab.pieces):
            raise TokenizerError(
                f"{p} has {len(rows)} lines, more than the {len(vocab.pieces) - FAIRSEQ_SPECIALS} "
                f"non-leading ids of {vocab.name}: it is not this tokenizer's dictionary"
            )
        if not all(i in vocab.special_ids for i in range(FAIRSEQ_SPECIALS)):
            raise TokenizerError(
                f"{p} is a GPT-2-id fairseq dictionary, but ids 0-3 of {vocab.name} are not the special "
                f"tokens <s> <pad> </s> <unk>; the line + 4 mapping does not hold for this tokenizer"
            )
        encoder = _gpt2_encoder(p, vocab)
        wrong: list[str] = []
        for i, (sym, count) in enumerate(rows):
            hf = i + FAIRSEQ_SPECIALS
            if sym.isdigit():
                if encoder is not None and encoder.get(int(sym)) != vocab.pieces[hf]:
                    wrong.append(
                        f"line {i + 1}: GPT-2 id {sym} is {encoder.get(int(sym))!r}, id {hf} is "
                        f"{vocab.pieces[hf]!r}"
                    )
            elif sym != vocab.pieces[hf]:
                wrong.append(f"line {i + 1}: {sym!r} but id {hf} is {vocab.pieces[hf]!r}")
            counts[hf] = count
        if wrong:
            raise TokenizerError(f"{p} does not match {vocab.name}: " + "; ".join(wrong[:3]))
        return Frequencies(counts, f"dict.txt:{p}")
    index = {piece: i for i, piece in enumerate(vocab.pieces)}
    unknown = [sym for sym, _ in rows if sym not in index]
    if unknown:
        raise TokenizerError(
            f"{p}: {len(unknown)} symbols are not pieces of {vocab.name} (e.g. {unknown[:3]}); "
            f"pass the dict.txt of this tokenizer"
        )
    for sym, count in rows:
        counts[index[sym]] = count
    return Frequencies(counts, f"dict.txt:{p}")


def from_chunks(
    chunks: Sequence[str],
    first: Sequence[bool],
    weights: np.ndarray,
    vocab: Vocab,
    source: str,
    batch: int = 16384,
    progress: bool = False,
) -> Frequencies:
    """Counts from space-separated chunks of text, each tokenized once and weighted by how often it occurs.

    Every pre-tokenizer this lexicon knows (byte-level, BERT, Metaspace) splits at a single space between
    two non-spaces, so a text's pieces are the pieces of its chunks; a byte-level BPE sees a chunk that
    follows a space as ``" chunk"``, which `first` (the chunk opens its text) tells apart. Texts with runs
    of spaces or spaces at either end are passed as one chunk. Tokenizing the distinct chunks
    instead of every line does the same counting several times faster.
    """
    tok = open_tokenizer(vocab)
    counts = np.zeros(len(vocab.pieces), dtype=np.float64)
    spaced = vocab.kind == "bpe"
    texts = [c if (f or not spaced) else " " + c for c, f in zip(chunks, first, strict=True)]
    w = np.asarray(weights, dtype=np.float64)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(texts), desc="counting pieces", unit=" chunks", leave=False, disable=bar_disable()
        )
    for start in range(0, len(texts), batch):
        encs = tok.encode_batch(texts[start : start + batch], add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        ids = np.fromiter((i for e in encs for i in e.ids), dtype=np.int64, count=int(lengths.sum()))
        counts += np.bincount(
            ids, weights=np.repeat(w[start : start + batch], lengths), minlength=len(counts)
        )
        if bar is not None:
            bar.update(len(encs))
    if bar is not None:
        bar.close()
    return Frequencies(np.rint(counts).astype(np.int64), source)


def from_corpus(lines: Iterable[str], vocab: Vocab, source: str, progress: bool = False) -> Frequencies:
    """Counts of each piece when the tokenizer reads `lines` (special tokens not added)."""
    tally: Counter[tuple[str, bool]] = Counter()
    for line in lines:
        if not line:
            continue
        if "  " in line or line[0] == " " or line[-1] == " ":
            tally[(line, True)] += 1  # runs of spaces are pieces of their own: keep such a line whole
            continue
        for n, chunk in enumerate(line.split(" ")):
            tally[(chunk, n == 0)] += 1
    keys = list(tally)
    return from_chunks(
        [k[0] for k in keys],
        [k[1] for k in keys],
        np.fromiter(tally.values(), dtype=np.float64, count=len(keys)),
        vocab,
        source,
        progress=progress,
    )


def from_vocab_order(vocab: Vocab) -> Frequencies:
    """No counts: the vocabulary order stands in for frequency order (ids earlier = more frequent)."""
    return Frequencies(np.full(len(vocab.pieces), -1, dtype=np.int64), "vocab-order")


def check_buckets(buckets: Sequence[float]) -> tuple[float, float, float]:
    """Validate `(frequent, medium, rare)` shares: three non-negative numbers summing to 1."""
    if len(buckets) != 3 or any(b < 0 for b in buckets) or abs(sum(buckets) - 1.0) > 1e-6:
        raise TokenizerError(
            f"buckets must be three non-negative shares (frequent, medium, rare) summing to 1, got {tuple(buckets)}"
        )
    return float(buckets[0]), float(buckets[1]), float(buckets[2])


def ranks_and_buckets(
    freq: Frequencies, special: Sequence[bool], buckets: Sequence[float] = (0.3, 0.5, 0.2)
) -> tuple[np.ndarray, list[str]]:
    """`freq_rank` (0 = most frequent; -1 for special tokens) and the bucket of every token.

    Ties, and tokens without a count, fall back to id order, which is frequency order for
    vocabularies built by merging frequent pairs first.
    """
    share = check_buckets(buckets)
    n = len(freq.counts)
    is_special = np.asarray(special, dtype=bool)
    ids = np.arange(n)
    normal = ids[~is_special]
    # lexsort: last key is primary -> descending count, then ascending id
    order = normal[np.lexsort((normal, -freq.counts[normal]))]
    rank = np.full(n, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    m = len(order)
    cut1 = round(m * share[0])
    cut2 = round(m * (share[0] + share[1]))
    labels = np.where(rank < cut1, 0, np.where(rank < cut2, 1, 2))
    names = [("special" if is_special[i] else BUCKETS[labels[i]]) for i in range(n)]
    return rank, names
