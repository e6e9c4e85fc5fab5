"""The reverse-dictionary object: opens a run's store once and answers many queries (two-pass search)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from definitionemb.core.device import resolve_device
from definitionemb.core.progress import bar_disable
from definitionemb.embedder.binding import bound
from definitionemb.index.errors import IndexMismatch, IndexMissing, IndexStageError
from definitionemb.index.headwords import WORD_RE, load_headwords, query_clauses, query_words
from definitionemb.index.reverse_dictionary import fusion
from definitionemb.index.reverse_dictionary.fusion import (
    DEFAULT_WEIGHTS,
    NO_SENTENCE_WEIGHTS,
    RERANK,
    SCORERS,
    SECOND_PASS,
    SENSE_LEVEL,
    TOKEN_MISSING,
    ZIPF_CAP,
    fast_bfloat16,
    top_k,
)
from definitionemb.index.reverse_dictionary.store import (
    DbPath,
    check_scorers,
    read_manifest,
    rebuild_hint,
    sentence_caches,
    stale_reason,
    supported_scorers,
)
from definitionemb.index.vocabulary import RunLike, as_run

__all__ = ["ReverseDictionary", "check_query"]

_CHUNK = 16  # queries scored together: 16 keeps the senses×n scores (28 MB at 441k senses) in cache; 56 q/s vs 47 at 32
_SAMPLE = 4096
_QUERY_BATCH = 16  # queries per encoder forward, longest first: 2.5× the speed of a padded chunk of 16
_BLOCK = 256  # queries encoded together before they are scored a chunk at a time
_COLUMNS = ["query", "rank", "word", "score", "pos", "gloss", "single_token", "token_id", "sense_id"]


# Bounds of one request: a definition longer than this is refused (the encoders read a few hundred
# tokens; cutting it silently would answer another question), and so is a request whose answer table
# (queries × k rows) would exceed this many rows (`batch._check_request`).
MAX_QUERY_CHARS = 1000
MAX_ANSWER_ROWS = 2_000_000


def check_query(text: str, what: str = "the query") -> str:
    """The query stripped; a clear error when it has no letters (nothing to look up) or is too long."""
    if not isinstance(text, str) or not WORD_RE.search(text):
        raise IndexStageError(
            f"{what} {text[:60] if isinstance(text, str) else text!r} has no letters; the reverse dictionary "
            'needs a definition in words, e.g. "a small domesticated feline"'
        )
    if len(text) > MAX_QUERY_CHARS:
        raise IndexStageError(
            f"{what} is {len(text):,} characters long; a definition may have at most {MAX_QUERY_CHARS:,} "
            "(the model reads only its start, so a longer one would be cut without a word). Shorten it"
        )
    return text.strip()


class ReverseDictionary:
    """A run's reverse dictionary, loaded once and queried many times (see the module docstring).

    `scorers` (default: every scorer the run supports) are the ones it loads. It only opens: a store
    that lacks them raises :class:`IndexMissing` (build it with :func:`build_reverse` or
    :func:`ensure_reverse`), a stale one :class:`IndexMismatch`.
    """

    def __init__(
        self,
        run: RunLike,
        db: DbPath = None,
        cache_dir: DbPath = None,
        device: str = "auto",
        scorers: Sequence[str] | None = None,
        precision: str = "auto",
    ) -> None:
        r = as_run(run)
        self.run = r
        self.device = device
        if precision not in ("auto", "float32", "bfloat16"):
            raise IndexStageError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
        self.precision = precision
        want = check_scorers(scorers, supported_scorers(r))
        with bound(r, db) as lex:
            from definitionemb.lexicon.db import fingerprint

            self.db = lex.check()
            lex_fp = fingerprint(lex.con)
            self.headwords = load_headwords(lex.con)
            self.pos_values = sorted({str(p) for p in self.headwords.sense_pos.tolist() if p is not None})
        man = read_manifest(r)
        if man is not None:
            why = stale_reason(r, man, lex_fp, self.headwords)
            if why:
                raise IndexMismatch(
                    f"the reverse-dictionary index of run {r.path} is stale: {why}; "
                    f"rebuild with: {rebuild_hint(r)}"
                )
        if man is None or set(want) - set(man.scorers):
            raise IndexMissing(
                f"run {r.path} has no reverse-dictionary index for {', '.join(want)}; "
                f"build it with: {rebuild_hint(r)}"
            )
        self.manifest = man
        self._scorers = tuple(s for s in SCORERS if s in want)
        folder = r.reverse_dir
        self.token_ids = np.load(folder / "token_ids.npy")
        if self.token_ids.shape != (self.headwords.n_words,):
            raise IndexMismatch(
                f"{folder} does not match the lexicon's table; rebuild with: {rebuild_hint(r)}"
            )
        self.sense_vectors: np.ndarray | None = None
        if "senses" in self._scorers:
            self.inv_norms = np.load(folder / "sense_inv_norms.npy")
            self.sense_vectors = r.sense_vectors()
            if (
                self.inv_norms.shape != (self.headwords.n_senses,)
                or self.sense_vectors.shape[0] != self.headwords.n_senses
            ):
                raise IndexMismatch(
                    f"{folder} does not match the lexicon's senses; rebuild with: {rebuild_hint(r)}"
                )
        self.zipf = self._word_prior("frequency", "zipf.npy")
        self.lemma = self._word_prior("lemma", "lemma.npy")
        self.lexical: Any = None
        if "lexical" in self._scorers:
            from definitionemb.index.lexical import GlossBM25

            try:
                self.lexical = GlossBM25.load(folder / "lexical.npz", self.headwords.n_senses)
            except IndexMismatch as exc:
                raise IndexMismatch(f"{exc}; rebuild with: {rebuild_hint(r)}") from exc
            if self.lexical.spec != man.lexical:
                raise IndexMismatch(
                    f"{folder}/lexical.npz is not the index its manifest records; rebuild with: {rebuild_hint(r)}"
                )
        self.glosses: Any = None
        self.heads: Any = None
        if {"glosses", "headwords"} & set(self._scorers):
            self.glosses, self.heads = sentence_caches(
                r, self.headwords, lex_fp, cache_dir, build=False, progress=False
            )
            if (
                self.glosses is None
                or self.glosses.manifest.vectors_digest != man.glosses_digest
                or self.heads.manifest.vectors_digest != man.headwords_digest
            ):
                raise IndexMismatch(
                    f"the shared sentence embeddings changed since run {r.path}'s reverse index was built; "
                    f"rebuild with: {rebuild_hint(r)}"
                )
        self.single = np.flatnonzero(self.token_ids >= 0)
        self._token_rows: dict[str, np.ndarray] = {}
        self._encoder: Any = None  # the sentence encoder, loaded on first use
        self._regressor: Any = None  # the run's DefinitionEncoder, loaded on first use
        self._mats: dict[str, Any] = {}
        self._sample_words: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sample_mats: dict[str, Any] = {}  # second-pass matrix rows of the sample words

    def _word_prior(self, scorer: str, name: str) -> np.ndarray | None:
        """A prior's one value per word from the run's reverse folder (None when `scorer` is not loaded)."""
        if scorer not in self._scorers:
            return None
        path = self.run.reverse_dir / name
        prior = np.load(path)
        if prior.shape != (self.headwords.n_words,):
            raise IndexMismatch(
                f"{path} does not match the lexicon's words; rebuild with: {rebuild_hint(self.run)}"
            )
        return np.asarray(prior)

    def _dtype(self) -> Any:
        import torch

        if self.precision == "float32":
            return torch.float32
        if self.precision == "bfloat16" or self._torch_device().type == "cuda" or fast_bfloat16():
            return torch.bfloat16
        return torch.float32

    def _torch_device(self) -> Any:
        return resolve_device(self.device)

    def _by_sense(self, name: str, q: np.ndarray, rows_first: bool = True) -> np.ndarray:
        """S×n scores of every row of matrix `name` (senses: unit rows; glosses, headwords) against every
        query; its transposed view is n×S. One contiguous row per sense, so the per-word max reads whole
        rows (`Headwords.word_max`). The matrices live as torch tensors, in bfloat16 where the hardware
        multiplies it natively (ranks on hill-seen-500 as in float32 within ±0.4 points, RESULTS.md)."""
        import torch

        mat = self._matrix(name)
        with torch.inference_mode():
            qt = torch.from_numpy(np.ascontiguousarray(q)).to(mat.device, mat.dtype)
            out = mat @ qt.T if rows_first else qt @ mat.T  # n×rows when not rows_first (word-level)
        return out.float().cpu().numpy()

    def _matrix(self, name: str) -> Any:
        """The torch matrix of `senses` (unit rows), `glosses` or `headwords`, loaded on first use."""
        import torch

        if name not in self._mats:
            if name == "senses":
                assert self.sense_vectors is not None
                m = np.asarray(self.sense_vectors, dtype=np.float32) * self.inv_norms[:, None]
            else:
                src = self.glosses if name == "glosses" else self.heads
                m = np.array(src.vectors, dtype=np.float32)
            self._mats[name] = torch.from_numpy(m).to(self._torch_device(), self._dtype())
        return self._mats[name]

    # --- scorers ----------------------------------------------------------------------------------
    @property
    def scorers(self) -> tuple[str, ...]:
        """The scorers this reverse dictionary loaded (the sentence ones need a sentence-encoder model)."""
        return self._scorers

    def _rows(self, matrix: str) -> np.ndarray:
        if matrix not in ("original", "generated"):
            raise IndexStageError(f"matrix must be 'original' or 'generated', not {matrix!r}")
        if matrix not in self._token_rows:
            src = self.run.original_vectors() if matrix == "original" else self.run.token_vectors()
            rows = np.asarray(src[self.token_ids[self.single]], dtype=np.float32)
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            self._token_rows[matrix] = rows
        return self._token_rows[matrix]

    def _sentence(self, texts: list[str], clauses: bool = True) -> np.ndarray:
        """Sentence embeddings of the queries; with `clauses`, a query of several ";"-clauses is the
        normalised mean of its whole embedding and its clauses' mean embedding."""
        parts = [query_clauses(t) if clauses else [t] for t in texts]
        multi = [i for i, p in enumerate(parts) if len(p) > 1]
        flat = [c for i in multi for c in parts[i]]
        vecs = self._encode(list(texts) + flat)  # one call: the clauses share the length-sorted batches
        whole, at = vecs[: len(texts)], len(texts)
        for i in multi:
            n = len(parts[i])
            v = 0.5 * whole[i] + 0.5 * vecs[at : at + n].mean(axis=0)
            whole[i] = v / max(float(np.linalg.norm(v)), 1e-12)
            at += n
        return np.ascontiguousarray(whole)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from definitionemb.index.sentence import SentenceEncoder

            dev = str(resolve_device(self.device))
            assert self.glosses is not None
            man = self.glosses.manifest
            self._encoder = SentenceEncoder(man.model, device=dev, max_length=man.max_length)
        return self._encoder.encode(texts, max_batch=_QUERY_BATCH)

    def query_vectors(
        self,
        texts: Sequence[str],
        pos: Sequence[str | None] | None = None,
        scorers: Sequence[str] | None = None,
        clauses: bool = True,
    ) -> dict[str, np.ndarray]:
        """The queries' vectors the `scorers` need: `regressor` (unit rows of the run's regressor, for
        `tokens`/`senses`) and `sentence` (the sentence encoder's, for `glosses`/`headwords`).

        Encoding many queries at once runs them longest-first in small batches, with little padding;
        :meth:`search` encodes a block of queries so, then scores it a chunk at a time."""
        want = set(check_scorers(scorers, self.scorers))
        out: dict[str, np.ndarray] = {}
        if want & {"tokens", "senses"}:
            if self._regressor is None:
                from definitionemb.embedder.generator import DefinitionEncoder

                self._regressor = DefinitionEncoder(self.run, self.device)
            q = np.asarray(
                self._regressor.encode(list(texts), list(pos) if pos is not None else None, _QUERY_BATCH),
                dtype=np.float32,
            )
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            out["regressor"] = q
        if want & {"glosses", "headwords"}:
            out["sentence"] = self._sentence(list(texts), clauses)
        return out

    def sense_scores(
        self,
        texts: Sequence[str],
        pos: Sequence[str | None] | None = None,
        scorers: Sequence[str] | None = None,
        matrix: str = "original",
        clauses: bool = True,
        vectors: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw scores per scorer (default: every loaded one): cosines for `tokens` n×W (NaN for split
        words), `senses`/`glosses` n×S (sense_id order), `headwords` n×W; BM25 for `lexical` n×S;
        `frequency` n×W, the words' Zipf frequencies capped at `ZIPF_CAP`, and `lemma` n×W (each one
        read-only row, broadcast). `clauses=False` embeds every query whole for the sentence scorers
        (the plain baseline). `vectors`: the queries' :meth:`query_vectors`, when already encoded."""
        texts = [check_query(t) for t in texts]
        out: dict[str, np.ndarray] = {}
        want = set(check_scorers(scorers, self.scorers))
        if vectors is None:
            vectors = self.query_vectors(texts, pos, list(want), clauses)
        if want & {"tokens", "senses"}:
            q = vectors["regressor"]
            if "tokens" in want:
                tok = np.full((len(texts), self.headwords.n_words), np.nan, dtype=np.float32)
                tok[:, self.single] = q @ self._rows(matrix).T
                out["tokens"] = tok
            if "senses" in want:
                assert self.sense_vectors is not None
                out["senses"] = self._by_sense("senses", q).T
        if want & {"glosses", "headwords"}:
            s = vectors["sentence"]
            if "glosses" in want:
                out["glosses"] = self._by_sense("glosses", s).T
            if "headwords" in want:
                out["headwords"] = self._by_sense("headwords", s, rows_first=False)
        if "frequency" in want:
            assert self.zipf is not None
            prior = np.minimum(self.zipf, np.float32(ZIPF_CAP))
            out["frequency"] = np.broadcast_to(prior, (len(texts), self.headwords.n_words))
        if "lemma" in want:
            assert self.lemma is not None
            out["lemma"] = np.broadcast_to(self.lemma, (len(texts), self.headwords.n_words))
        if "lexical" in want:
            assert self.lexical is not None
            out["lexical"] = self.lexical.scores(texts).T
        return out

    def word_scores(
        self, per_sense: dict[str, np.ndarray], sense_mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Per-word scores (n×W) from :meth:`sense_scores`: best sense for `senses`/`glosses`/`lexical`.

        `sense_mask` (bool S) keeps only some senses (a POS filter); words left with none score -inf.
        """
        out: dict[str, np.ndarray] = {}
        for name, arr in per_sense.items():
            if name in SENSE_LEVEL:
                if sense_mask is not None:
                    arr = np.where(sense_mask[None, :], arr, -np.inf)
                out[name] = self.headwords.word_max(arr)
            else:
                out[name] = arr
        return out

    fuse = staticmethod(fusion.fuse)

    def excluded(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per query, the candidate indices spelled like a word (or phrase) of the query."""
        fold = self.headwords.by_fold()
        out = []
        for t in texts:
            idx = [i for w in query_words(t) for i in fold.get(w, ())]
            out.append(np.asarray(sorted(set(idx)), dtype=np.int64))
        return out

    # --- search ------------------------------------------------------------------------------------
    def search(
        self,
        texts: str | Sequence[str],
        k: int = 10,
        pos: str | None = None,
        scorers: Sequence[str] | None = None,
        weights: dict[str, float] | None = None,
        include_query_words: bool = False,
        matrix: str = "original",
        token_missing: float = TOKEN_MISSING,
        progress: bool = False,
        rerank: int = RERANK,
    ) -> pl.DataFrame:
        """Top-k headwords of each definition; columns `query` (0-based), `rank` (1-based), `word`,
        `score`, `pos`, `gloss` (the best-matching sense), `single_token`, `token_id`, `sense_id`.

        `rerank`: how many of the first pass's best words per query the :data:`SECOND_PASS` scorers
        re-score (see :data:`RERANK`); 0 scores every word with every scorer."""
        queries = [texts] if isinstance(texts, str) else list(texts)
        if not queries:
            raise IndexStageError("reverse needs at least one definition")
        queries = [
            check_query(t, f"query {i}" if len(queries) > 1 else "the query") for i, t in enumerate(queries)
        ]
        if k < 1:
            raise IndexStageError(f"k must be at least 1, got {k}")
        if rerank < 0:
            raise IndexStageError(f"rerank must be 0 (score every word) or a number of words, not {rerank}")
        w = self._weights(scorers, weights)
        sense_mask = None
        if pos is not None:
            if pos not in self.pos_values:
                raise IndexStageError(
                    f"no sense of the lexicon has part of speech {pos!r}; choose one of {', '.join(self.pos_values)}"
                )
            sense_mask = self.headwords.sense_pos == pos
        frames = []
        from tqdm import tqdm

        bar = tqdm(
            total=len(queries), desc="reverse", unit="query", file=sys.stderr, disable=bar_disable(progress)
        )
        try:
            for start in range(0, len(queries), _BLOCK):
                block = queries[start : start + _BLOCK]
                vecs = self.query_vectors(block, [pos] * len(block) if pos else None, list(w))
                for lo in range(0, len(block), _CHUNK):
                    chunk = block[lo : lo + _CHUNK]
                    part = {name: v[lo : lo + _CHUNK] for name, v in vecs.items()}
                    frames.append(
                        self._search_chunk(
                            chunk,
                            start + lo,
                            k,
                            pos,
                            sense_mask,
                            w,
                            include_query_words,
                            matrix,
                            token_missing,
                            part,
                            rerank,
                        )
                    )
                    bar.update(len(chunk))
        finally:
            bar.close()
        return pl.concat(frames)

    def _weights(self, scorers: Sequence[str] | None, weights: dict[str, float] | None) -> dict[str, float]:
        """The fusion weights of a search: `weights`, else the tuned defaults of the loaded scorers
        (without the sentence scorers: `senses` alone, the better regressor scorer); scorers named
        explicitly keep their default weight, or 1 where it is 0."""
        if weights is not None:
            base = dict(weights)
        elif "glosses" in self.scorers:
            base = {s: DEFAULT_WEIGHTS[s] for s in self.scorers}
        else:
            base = {s: NO_SENTENCE_WEIGHTS[s] for s in self.scorers if s in NO_SENTENCE_WEIGHTS}
        if scorers is not None:
            scorers = list(check_scorers(scorers, SCORERS))
            base = {s: base.get(s, 1.0) or 1.0 for s in scorers}
        out = {s: v for s, v in base.items() if v}
        return out or {s: 1.0 for s in self.scorers}

    def _search_chunk(
        self,
        chunk: list[str],
        offset: int,
        k: int,
        pos: str | None,
        sense_mask: np.ndarray | None,
        weights: dict[str, float],
        include_query_words: bool,
        matrix: str,
        token_missing: float,
        vectors: dict[str, np.ndarray] | None = None,
        rerank: int = 0,
    ) -> pl.DataFrame:
        hw = self.headwords
        second = {s: w for s, w in weights.items() if s in SECOND_PASS}
        first = {s: w for s, w in weights.items() if s not in SECOND_PASS}
        # Only a sentence scorer finds candidates good enough to re-score; without one (RoBERTa, BART)
        # or with fewer words than the cut, every word gets every scorer.
        cut = max(rerank, k)  # a k past the cut still gets k answers
        two_pass = bool(rerank) and bool(second) and "glosses" in first and cut < hw.n_words
        now = first if two_pass else weights  # the scorers of this (first) pass
        poses = [pos] * len(chunk) if pos else None
        if vectors is None:
            vectors = self.query_vectors(chunk, poses, list(weights))
        per_sense = self.sense_scores(chunk, poses, list(now), matrix, vectors=vectors)
        words = self.word_scores(per_sense, sense_mask)
        sds: dict[str, np.ndarray] = {}
        fused = self.fuse(words, now, token_missing, sds, raw_single=not two_pass)
        if sense_mask is not None:
            has_pos = np.zeros(hw.n_words, dtype=bool)
            has_pos[hw.sense_word[sense_mask]] = True
            fused[:, ~has_pos] = -np.inf
        if not include_query_words:
            for row, idx in enumerate(self.excluded(chunk)):
                fused[row, idx] = -np.inf
        scales = fusion.sense_scales(words, now, sds)
        if two_pass:
            top = top_k(fused, cut)
            extra, sub, sub_scales = self._second_pass(chunk, vectors, top, second, sense_mask)
            fused = np.take_along_axis(fused, top, axis=1) + extra  # n×cut: the candidates' scores
            per_sense = {**per_sense, **sub}
            scales = {**scales, **sub_scales}
            at = top_k(fused, k)
            top, fused_top = np.take_along_axis(top, at, axis=1), np.take_along_axis(fused, at, axis=1)
        else:
            top = top_k(fused, min(k, hw.n_words))
            fused_top = np.take_along_axis(fused, top, axis=1)
        rows: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
        for row in range(len(chunk)):
            cand = top[row]
            sc = fused_top[row]
            keep = np.isfinite(sc)
            cand, sc = cand[keep], sc[keep]
            order = np.lexsort((cand, -sc))
            for rank, j in enumerate(order, start=1):
                wi = int(cand[j])
                sense = self._best_sense(wi, row, per_sense, scales, sense_mask)
                rows["query"].append(offset + row)
                rows["rank"].append(rank)
                rows["word"].append(str(hw.words[wi]))
                rows["score"].append(float(sc[j]))
                rows["pos"].append(hw.sense_pos[sense])
                rows["gloss"].append(str(hw.gloss[sense]))
                tid = int(self.token_ids[wi])
                rows["single_token"].append(tid >= 0)
                rows["token_id"].append(tid if tid >= 0 else None)
                rows["sense_id"].append(int(hw.sense_ids[sense]))
        schema = {
            "query": pl.Int32,
            "rank": pl.Int32,
            "word": pl.String,
            "score": pl.Float32,
            "pos": pl.String,
            "gloss": pl.String,
            "single_token": pl.Boolean,
            "token_id": pl.Int32,
            "sense_id": pl.Int64,
        }
        return pl.DataFrame(rows, schema=schema)

    def _sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fixed, seeded sample of words whose second-pass scores give each query's mean and spread
        (every word when the lexicon has no more than :data:`_SAMPLE`), with their sense rows grouped by
        word and each row's word."""
        if self._sample_words is None:
            n = self.headwords.n_words
            pick = (
                np.arange(n) if n <= _SAMPLE else np.random.default_rng(0).choice(n, _SAMPLE, replace=False)
            )
            words = np.sort(pick).astype(np.int64)
            self._sample_words = (words, *self.headwords.rows_of(words))
        return self._sample_words

    def _word_best(
        self,
        scorer: str,
        words: np.ndarray,
        rows: np.ndarray,
        seg: np.ndarray,
        chunk: list[str],
        vectors: dict[str, np.ndarray],
        sense_mask: np.ndarray | None,
        sample: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """len(words)×n scores of some words under a second-pass scorer (`rows`/`seg`: their sense rows
        and each row's word), and for the sense-level scorers the len(rows)×n per-sense scores behind
        them. The sample's matrix rows are kept between calls (`sample`)."""
        import torch

        if scorer == "lexical":
            assert self.lexical is not None
            v = torch.from_numpy(self.lexical.scores_of(rows, chunk))
        else:
            q = vectors["regressor" if scorer == "senses" else "sentence"]
            mat = self._matrix(scorer)
            at = words if scorer == "headwords" else rows  # the headword matrix has a row per word
            sub = self._sample_mats.get(scorer) if sample else None
            if sub is None:
                sub = mat.index_select(0, torch.from_numpy(at).to(mat.device))
                if sample:
                    self._sample_mats[scorer] = sub
            with torch.inference_mode():
                qt = torch.from_numpy(np.ascontiguousarray(q)).to(mat.device, mat.dtype)
                out = (sub @ qt.T).float().cpu().numpy()
            v = torch.from_numpy(out)  # made outside inference mode: the POS filter writes into it
            if scorer == "headwords":
                return v.numpy(), None
        if sense_mask is not None:
            v[torch.from_numpy(~sense_mask[rows])] = -np.inf
        n = v.shape[1]
        best = torch.full((len(words), n), -np.inf, dtype=torch.float32)
        best.scatter_reduce_(0, torch.from_numpy(seg)[:, None].expand(-1, n), v, "amax")
        return best.numpy(), v.numpy()

    def _second_pass(
        self,
        chunk: list[str],
        vectors: dict[str, np.ndarray],
        cand: np.ndarray,
        weights: dict[str, float],
        sense_mask: np.ndarray | None,
    ) -> tuple[np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
        """The :data:`SECOND_PASS` scorers on each query's candidates `cand` (n×M word indices).

        Returns what they add to the candidates' fused scores (n×M: Σ weight × z, with each query's
        mean and sd over the sample words), their per-sense scores of every candidate's senses, and the
        weight/sd factors the best-sense lookup needs.
        """
        hw = self.headwords
        n = len(chunk)
        sample = self._sample()
        words, col = np.unique(cand, return_inverse=True)
        col = col.reshape(cand.shape)
        rows, seg = hw.rows_of(words)
        extra = np.zeros(cand.shape, dtype=np.float32)
        per_sense: dict[str, Any] = {}
        scales: dict[str, np.ndarray] = {}
        for s, w in weights.items():
            ref, _ = self._word_best(s, *sample, chunk, vectors, sense_mask, sample=True)
            best, by_sense = self._word_best(s, words, rows, seg, chunk, vectors, sense_mask, sample=False)
            ref = np.where(np.isfinite(ref), ref, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a query no sample word can answer
                mu, sd = np.nanmean(ref, axis=0), np.nanstd(ref, axis=0)
            mu, sd = np.nan_to_num(mu, nan=0.0), np.maximum(np.nan_to_num(sd, nan=1.0), 1e-9)
            scale = (np.float32(w) / sd).astype(np.float32)
            extra += scale[:, None] * (best[col, np.arange(n)[:, None]] - mu[:, None].astype(np.float32))
            if by_sense is not None:
                per_sense[s] = _SomeSenses(rows, by_sense, hw.n_senses)
                scales[s] = scale
        return extra, per_sense, scales

    def _best_sense(
        self,
        wi: int,
        row: int,
        per_sense: dict[str, np.ndarray],
        scales: dict[str, np.ndarray],
        sense_mask: np.ndarray | None,
    ) -> int:
        """The sense of word `wi` that matched best: weighted z of the sense-level scorers (first sense
        when only word-level scorers are used)."""
        senses = self.headwords.senses_of(wi)
        if sense_mask is not None and sense_mask[senses].any():
            senses = senses[sense_mask[senses]]
        if not scales:
            return int(senses[0])
        total = np.zeros(len(senses), dtype=np.float64)
        for s, scale in scales.items():
            total += float(scale[row]) * per_sense[s][row, senses]
        return int(senses[int(np.argmax(total))])


class _SomeSenses:
    """Scores of some senses only (the second pass's), read like the n×S array they stand for."""

    def __init__(self, rows: np.ndarray, values: np.ndarray, n_senses: int) -> None:
        self.at = np.full(n_senses, -1, dtype=np.int64)
        self.at[rows] = np.arange(len(rows))
        self.values = values  # len(rows)×n

    def __getitem__(self, key: tuple[int, np.ndarray]) -> np.ndarray:
        row, senses = key
        at = self.at[senses]
        if (at < 0).any():
            raise IndexError("a sense outside the second pass's candidates")
        return self.values[at, row]
