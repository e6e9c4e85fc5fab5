"""Export of a run's embedding matrix under a row policy (`index.policy`): the model's V×d matrix with
the policy's rows changed, plus the changed-row mask, as npy, safetensors, a torch dict or a complete
HF model — the one writer of a swapped model (`evaluation.save_swapped` calls it too).

Every export is written into a temporary file or folder beside `out` and moved into place at the end,
and records its policy (`--rows … --how …`) in its metadata.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.fileio import claim_output, output_dir, output_file, output_files
from definitionemb.core.plm import load_plm, load_tokenizer
from definitionemb.embedder.binding import LexiconRef
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import ExportError
from definitionemb.index.policy import RowPolicy, apply_how, as_policy, chosen_for, policy_matrix
from definitionemb.index.vocab_export import vocabulary_frame, write_parquet, write_vocab_txt, write_word2vec
from definitionemb.index.vocabulary import RunLike, as_run

__all__ = [
    "FORMATS",
    "ExportResult",
    "export",
    "export_matrix",
    "load_base_model",
    "write_model",
    "as_policy",
]

FORMATS = ("npy", "safetensors", "pt", "hf", "parquet", "word2vec")
META_FILE = "definitionemb_export.json"


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    format: str
    out: str
    run_id: str
    rows: str
    how: str
    rows_replaced: int
    vocab_size: int
    dim: int
    seconds: float
    tables: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # sentence-transformers files kept beside the weights (hf)

    @property
    def policy(self) -> str:
        return f"--rows {self.rows} --how {self.how}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "policy": self.policy}


def export_matrix(run: RunLike, mask: np.ndarray, how: str = "replace") -> np.ndarray:
    """The V×d float32 matrix: original rows, with the `mask` rows blended with token_vectors by `how`."""
    r = as_run(run)
    original = r.original_vectors()
    tokens = r.token_vectors()
    if original.shape != tokens.shape:
        raise ExportError(
            f"original_vectors {original.shape} and token_vectors {tokens.shape} differ in shape"
        )
    if mask.shape != (original.shape[0],) or mask.dtype != np.bool_:
        raise ExportError(
            f"mask must be a boolean vector of length {original.shape[0]}, got {mask.dtype}{mask.shape}"
        )
    matrix = apply_how(original, tokens, mask, how)
    if not np.isfinite(matrix[mask]).all():
        raise ExportError(f"run {r.path} has NaN/Inf in the rows to export; regenerate its vectors")
    return matrix


def _meta(run: RunDir, policy: RowPolicy, fmt: str, rows: int) -> dict[str, str]:
    from definitionemb.index.card import portable_command

    choice = chosen_for(run, policy)
    return {
        "run_id": run.run_id,
        "rows": policy.rows,
        "how": policy.how,
        "policy": policy.spelling,
        # where the policy came from: the run's own choice on development data, or as asked/shipped
        "policy_source": f"run choice ({portable_command(choice.command)})"
        if choice
        else "given or shipped default",
        **({"policy_reason": choice.reason} if choice else {}),
        "format": fmt,
        "rows_replaced": str(rows),
    }


def load_base_model(model: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder, in the head class its config names (`core.plm.load_plm`)."""
    return load_plm(model), load_tokenizer(model)


def _check_base(model: Any, run: RunDir, model_path: str) -> None:
    """The base model must be the one the run started from: its rows equal `original_vectors.npy`."""
    import torch
    from definitionemb.index.swap import run_target, target_weight

    original = run.original_vectors()
    emb = target_weight(model, run_target(run.manifest()))
    if tuple(emb.shape) != tuple(original.shape):
        raise ExportError(
            f"the model at {model_path} has a {tuple(emb.shape)} embedding, the run {tuple(original.shape)}; "
            "export with the model the run was trained from"
        )
    # A spread of rows (not only the first ones, which are often special or unused) is enough to tell
    # another checkpoint apart; comparing all 50k×768 would double the export's time for nothing.
    keep = np.unique(np.linspace(0, original.shape[0] - 1, num=min(4096, original.shape[0])).astype(np.int64))
    base = emb.detach()[torch.as_tensor(keep)].float().cpu().numpy()
    if not np.allclose(base, np.asarray(original[keep], dtype=np.float32), atol=1e-3, rtol=1e-3):
        raise ExportError(
            f"the model at {model_path} is not the one run {run.run_id} started from (its embedding rows "
            "differ from original_vectors.npy); export with the run's own base model"
        )


