"""Building a run's reverse-dictionary store (the index stage's work; opening one never builds)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from definitionemb.core.fileio import save_npy, write_bytes
from definitionemb.core.progress import bar_disable
from definitionemb.embedder.binding import bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import IndexMismatch
from definitionemb.index.faiss_index import source_digest
from definitionemb.index.headwords import Headwords, lemma_share, load_headwords, single_token_ids, word_zipf
from definitionemb.index.reverse_dictionary.fusion import SCORERS
from definitionemb.index.reverse_dictionary.store import (
    REVERSE_FORMAT,
    DbPath,
    ReverseManifest,
    check_scorers,
    digest_or_none,
    frequency_source,
    model_of,
    read_manifest,
    rebuild_hint,
    sentence_caches,
    stale_reason,
    supported_scorers,
)
from definitionemb.index.vocabulary import RunLike, as_run

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ENCODE_PER_S_CPU", "build_reverse", "ensure_reverse"]


# What an encoder pass over a lexicon costs on a 2-core CPU with MiniLM (issue 27: 82,773 sense vectors
# at 80–110 per second); the up-front estimate of a build divides by it.
ENCODE_PER_S_CPU = 90.0
_SENSE_CHUNK = 2048  # senses encoded between two saves of a resumable build (~20 s on 2 cores)


def _write_sense_vectors(run: RunDir, hw: Headwords, progress: bool) -> float:
    """sense_vectors.npy + sense_ids.npy through the regressor (the generation prompt, with POS).

    Chunks go into `<run>/index/reverse/.sense_vectors.partial/` as they are done, so an interrupted
    build (Ctrl-C) resumes where it stopped; a partial build of other senses or vectors starts over.
    """
    from definitionemb.embedder.generator import DefinitionEncoder
    from tqdm import tqdm

    encoder = DefinitionEncoder(run)
    t0 = time.perf_counter()
    dim = int(run.manifest().get("dim") or run.original_vectors().shape[1])
    n = hw.n_senses
    partial = run.reverse_dir / ".sense_vectors.partial"
    stamp = {
        "run_id": run.run_id,
        "headwords_sha256": hw.digest(),
        "token_vectors_digest": digest_or_none(run.array_path("token_vectors.npy")),
        "n": n,
        "dim": dim,
    }
    stamp_path, vec_path, done_path = partial / "stamp.json", partial / "vectors.npy", partial / "done.npy"
    n_chunks = (n + _SENSE_CHUNK - 1) // _SENSE_CHUNK
    fresh = not (stamp_path.is_file() and vec_path.is_file() and done_path.is_file())
    if not fresh:
        try:
            fresh = json.loads(stamp_path.read_text(encoding="utf-8")) != stamp
        except (OSError, json.JSONDecodeError):
            fresh = True
    if fresh:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        mm = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float32, shape=(n, dim))
        done = np.zeros(n_chunks, dtype=bool)
        save_npy(done_path, done)
        write_bytes(stamp_path, json.dumps(stamp).encode())
    else:
        mm = np.lib.format.open_memmap(vec_path, mode="r+")
        done = np.load(done_path)
    with tqdm(
        total=n,
        initial=min(n, int(done.sum()) * _SENSE_CHUNK),
        desc="sense vectors",
        unit="sense",
        file=sys.stderr,
        disable=bar_disable(progress),
    ) as bar:
        for c in range(n_chunks):
            if done[c]:
                continue
            lo, hi = c * _SENSE_CHUNK, min(n, (c + 1) * _SENSE_CHUNK)
            mm[lo:hi] = encoder.encode(hw.gloss[lo:hi].tolist(), hw.sense_pos[lo:hi].tolist())
            mm.flush()
            done[c] = True
            save_npy(done_path, done)
            bar.update(hi - lo)
    run.save_array("sense_vectors.npy", np.asarray(mm))
    run.save_array("sense_ids.npy", hw.sense_ids)
    del mm
    shutil.rmtree(partial, ignore_errors=True)
    return time.perf_counter() - t0


def _sentence_missing(
    run: RunDir, hw: Headwords, lex_fp: str, cache_dir: DbPath, want: Sequence[str]
) -> bool:
    """Whether the `glosses`/`headwords` scorers in `want` still need their sentence embeddings built."""
    if not {"glosses", "headwords"} & set(want):
        return False
    from definitionemb.index.gloss_cache import cache_dir_for

    _, sha = model_of(run)
    return any(
        not (cache_dir_for(lex_fp, sha, hw.digest(), kind, cache_dir) / "manifest.json").is_file()
        for kind in ("glosses", "headwords")
    )


def _announce(run: RunDir, hw: Headwords, sense_vectors: bool, sentence: bool) -> None:
    """Say before a long build what it will encode and about how long it takes (stderr)."""
    parts, texts = [], 0
    if sense_vectors:
        parts.append(f"{hw.n_senses:,} sense vectors")
        texts += hw.n_senses
    if sentence:
        parts.append(f"the sentence embeddings of {hw.n_senses:,} glosses and {hw.n_words:,} headwords")
        texts += hw.n_senses + hw.n_words
    if not texts:
        return
    minutes = texts / ENCODE_PER_S_CPU / 60
    when = f"~{minutes:.0f} min on a 2-core CPU" if minutes >= 1 else "under a minute"
    print(
        f"building the reverse index of run {run.path}: {' and '.join(parts)}, {when} (less on a GPU); "
        "Ctrl-C keeps what is done and the next build resumes there",
        file=sys.stderr,
        flush=True,
    )


def build_reverse(
    run: RunLike,
    db: DbPath = None,
    cache_dir: DbPath = None,
    progress: bool = True,
    scorers: Sequence[str] | None = None,
) -> ReverseManifest:
    """Build (or rebuild) what the reverse dictionary needs for a run's `scorers` (default: all the run
    supports) and write its manifest.

    `senses` needs sense vectors: written through the regressor when the run has none or they do not
    follow the lexicon's senses. `glosses`/`headwords` need the shared sentence embeddings, built only
    if their cache entry is missing.
    """
    r = as_run(run)
    want = check_scorers(scorers, supported_scorers(r))
    t0 = time.perf_counter()
    with bound(r, db) as lex:
        from definitionemb.lexicon.db import fingerprint

        lex_fp = fingerprint(lex.con)
        hw = load_headwords(lex.con)
        tid = lex.tokenizer_id
        token_ids = single_token_ids(lex.con, tid, hw.words)
        lemma = lemma_share(lex.con, hw) if "lemma" in want else None
    seconds: dict[str, float] = {"headwords": round(time.perf_counter() - t0, 3)}
    out = r.reverse_dir
    save_npy(out / "token_ids.npy", token_ids)
    sv_path = r.array_path("sense_vectors.npy")
    need_senses = "senses" in want and not (
        sv_path.is_file()
        and r.array_path("sense_ids.npy").is_file()
        and np.array_equal(np.asarray(r.sense_ids()), hw.sense_ids)
    )
    if progress:
        _announce(r, hw, need_senses, _sentence_missing(r, hw, lex_fp, cache_dir, want))
    if "senses" in want:
        if need_senses:
            seconds["sense_vectors"] = round(_write_sense_vectors(r, hw, progress), 3)
        t1 = time.perf_counter()
        sv = np.asarray(r.sense_vectors())
        norms = np.linalg.norm(sv, axis=1).astype(np.float32)
        inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
        del sv
        save_npy(out / "sense_inv_norms.npy", inv)
        seconds["sense_norms"] = round(time.perf_counter() - t1, 3)
    freq = None
    if "frequency" in want:
        t3 = time.perf_counter()
        save_npy(out / "zipf.npy", word_zipf(hw.words))
        freq = frequency_source()
        seconds["frequency"] = round(time.perf_counter() - t3, 3)
    if lemma is not None:
        save_npy(out / "lemma.npy", lemma)
    lexical = None
    if "lexical" in want:
        from definitionemb.index.lexical import GlossBM25

        t4 = time.perf_counter()
        bm25 = GlossBM25.build(hw.gloss.tolist())
        bm25.save(out / "lexical.npz")
        lexical = bm25.spec
        seconds["lexical"] = round(time.perf_counter() - t4, 3)
    glosses = heads = None
    if {"glosses", "headwords"} & set(want):
        t2 = time.perf_counter()
        glosses, heads = sentence_caches(r, hw, lex_fp, cache_dir, build=True, progress=progress)
        seconds["sentence_embeddings"] = round(time.perf_counter() - t2, 3)
    man = ReverseManifest(
        format=REVERSE_FORMAT,
        run_id=r.run_id,
        lexicon_fingerprint=lex_fp,
        headwords_sha256=hw.digest(),
        n_words=hw.n_words,
        n_senses=hw.n_senses,
        n_single_token=int((token_ids >= 0).sum()),
        tokenizer_id=tid,
        scorers=[s for s in SCORERS if s in want or (s in ("glosses", "headwords") and glosses is not None)],
        sense_vectors_digest=source_digest(sv_path) if "senses" in want else "",
        token_vectors_digest=digest_or_none(r.array_path("token_vectors.npy")),
        original_vectors_digest=digest_or_none(r.array_path("original_vectors.npy")),
        glosses=str(glosses.path) if glosses is not None else None,
        glosses_digest=glosses.manifest.vectors_digest if glosses is not None else None,
        headwords=str(heads.path) if heads is not None else None,
        headwords_digest=heads.manifest.vectors_digest if heads is not None else None,
        seconds={**seconds, "total": round(time.perf_counter() - t0, 3)},
        frequency=freq,
        lexical=lexical,
    )
    write_bytes(out / "manifest.json", json.dumps(man.to_dict(), indent=2, sort_keys=True).encode())
    return man


class BuildOptions(TypedDict, total=False):
    """:func:`build_reverse`'s options past the run, as :func:`ensure_reverse` hands them on."""

    db: DbPath
    cache_dir: DbPath
    progress: bool
    scorers: Sequence[str] | None


def ensure_reverse(run: RunLike, **options: Unpack[BuildOptions]) -> ReverseManifest:
    """The run's reverse-dictionary store with at least `scorers` (default: all the run supports), built
    or extended first where it lacks them (`options` as :func:`build_reverse` takes them). A stale store
    is refused, never rebuilt behind the user's back.
    """
    r = as_run(run)
    want = check_scorers(options.get("scorers"), supported_scorers(r))
    man = read_manifest(r)
    if man is not None:
        with bound(r, options.get("db")) as lex:
            from definitionemb.lexicon.db import fingerprint

            why = stale_reason(r, man, fingerprint(lex.con), load_headwords(lex.con))
        if why:
            raise IndexMismatch(
                f"the reverse-dictionary index of run {r.path} is stale: {why}; rebuild with: {rebuild_hint(r)}"
            )
        if not set(want) - set(man.scorers):
            return man
    had = man.scorers if man is not None else []
    options["scorers"] = [s for s in SCORERS if s in set(want) | set(had)]
    return build_reverse(r, **options)
