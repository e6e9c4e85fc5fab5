"""A run's stored evaluation results: one owner for their kinds, names, shape and files.

Every result lives in `RunDir.results_dir` as `<kind>[-<key>].json` holding `{name, kind, key, command,
created, config, result}`. The CLI, the pipeline, the report and the model card all read and write results
through this module, so none of them spells a file name or parses another's files. It sits with the run
layout (the embedder owns the run folder) so that the index stage's model card can read what evaluation
wrote without importing evaluation.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import click
import numpy as np
from definitionemb.core.fileio import write_bytes
from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.rundir import RunDir

__all__ = [
    "ResultKind",
    "StoredResult",
    "current_command",
    "jsonable",
    "load_results",
    "results_of",
    "save_result",
]


class ResultKind(str, Enum):
    """What a stored result measured; its value is the file-name prefix."""

    WORDSIM = "wordsim"  # key: the word-similarity set
    KNOBS = "knobs"  # no key: the α scan and its choice
    GLUE = "glue"  # key: the task
    SUMMARIZATION = "summarization"  # key: the preset
    STS = "sts"  # key: the sentence-similarity set
    SYNONYMS = "synonyms"  # no key: synonym recall of the run's rows (evaluation.synonyms)


@dataclass(frozen=True)
class StoredResult:
    """One stored result, as written by `save_result`."""

    kind: ResultKind
    key: str | None
    command: str | None
    created: str | None
    config: dict[str, Any] | None
    result: dict[str, Any]

    @property
    def name(self) -> str:
        return result_name(self.kind, self.key)


def current_command() -> str:
    """The command that produced a result, quoted so it can be pasted back into a shell.

    Inside a `defemb` command: that command with every option spelled out, defaults included, as it
    would be typed to reproduce the result. Elsewhere (a Python call): this process's command line.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        argv = list(sys.argv)
        if argv and Path(argv[0]).name in ("defemb", "__main__.py", "cli.py"):
            argv[0] = "defemb"
        return shlex.join(argv)
    parts = ["defemb", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = ctx.params.get(param.name)
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.is_flag:
            if value:
                parts.append(flag)
        elif param.multiple:
            for v in value or ():
                parts += [flag, str(v)]
        elif value is not None:
            parts += [flag, str(value)]
    return shlex.join(parts)


def jsonable(x: Any) -> Any:
    """`x` with numpy scalars as Python numbers and NaN/infinity as None, ready for `json.dumps`."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN; None reads as "undefined"
    return x


def result_name(kind: ResultKind, key: str | None = None) -> str:
    return kind.value if key is None else f"{kind.value}-{key}"


def _parse_name(stem: str) -> tuple[ResultKind, str | None] | None:
    for kind in ResultKind:
        if stem == kind.value:
            return kind, None
        if stem.startswith(kind.value + "-"):
            return kind, stem[len(kind.value) + 1 :]
    return None


def save_result(
    run: RunDir,
    kind: ResultKind,
    result: Mapping[str, Any],
    key: str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    command: str | None = None,
) -> Path:
    """Store one result (replacing an earlier one of the same kind and key), with the command and the
    config that produced it."""
    if kind not in (ResultKind.KNOBS, ResultKind.SYNONYMS) and not key:
        raise ValueError(f"a {kind.value} result needs a key (the set, task or preset)")
    path = run.results_dir / f"{result_name(kind, key)}.json"
    record = {
        "name": result_name(kind, key),
        "kind": kind.value,
        "key": key,
        "command": command or current_command(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "config": dict(config) if config is not None else None,
        "result": dict(result),
    }
    write_bytes(path, json.dumps(jsonable(record), indent=2, sort_keys=True).encode())
    return path


def load_results(run: RunDir) -> list[StoredResult]:
    """Every stored result of the run, in file-name order; a file of an unknown kind is skipped."""
    folder = run.results_dir
    out: list[StoredResult] = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        parsed = _parse_name(f.stem)
        if parsed is None:
            continue
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EmbedderError(f"{f} is unreadable ({exc}); delete it and rerun its command") from exc
        result = dict(rec.get("result") or {})
        config = rec.get("config")
        if config is None and isinstance(result.get("config"), dict):
            config = result.pop("config")  # results stored before the config had its own field
        out.append(StoredResult(parsed[0], parsed[1], rec.get("command"), rec.get("created"), config, result))
    return out


def results_of(run: RunDir, kind: ResultKind) -> list[StoredResult]:
    """The stored results of one kind."""
    return [r for r in load_results(run) if r.kind is kind]