def _card_inputs(run: RunDir, db: LexiconRef) -> tuple[list[tuple[str, str]], list[str]]:
    """(kind, uri) of the lexicon's sources and their language codes, for the card."""
    from definitionemb.embedder.binding import bound
    from definitionemb.index.card import lexicon_sources

    try:
        with bound(run, db) as lex:
            if not lex.available:
                return [], []
            langs = [
                str(r[0]) for r in lex.con.execute("SELECT DISTINCT lang_code FROM source").fetchall() if r[0]
            ]
            return lexicon_sources(lex.con), langs
    except Exception:  # an unreadable lexicon: the card names none rather than failing the export
        return [], []


def _save_sentence_transformers(model_path: str, model: Any, tmp: Path) -> list[str] | None:
    """Save the swapped model as a sentence-transformers folder through `SentenceTransformer.save`, so its
    configs carry the installed versions; None where sentence-transformers is not installed (then the
    base's files are copied) or its first module is not this model's class."""
    from definitionemb.index.card import ST_FILES

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    st = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    first = st[0]
    # the module's own attribute (`model` in sentence-transformers 5+, `auto_model` before): assigning a
    # module to the `auto_model` property of 5+ would register a second, unsaved module instead
    attr = next((a for a in ("model", "auto_model") if a in first._modules), None)
    if attr is None or type(first._modules[attr]) is not type(model):
        return None
    setattr(first, attr, model)
    st.save(str(tmp), create_model_card=False)
    modules = json.loads((tmp / "modules.json").read_text(encoding="utf-8"))
    kept = [n for n in ST_FILES if (tmp / n).is_file()]
    return kept + [str(m["path"]) + "/" for m in modules if m.get("path") and (tmp / m["path"]).is_dir()]


