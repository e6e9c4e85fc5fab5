"""The reverse dictionary's on-disk store in `RunDir.reverse_dir`: its manifest, what each scorer needs
from the run, and the checks that refuse a store that no longer matches its run and lexicon."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from definitionemb.core.records import Record
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import IndexMismatch, IndexStageError
from definitionemb.index.faiss_index import source_digest
from definitionemb.index.headwords import Headwords
from definitionemb.index.reverse_dictionary.fusion import SCORERS

__all__ = [
    "REVERSE_FORMAT",
    "DbPath",
    "ReverseManifest",
    "check_scorers",
    "digest_or_none",
    "frequency_source",
    "model_of",
    "read_manifest",
    "rebuild_hint",
    "sentence_caches",
    "stale_reason",
    "supported_scorers",
]

REVERSE_FORMAT = 1  # lexical.npz and lemma.npy came later: an index without them is extended, not refused

DbPath = str | os.PathLike[str] | None


@dataclass(frozen=True)
class ReverseManifest(Record):
    """`<run>/index/reverse/manifest.json`: what the run's reverse index was built from."""

    format: int
    run_id: str
    lexicon_fingerprint: str
    headwords_sha256: str
    n_words: int
    n_senses: int
    n_single_token: int
    tokenizer_id: int
    scorers: list[str]
    sense_vectors_digest: str
    token_vectors_digest: str
    original_vectors_digest: str
    glosses: str | None  # cache folder of the gloss sentence embeddings (None: not a sentence encoder)
    glosses_digest: str | None
    headwords: str | None
    headwords_digest: str | None
    seconds: dict[str, float] = field(default_factory=dict)
    frequency: str | None = None  # the word list behind `frequency` ("wordfreq 3.1.1"); None: not built
    lexical: str | None = None  # GlossBM25.spec of lexical.npz; None: not built


def rebuild_hint(run: RunDir) -> str:
    return f"defemb reverse --run {run.path} --rebuild"


def model_of(run: RunDir) -> tuple[str, str]:
    m = run.manifest()
    model, sha = run.model_path(), m.get("model_sha256")
    if not model or not sha:
        raise IndexStageError(f"run {run.path} records no model/model_sha256 in its manifest; retrain it")
    return str(model), str(sha)


def sentence_caches(
    run: RunDir, hw: Headwords, lex_fp: str, cache_dir: DbPath, build: bool, progress: bool
) -> tuple[Any, Any]:
    from definitionemb.index.gloss_cache import sentence_vectors
    from definitionemb.index.sentence import sentence_spec

    model, sha = model_of(run)
    if not Path(model).is_dir():
        raise IndexStageError(
            f"the run's base model folder {model} is gone; the sentence-embedding scorers need it"
        )
    if sentence_spec(model) is None:
        return None, None
    key = hw.digest()
    glosses = sentence_vectors(
        hw.gloss, "glosses", lex_fp, model, sha, key, cache_dir, build=build, progress=progress
    )
    heads = sentence_vectors(
        hw.words, "headwords", lex_fp, model, sha, key, cache_dir, build=build, progress=progress
    )
    return glosses, heads


def digest_or_none(path: Path) -> str:
    return source_digest(path) if path.is_file() else ""


def supported_scorers(run: RunDir) -> tuple[str, ...]:
    from definitionemb.index.sentence import sentence_spec

    model = run.model_path()
    sentence = bool(model) and Path(str(model)).is_dir() and sentence_spec(str(model)) is not None
    return SCORERS if sentence else tuple(s for s in SCORERS if s not in ("glosses", "headwords"))


def frequency_source() -> str:
    from importlib.metadata import version

    return f"wordfreq {version('wordfreq')}"


def check_scorers(scorers: Sequence[str] | None, supported: Sequence[str]) -> list[str]:
    if scorers is None:
        return list(supported)
    want = list(dict.fromkeys(scorers))
    unknown = set(want) - set(SCORERS)
    if unknown:
        raise IndexStageError(f"unknown scorer(s) {sorted(unknown)}; choose from {', '.join(SCORERS)}")
    missing = set(want) - set(supported)
    if missing:
        raise IndexStageError(
            f"scorer(s) {sorted(missing)} need a sentence-encoder base model (e.g. all-MiniLM-L6-v2); "
            f"this run's model is not one: use {', '.join(supported)}"
        )
    return want


def stale_reason(run: RunDir, man: ReverseManifest, lex_fp: str, hw: Headwords) -> str | None:
    """Why the run's reverse index no longer matches the run and lexicon (None when current)."""
    if man.format != REVERSE_FORMAT:
        return f"it has format {man.format}, this definitionemb reads {REVERSE_FORMAT}"
    if man.run_id != run.run_id:
        return f"it was built for run {man.run_id!r} (copied from another run?)"
    if man.lexicon_fingerprint != lex_fp or man.headwords_sha256 != hw.digest():
        return "the lexicon's words or senses changed since it was built"
    checks = [
        ("token_vectors.npy", man.token_vectors_digest),
        ("original_vectors.npy", man.original_vectors_digest),
    ]
    if "senses" in man.scorers:
        checks.insert(0, ("sense_vectors.npy", man.sense_vectors_digest))
    for name, want in checks:
        if digest_or_none(run.array_path(name)) != want:
            return f"{name} changed after it was built (vectors regenerated?)"
    if "frequency" in man.scorers and man.frequency != frequency_source():
        return f"its word frequencies come from {man.frequency}, this machine has {frequency_source()}"
    if "lexical" in man.scorers and not man.lexical:
        return "it lists the lexical scorer but records no lexical index"
    return None


def read_manifest(run: RunDir) -> ReverseManifest | None:
    path = run.reverse_dir / "manifest.json"
    if not path.is_file():
        return None
    try:
        return ReverseManifest(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise IndexMismatch(
            f"{path} is not a readable manifest ({exc}); rebuild with: {rebuild_hint(run)}"
        ) from exc
