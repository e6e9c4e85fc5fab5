"""The run directory: everything one embedder run produced, bound together by a manifest.

Layout of `runs/<run-id>/` (every file written atomically)::

    manifest.json            format version, model, tokenizer, lexicon fingerprint, config, seed, timings
    regressor/               regressor checkpoints (safetensors) + config, LATEST, tokenizer/ (embedder.train)
    original_vectors.npy     V x d float32: the model's input-embedding rows before training
    token_vectors.npy        V x d float32: generated rows where covered, the original row elsewhere
    token_covered.npy        V bool: which rows were generated
    heldout_tokens.npy       int64: the token ids held out of training (the split every score uses)
    sense_vectors.npy        N x d float32: one vector per lexicon sense
    sense_ids.npy            N int64: the lexicon sense_id of each row of sense_vectors.npy
    index/                   FAISS indexes and their manifests; index/reverse/ the reverse dictionary's store
    policy.json              the run's own row-policy choice (`defemb eval knobs`)
    model/                   the PLM with the run's rows swapped in (`defemb eval swap`)
    report/                  report.json/.md, plots, probe answers; report/results/ one JSON per result

Later stages open runs only through :class:`RunDir`, which checks that arrays agree with the manifest and
names every sub-path: no stage spells one.

Portable: local paths in the manifest (`lexicon_db`, a `model` inside the work folder, the config's) are
recorded relative to the run (``../../lexicon.duckdb``, :meth:`RunDir.portable`) and resolved against
it (:meth:`RunDir.local`), so a copied work folder reads and writes its own lexicon. Its own: the folder's
stamp (`core.fileio.stamp`) holds a random `run_uid` that the manifest repeats, so a manifest copied in
from another run is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from definitionemb.core.fileio import save_npy, stamp, stamp_of, write_bytes
from definitionemb.embedder.errors import EmbedderError, RunMismatch

__all__ = ["ARRAYS", "RUN_FORMAT", "RunDir"]

RUN_FORMAT = 1
ARRAYS = (
    "original_vectors.npy",
    "token_vectors.npy",
    "token_covered.npy",
    "heldout_tokens.npy",
    "sense_vectors.npy",
    "sense_ids.npy",
)


class _SubPath:
    """A fixed sub-path of a run, read as an attribute (`run.report_dir`): `name` under the run folder,
    or under the sub-path `under` names."""

    def __init__(self, name: str, under: str | None = None) -> None:
        self.name, self.under = name, under

    @overload
    def __get__(self, run: None, owner: type) -> _SubPath: ...
    @overload
    def __get__(self, run: RunDir, owner: type) -> Path: ...
    def __get__(self, run: RunDir | None, owner: type) -> _SubPath | Path:
        if run is None:
            return self
        parent: Path = run.path if self.under is None else getattr(run, self.under)
        return parent / self.name


@dataclass(frozen=True)
class RunDir:
    """A run folder. Cheap to construct; arrays are memory-mapped on access."""

    path: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """Open an existing run, refusing a folder without a readable manifest."""
        p = Path(path)
        if not (p / "manifest.json").is_file():
            raise EmbedderError(
                f"{p} is not a definitionemb run (no manifest.json). "
                f"Create one with: defemb embed train --db LEXICON --model MODEL --run {p}"
            )
        run = cls(p)
        m = run.manifest()
        fmt = m.get("format")
        if fmt != RUN_FORMAT:
            raise RunMismatch(
                f"{p}/manifest.json has run format {fmt!r}, this definitionemb reads {RUN_FORMAT}"
            )
        uid, own = m.get("run_uid"), stamp_of(p)
        if uid and uid != own:
            raise RunMismatch(
                f"{p}/manifest.json belongs to another run (run_uid {str(uid)[:12]}…, this folder's is "
                f"{(own or 'missing')[:12]}…); copy a run as a whole folder, never its manifest alone"
            )
        return run

    # --- layout: the one place a run's sub-paths are spelled ---------------------------------------
    # Each is `<parent>/<name>`: the run folder itself, or another sub-path named here.
    manifest_path = _SubPath("manifest.json")
    regressor_dir = _SubPath("regressor")
    tokenizer_dir = _SubPath("tokenizer", "regressor_dir")  # the tokenizer generation tokenises with
    latest_file = _SubPath("LATEST", "regressor_dir")  # names the newest complete checkpoint
    index_dir = _SubPath("index")
    reverse_dir = _SubPath("reverse", "index_dir")  # the reverse dictionary's on-disk store
    policy_path = _SubPath("policy.json")  # the run's own row-policy choice (index.policy.record_choice)
    model_dir = _SubPath("model")  # the PLM with the run's rows swapped in
    report_dir = _SubPath("report")
    results_dir = _SubPath("results", "report_dir")  # one JSON file per stored evaluation result

    def array_path(self, name: str) -> Path:
        """One of the run's arrays (`ARRAYS`), e.g. `token_vectors.npy`."""
        if name not in ARRAYS:
            raise ValueError(f"{name!r} is not a run array; one of {ARRAYS}")
        return self.path / name

    # --- manifest -------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EmbedderError(f"cannot read {self.manifest_path}: {exc}") from exc

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = {"format": RUN_FORMAT, **manifest}
        manifest.setdefault("run_uid", stamp(self.path, "run"))
        write_bytes(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True).encode())

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into the manifest (top-level keys) and write it back atomically."""
        m = self.manifest() if self.manifest_path.exists() else {}
        m.update(fields)
        self.write_manifest(m)
        return m

    @property
    def run_id(self) -> str:
        return str(self.manifest().get("run_id") or self.path.name)

    # --- paths in the manifest --------------------------------------------------------------------
    def portable(self, path: str | os.PathLike[str], always: bool = False) -> str:
        """How the manifest records a local `path`: relative to the run (``./`` or ``../`` first) when it
        lies in the run's work folder (`<work>/runs/<run>`, as `defemb run` lays it out) or `always`, else
        absolute."""
        target = Path(path).expanduser().resolve()
        here = self.path.resolve()
        work = here.parent.parent if here.parent.name == "runs" else None
        if always or (work is not None and work in (target, *target.parents)):
            rel = os.path.relpath(target, here)
            return rel if rel.startswith("..") else f"./{rel}"
        return str(target)

    def local(self, value: Any) -> str | None:
        """A path the manifest recorded, resolved against the run when relative; a name (a hub model)
        stays as it is."""
        if not value:
            return None
        v = str(value)
        if v.startswith(("./", "../")) or v in (".", ".."):
            return os.path.normpath(self.path.absolute() / v)
        return v

    def lexicon_path(self) -> Path | None:
        """The lexicon the run was made from, as recorded (None when it recorded none)."""
        v = self.local(self.manifest().get("lexicon_db"))
        return Path(v) if v else None

    def model_path(self) -> str | None:
        """The base model: a local folder (resolved) or a name, as recorded."""
        return self.local(self.manifest().get("model"))

    # --- arrays ---------------------------------------------------------------------------------
    def _load(self, name: str) -> np.ndarray:
        f = self.array_path(name)
        if not f.is_file():
            hint = "defemb embed generate --run " + str(self.path)
            raise EmbedderError(f"{f} is missing. Produce it with: {hint}")
        try:
            return np.load(f, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # truncated, not an .npy, or pickled objects
            raise RunMismatch(
                f"{f} is not a complete .npy array ({exc}); it was cut short or replaced. Produce it again "
                f"with: defemb embed generate --run {self.path}"
            ) from exc

    def original_vectors(self) -> np.ndarray:
        return self._load("original_vectors.npy")

    def token_vectors(self) -> np.ndarray:
        tv = self._load("token_vectors.npy")
        self._check_shape("token_vectors.npy", tv)
        return tv

    def covered_mask(self) -> np.ndarray:
        mask = self._load("token_covered.npy")
        m = self.manifest()
        if "vocab_size" in m and mask.shape != (m["vocab_size"],):
            raise RunMismatch(
                f"token_covered.npy has shape {mask.shape}, manifest says vocab_size={m['vocab_size']}"
            )
        return mask

    def sense_vectors(self) -> np.ndarray:
        sv = self._load("sense_vectors.npy")
        ids = self.sense_ids()
        if sv.shape[0] != ids.shape[0]:
            raise RunMismatch(
                f"sense_vectors.npy has {sv.shape[0]} rows but sense_ids.npy has {ids.shape[0]}"
            )
        return sv

    def sense_ids(self) -> np.ndarray:
        return self._load("sense_ids.npy")

    def heldout_tokens(self) -> np.ndarray:
        """The token ids held out of training (int64); empty for a run trained without a held-out split."""
        if not self.array_path("heldout_tokens.npy").is_file():
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._load("heldout_tokens.npy"), dtype=np.int64)

    def save_array(self, name: str, array: np.ndarray) -> None:
        save_npy(self.array_path(name), array)

    def _check_shape(self, name: str, arr: np.ndarray) -> None:
        m = self.manifest()
        want = (m.get("vocab_size"), m.get("dim"))
        if None not in want and tuple(arr.shape) != want:
            raise RunMismatch(f"{self.path / name} has shape {arr.shape}, the manifest says {want}")

    # --- bindings ---------------------------------------------------------------------------------
    def _recorded_other(self, key: str, value: str) -> str | None:
        """The manifest's `key` where it records a value other than `value` (None where it agrees or
        records none)."""
        want = self.manifest().get(key)
        return str(want) if want and want != value else None

    def check_lexicon(self, lexicon_fingerprint: str) -> None:
        """Refuse a lexicon other than the one this run was trained on."""
        if want := self._recorded_other("lexicon_fingerprint", lexicon_fingerprint):
            raise RunMismatch(
                f"run {self.path} was built from lexicon {want}, this database is {lexicon_fingerprint}. "
                "Use the database the run was trained on, or train a new run on this one."
            )

    def check_tokenizer(self, tokenizer_sha256: str) -> None:
        """Refuse vectors made for another tokenizer."""
        if want := self._recorded_other("tokenizer_sha256", tokenizer_sha256):
            raise RunMismatch(
                f"run {self.path} was made for tokenizer {want[:12]}…, not {tokenizer_sha256[:12]}…; "
                "its rows would land on the wrong tokens."
            )