def write_model(
    run: RunLike,
    matrix: np.ndarray,
    mask: np.ndarray,
    out: str | os.PathLike[str],
    policy: RowPolicy,
    db: LexiconRef = None,
    meta: dict[str, Any] | None = None,
    force: bool = False,
    allow_in: str | os.PathLike[str] | None = None,
    base_model: str | None = None,
    output_head: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Write the run's base model with `matrix[mask]` swapped in as a complete folder at `out`.

    The one writer of a swapped model: checks the base model against the run's `original_vectors.npy`,
    replaces the rows through `index.swap.replace_rows` (tied weights), then writes atomically
    `save_pretrained` + tokenizer + `replaced_mask.npy` + `definitionemb_export.json` + a model card
    (README.md), and, when the base is a sentence-transformers folder, its modules and configs.
    An existing `out` is replaced only with `force` (:func:`core.fileio.claim_output`); `allow_in` is
    the run folder whose own `model/` this is. `base_model`: the base's Hub id for the card (else the one
    its card or config names). The rows go into the table the run
    regressed onto (its `target_table`); `output_head` also writes an untied LM head (T5 v1.1), otherwise
    left alone. Returns (tables written, sentence-transformers files kept).
    """
    from definitionemb.index.card import (
        base_model_id,
        copy_sentence_transformers,
        is_sentence_transformers,
        model_card,
        stored_sts,
        stored_wordsim,
    )
    from definitionemb.index.swap import replace_rows, run_target

    r = as_run(run)
    claim_output(Path(out), "dir", force, "hf export", allow_in)  # refused before the model is loaded
    model_path = r.model_path()
    if not model_path:
        raise ExportError(f"run {r.path} records no model; a model export needs the base model")
    model, tokenizer = load_base_model(model_path)
    _check_base(model, r, str(model_path))
    report = replace_rows(
        model,
        np.asarray(matrix, dtype=np.float32),
        np.asarray(mask, dtype=bool),
        run_target(r.manifest()),
        output_head,
    )
    st = is_sentence_transformers(model_path)
    info = dict(meta or _meta(r, policy, "hf", int(np.asarray(mask).sum())))
    reason = info.get("policy_reason")
    sources, langs = _card_inputs(r, db)
    card = model_card(
        r,
        policy,
        int(np.asarray(mask).sum()),
        int(np.asarray(mask).shape[0]),
        str(model_path),
        sources,
        stored_wordsim(r),
        st,
        chosen=f"{reason} ({info['policy_source']})" if reason else None,
        base_id=base_model,
        langs=langs,
        sts=stored_sts(r),
    )
    hub_id = base_model_id(str(model_path), base_model)
    kept: list[str] = []
    with output_dir(Path(out), force, "hf export", info, META_FILE, allow_in) as tmp:
        saved = _save_sentence_transformers(str(model_path), model, tmp) if st else None
        if saved is None:
            model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if st:
            kept = saved if saved is not None else copy_sentence_transformers(model_path, tmp)
        np.save(tmp / "replaced_mask.npy", np.asarray(mask, dtype=bool))
        info = {
            **info,
            # a name, never a path of this machine: the Hub id, else the base folder's name
            "source_model": hub_id or Path(str(model_path).rstrip("/")).name,
            "source_model_sha256": r.manifest().get("model_sha256"),
            "tables": list(report.tables),
            "untied": list(report.untied),
            "sentence_transformers": kept,
        }
        (tmp / META_FILE).write_text(json.dumps(info, indent=2))
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return report.tables, tuple(kept)


def export(
    run: RunLike,
    fmt: str,
    rows: str | RowPolicy | None,
    out: str | os.PathLike[str],
    db: LexiconRef = None,
    force: bool = False,
    how: str | None = None,
    allow_in: str | os.PathLike[str] | None = None,
    base_model: str | None = None,
    output_head: bool = False,
) -> ExportResult:
    """Export the run's matrix under the policy `rows` × `how`, atomically (what is left out: the run's
    default policy, `index.policy.as_policy`).

    An existing `out` is replaced only with `force`, and only when it is an earlier export (never a
    run folder, a lexicon or anything the toolkit cannot prove it wrote: :func:`core.fileio.claim_output`;
    `allow_in` is the run whose own output this is, e.g. `<run>/model`). Every export records a random
    `output_id` in its metadata that its ownership marker repeats.

    - `npy`: folder `out` with matrix.npy (V×d float32), mask.npy (V bool), export.json; or, for an `out`
      named `*.npy`, that file (the matrix) and `*.mask.npy` beside it;
    - `safetensors`: file `out` with tensors "embeddings" and "mask" (+ metadata);
    - `pt`: file `out`, a torch dict {"embeddings", "mask", "run_id", "rows", "how", ...};
    - `hf`: folder `out`, the base model with the changed rows (`write_model`): `save_pretrained`,
      tokenizer, model card (`base_model`: the base's Hub id for it), and the sentence-transformers
      modules of an ST base, saved by sentence-transformers itself where it is installed;
    - `parquet`: file `out`, one row per token: token_id, piece, word_initial, covered, replaced, rule,
      bucket, frequency, vector (`index.vocab_export`);
    - `word2vec`: file `out`, word2vec text (`V d`, then `piece v1 … vd`), for gensim.

    npy and safetensors exports carry their vocabulary: `vocab.txt` (one piece per line, id order) and
    `vocab.parquet` (the parquet columns without the vector) inside an npy folder, or beside a file as
    `<name>.vocab.txt` and `<name>.vocab.parquet`.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    t0 = time.perf_counter()
    r = as_run(run)
    policy = as_policy(rows, how, r)
    out_path = Path(out)
    npy_file = fmt == "npy" and out_path.name.endswith(".npy")
    mask_path = out_path.with_name(out_path.name.removesuffix(".npy") + ".mask.npy") if npy_file else out_path
    file_shaped = fmt in ("safetensors", "pt", "parquet", "word2vec") or npy_file
    # Refused before any work: an output that may not be written is known up front.
    claim_output(out_path, "file" if file_shaped else "dir", force, f"{fmt} export", allow_in)
    if npy_file:
        claim_output(mask_path, "file", force, "npy export mask")
    beside = fmt == "safetensors" or npy_file  # files whose vocabulary goes beside them
    stem = out_path.name.removesuffix(".npy").removesuffix(".safetensors")
    vocab_txt, vocab_pq = (out_path.with_name(f"{stem}.vocab.{ext}") for ext in ("txt", "parquet"))
    if beside:
        claim_output(vocab_txt, "file", force, f"{fmt} export vocabulary")
        claim_output(vocab_pq, "file", force, f"{fmt} export vocabulary")
    matrix, mask = policy_matrix(r, db, policy)
    vocab = vocabulary_frame(r, db, mask) if fmt in ("npy", "safetensors", "parquet", "word2vec") else None
    meta = _meta(r, policy, fmt, int(mask.sum()))
    tables: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    try:
        if npy_file:  # the matrix, its mask and its vocabulary, written together: all or none
            assert vocab is not None
            paths = [out_path, mask_path, vocab_txt, vocab_pq]
            with output_files(paths, force, "npy export", meta) as tmps:
                for tmp, arr in zip(tmps[:2], (matrix, mask), strict=True):
                    with open(tmp, "wb") as fh:
                        np.save(fh, arr, allow_pickle=False)
                write_vocab_txt(vocab, tmps[2])
                vocab.write_parquet(str(tmps[3]))
        elif fmt == "npy":
            assert vocab is not None
            with output_dir(out_path, force, "npy export", meta, "export.json", allow_in) as tmp:
                np.save(tmp / "matrix.npy", matrix)
                np.save(tmp / "mask.npy", mask)
                write_vocab_txt(vocab, tmp / "vocab.txt")
                vocab.write_parquet(str(tmp / "vocab.parquet"))
                (tmp / "export.json").write_text(json.dumps(meta, indent=2))
        elif fmt == "safetensors":  # the file and its vocabulary beside it, all or none
            from safetensors.numpy import save_file

            assert vocab is not None
            paths = [out_path, vocab_txt, vocab_pq]
            with output_files(paths, force, "safetensors export", meta) as (tmp, txt, pq):
                save_file({"embeddings": matrix, "mask": mask}, str(tmp), metadata=meta)
                write_vocab_txt(vocab, txt)
                vocab.write_parquet(str(pq))
        elif fmt == "parquet":
            assert vocab is not None
            with output_file(out_path, force=force, what="parquet export") as tmp:
                write_parquet(vocab, matrix, tmp)
        elif fmt == "word2vec":
            assert vocab is not None
            with output_file(out_path, force=force, what="word2vec export") as tmp:
                write_word2vec(vocab, matrix, tmp)
        elif fmt == "pt":
            import torch

            with output_file(out_path, force=force, what="pt export", meta=meta) as tmp:
                torch.save(
                    {"embeddings": torch.from_numpy(matrix), "mask": torch.from_numpy(mask), **meta}, str(tmp)
                )
        else:
            tables, kept = write_model(
                r, matrix, mask, out_path, policy, db, meta, force, allow_in, base_model, output_head
            )
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise ExportError(f"cannot write {fmt} export to {out_path}: {exc}") from exc
    return ExportResult(
        format=fmt,
        out=str(out_path),
        run_id=r.run_id,
        rows=policy.rows,
        how=policy.how,
        rows_replaced=int(mask.sum()),
        vocab_size=int(matrix.shape[0]),
        dim=int(matrix.shape[1]),
        seconds=round(time.perf_counter() - t0, 3),
        tables=tables,
        kept=kept,
    )
