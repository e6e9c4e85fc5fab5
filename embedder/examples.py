"""Prompts and examples: definition rows → token-id sequences with one target position each.

A prompt is `[start] prefix revealed… TARGET suffix [end]`, where prefix/suffix are the template's text
around `{target}` (see PromptConfig). The target piece is placed by id, never by re-tokenising the word:
"Ġcat" and "cat" are different rows and re-tokenising would lose which one is meant. For a word the
tokenizer splits into pieces p1..pk there is one example per piece, left to right, with the earlier pieces
revealed and the current one the target (later pieces are left out). All text is tokenised once, in batch
calls of the fast tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from definitionemb.embedder.config import PromptConfig
from definitionemb.embedder.lexicon_io import Definitions
from definitionemb.embedder.models import SEQ2SEQ, mask_token_id, word_prefix

__all__ = ["Examples", "Collator", "build_examples", "word_pieces", "split_heldout", "heldout_tokens"]


@dataclass(frozen=True)
class Examples:
    """Ragged token-id sequences (flat + offsets) with one target position per sequence."""

    ids: np.ndarray  # int32, all sequences concatenated
    offsets: np.ndarray  # int64, n+1
    target_pos: np.ndarray  # int32: index of the target inside its sequence
    span_start: np.ndarray  # int32: index of the first revealed piece (== target_pos for single pieces)
    target_id: np.ndarray  # int64: whose original row is the target (-1: none, e.g. a sense)
    token_id: np.ndarray  # int64: the aligned token the example belongs to (-1: none)
    sense_id: np.ndarray  # int64
    rank: np.ndarray  # int32

    def __len__(self) -> int:
        return int(self.target_pos.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int32)

    def seq(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, idx: np.ndarray) -> Examples:
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        if len(idx):
            gather = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
        else:
            gather = np.zeros(0, dtype=np.int64)
        return Examples(
            ids=self.ids[gather],
            offsets=offsets,
            target_pos=self.target_pos[idx],
            span_start=self.span_start[idx],
            target_id=self.target_id[idx],
            token_id=self.token_id[idx],
            sense_id=self.sense_id[idx],
            rank=self.rank[idx],
        )

    @staticmethod
    def concat(parts: list[Examples]) -> Examples:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("nothing to concatenate")
        offs = [parts[0].offsets]
        base = parts[0].offsets[-1]
        for p in parts[1:]:
            offs.append(p.offsets[1:] + base)
            base += p.offsets[-1]
        return Examples(
            ids=np.concatenate([p.ids for p in parts]),
            offsets=np.concatenate(offs),
            target_pos=np.concatenate([p.target_pos for p in parts]),
            span_start=np.concatenate([p.span_start for p in parts]),
            target_id=np.concatenate([p.target_id for p in parts]),
            token_id=np.concatenate([p.token_id for p in parts]),
            sense_id=np.concatenate([p.sense_id for p in parts]),
            rank=np.concatenate([p.rank for p in parts]),
        )


def _split_template(template: str) -> tuple[str, str]:
    prefix, suffix = template.split("{target}")
    return prefix, suffix


def build_examples(
    tokenizer: Any,
    prompt: PromptConfig,
    defs: Definitions,
    pieces: list[list[int]] | None = None,
) -> Examples:
    """One example per definition row (or per piece of `pieces[i]` when given).

    `pieces[i]` is the target piece sequence of row i; by default `[token_id]` (or the mask token for
    rows without a token, e.g. sense vectors). Sequences longer than `prompt.max_length` lose the tail
    of their suffix (the gloss end), never the target.
    """
    n = len(defs)
    mask_id = int(mask_token_id(tokenizer))  # type: ignore[arg-type]  # load_tokenizer checked it
    # T5 has no start token: its prompts are `… </s>` only.
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    starts = [] if start is None else [int(start)]
    end_id = int(tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id)
    if pieces is None:
        pieces = [[int(t)] if t >= 0 else [mask_id] for t in defs.token_id]
    prefixes: list[str] = []
    suffixes: list[str] = []
    for pos, gloss in zip(defs.pos, defs.gloss, strict=True):
        use_pos = prompt.use_pos and pos is not None and "{pos}" in prompt.template
        pre, suf = _split_template(prompt.template if use_pos else prompt.template_no_pos)
        fill = {"pos": pos or "", "gloss": gloss}
        prefixes.append(pre.format(**fill) if pre else "")
        suffixes.append(suf.format(**fill))
    # One batch call per side: the fast tokenizer parallelises internally.
    pre_ids: list[list[int]]
    if any(prefixes):
        pre_ids = tokenizer(prefixes, add_special_tokens=False)["input_ids"]
    else:
        pre_ids = [[] for _ in range(n)]
    suf_ids: list[list[int]] = tokenizer(suffixes, add_special_tokens=False)["input_ids"]

    seqs: list[list[int]] = []
    rows: list[
        tuple[int, ...]
    ] = []  # per example: target_pos, span_start, target_id, token_id, sense_id, rank
    max_len = prompt.max_length
    for i in range(n):
        head = [*starts, *pre_ids[i]]
        ps = pieces[i]
        for j, piece in enumerate(ps):
            body = head + ps[:j] + [piece]
            room = max_len - len(body) - 1
            if room < 1:  # a template prefix that leaves no room for the gloss: skip, counted by the caller
                continue
            seqs.append(body + suf_ids[i][:room] + [end_id])
            target = piece if piece != mask_id or defs.token_id[i] >= 0 else -1
            rows.append(
                (
                    len(body) - 1,
                    len(head),
                    target,
                    int(defs.token_id[i]),
                    int(defs.sense_id[i]),
                    int(defs.rank[i]),
                )
            )
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.fromiter((t for s in seqs for t in s), dtype=np.int32, count=int(offsets[-1]))
    tpos, sstart, tid, tok, sid, rk = np.array(rows, dtype=np.int64).reshape(-1, 6).T.copy()
    return Examples(
        ids=flat,
        offsets=offsets,
        target_pos=tpos.astype(np.int32),
        span_start=sstart.astype(np.int32),
        target_id=tid,
        token_id=tok,
        sense_id=sid,
        rank=rk.astype(np.int32),
    )


def word_pieces(
    tokenizer: Any, words: list[str], family: str, min_pieces: int = 2, max_pieces: int = 4
) -> list[list[int]]:
    """Word-initial pieces of each word (as it would appear after a space); [] outside [min, max].

    The spelling comes from the tokenizer (`models.word_prefix`): `Ġ` pieces for byte-level BPE, `▁`
    pieces for SentencePiece, WordPiece's bare word. `family` is kept for callers that pass it.
    """
    del family
    prefix = word_prefix(tokenizer)
    texts = [prefix + w for w in words]
    out = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [p if min_pieces <= len(p) <= max_pieces else [] for p in out]


def split_heldout(token_ids: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """A seeded set of held-out token ids (by token, so no held-out token is ever trained on)."""
    uniq = np.unique(token_ids[token_ids >= 0])
    if frac <= 0 or len(uniq) < 2:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 7919])
    k = max(1, round(frac * len(uniq)))
    return np.sort(rng.choice(uniq, size=k, replace=False)).astype(np.int64)


def heldout_tokens(token_ids: np.ndarray, frac: float, max_tokens: int, seed: int) -> np.ndarray:
    """The held-out token ids of a run: `frac` of the tokens, at most `max_tokens`, chosen by `seed` alone.

    A function of the set of tokens and the seed only, so runs that differ in preset, training seed,
    senses per token or pooling are scored on the same tokens.
    """
    held = split_heldout(token_ids, frac, seed)
    if len(held) > max_tokens:
        held = np.sort(np.random.default_rng([seed, 17]).choice(held, max_tokens, replace=False))
    return held.astype(np.int64)


class Collator:
    """Pads a batch of examples into tensors and corrupts the target position.

    `mode="train"`: BERT-style corruption at the target (50 % mask, 25 % random token, 25 % kept), drawn
    from a generator seeded per micro-batch so that resumes and DDP ranks see the same corruption as an
    uninterrupted single process. `mode="generate"`: the target is always the mask token.
    """

    def __init__(
        self,
        tokenizer: Any,
        family: str,
        vocab_size: int,
        p_mask: float = 0.5,
        p_random: float = 0.25,
        decoder_start_id: int | None = None,
        pad_multiple: int = 1,
    ) -> None:
        self.family = family
        self.pad_multiple = max(1, pad_multiple)  # 8 on GPUs: tensor-core shapes and fewer compiled shapes
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.mask_id = int(mask_token_id(tokenizer))  # type: ignore[arg-type]  # load_tokenizer checked it
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        # The decoder's second input: BART's `<s>`; T5 and T5Gemma lead with the sentinel that stands for
        # the masked span, as in their span-corruption pre-training (`<extra_id_0> piece …`).
        self.dec_lead = self.mask_id if family in ("t5", "t5gemma") or bos is None else int(bos)
        self.dec_start = int(
            decoder_start_id
            if decoder_start_id is not None
            else (tokenizer.eos_token_id if tokenizer.eos_token_id is not None else self.dec_lead)
        )
        self.p_mask = p_mask
        self.p_random = p_random
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        allowed = np.setdiff1d(
            np.arange(vocab_size), np.fromiter(special, dtype=np.int64, count=len(special))
        )
        self.random_pool = torch.from_numpy(allowed.astype(np.int64))

    def __call__(
        self, ex: Examples, idx: np.ndarray, mode: str = "train", seed: int = 0
    ) -> dict[str, torch.Tensor]:
        idx = np.asarray(idx, dtype=np.int64)
        lens = ex.lengths[idx]
        b, width = len(idx), int(lens.max())
        width = -(-width // self.pad_multiple) * self.pad_multiple
        ids = np.full((b, width), self.pad_id, dtype=np.int64)
        att = np.zeros((b, width), dtype=np.int64)
        for r, i in enumerate(idx):
            s = ex.seq(int(i))
            ids[r, : len(s)] = s
            att[r, : len(s)] = 1
        tpos = torch.from_numpy(ex.target_pos[idx].astype(np.int64))
        input_ids = torch.from_numpy(ids)
        rows = torch.arange(b)
        if mode == "train":
            g = torch.Generator().manual_seed(int(seed))
            u = torch.rand(b, generator=g)
            rand_tok = self.random_pool[torch.randint(len(self.random_pool), (b,), generator=g)]
            cur = input_ids[rows, tpos]
            new = torch.where(
                u < self.p_mask,
                torch.full_like(cur, self.mask_id),
                torch.where(u < self.p_mask + self.p_random, rand_tok, cur),
            )
            input_ids[rows, tpos] = new
        else:
            input_ids[rows, tpos] = self.mask_id
        batch = {
            "input_ids": input_ids,
            "attention_mask": torch.from_numpy(att),
            "target_pos": tpos,
        }
        if self.family in SEQ2SEQ:
            # Teacher forcing: [decoder_start, lead, revealed pieces…]; the last position predicts the target.
            dlen = (ex.target_pos[idx] - ex.span_start[idx]).astype(np.int64) + 2
            dw = int(dlen.max())
            dec = np.full((b, dw), self.pad_id, dtype=np.int64)
            datt = np.zeros((b, dw), dtype=np.int64)
            for r, i in enumerate(idx):
                s = ex.seq(int(i))
                revealed = s[ex.span_start[i] : ex.target_pos[i]]
                dec[r, : dlen[r]] = [self.dec_start, self.dec_lead, *revealed.tolist()]
                datt[r, : dlen[r]] = 1
            batch["decoder_input_ids"] = torch.from_numpy(dec)
            batch["decoder_attention_mask"] = torch.from_numpy(datt)
            batch["decoder_pos"] = torch.from_numpy(dlen - 1)
        return batch
