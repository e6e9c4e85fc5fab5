"""The model card (README.md) of an exported model, and the sentence-transformers files it keeps.

A card says what a new user needs before trusting the folder: the base model, which rows changed and
how (the row policy's spelling), the lexicon the definitions came from and its licence (Wiktionary text
is CC BY-SA), and the word-similarity table measured on the run, read from the results that
`defemb eval wordsim --run` stores in `<run>/report/results/`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.results import ResultKind, results_of
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.policy import RowPolicy

__all__ = [
    "SOURCE_LICENCES",
    "ST_FILES",
    "is_sentence_transformers",
    "copy_sentence_transformers",
    "stored_wordsim",
    "lexicon_sources",
    "model_card",
]

SOURCE_LICENCES = {
    "kaikki": "Wiktionary via kaikki.org (wiktextract): CC BY-SA 4.0 / GFDL",
    "open-dictionary": "Wiktionary via Open Dictionary: CC BY-SA",
    "wiktionary-dump": "Wiktionary pages-articles dump: CC BY-SA 4.0 / GFDL",
    "tsv": "user-supplied definitions: the licence of their author",
}
# The files beside the transformer weights that make a folder a sentence-transformers model.
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def is_sentence_transformers(model_dir: str | Path) -> bool:
    """True when the base folder is a sentence-transformers model (it has a modules.json)."""
    return (Path(model_dir) / "modules.json").is_file()


def copy_sentence_transformers(model_dir: str | Path, out: Path) -> list[str]:
    """Copy modules.json, the ST configs and every module folder but the transformer's own (path "").

    `SentenceTransformer(out)` then runs the base's pipeline (pooling, normalisation, …) over the new
    rows; the transformer module itself is the `save_pretrained` folder at the root.
    """
    src = Path(model_dir)
    copied: list[str] = []
    for name in ST_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
            copied.append(name)
    try:
        modules = json.loads((src / "modules.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return copied
    for mod in modules if isinstance(modules, list) else []:
        rel = str(mod.get("path") or "")
        if rel and (src / rel).is_dir() and not (out / rel).exists():
            shutil.copytree(src / rel, out / rel)
            copied.append(rel + "/")
    return copied


def stored_wordsim(run: RunDir) -> dict[str, dict[str, Any]]:
    """The run's stored word-similarity results (`embedder.results`), by set."""
    out: dict[str, dict[str, Any]] = {}
    try:
        stored = results_of(run, ResultKind.WORDSIM)
    except EmbedderError:
        return out  # a broken result file is the report's business, not a reason to fail an export
    for rec in stored:
        for ds, res in rec.result.items():
            if isinstance(res, dict) and isinstance(res.get("spearman"), dict):
                out[ds] = {**res, "command": rec.command}
    return out


def lexicon_sources(con: Any) -> list[tuple[str, str]]:
    """(kind, uri) of each source loaded into the lexicon."""
    try:
        rows = con.execute("SELECT kind, uri FROM source ORDER BY source_id").fetchall()
    except Exception:  # an older schema without the column: the card just lists no sources
        return []
    return [(str(k), str(u)) for k, u in rows]


def _base_licence(model_dir: str | Path) -> str | None:
    readme = Path(model_dir) / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.match(r"^---\n(.*?)\n---", text, flags=re.S)
    if not m:
        return None
    lic = re.search(r"^license:\s*(\S+)", m.group(1), flags=re.M)
    return lic.group(1) if lic else None


def _f(x: Any) -> str:
    return "–" if not isinstance(x, int | float) or x != x else f"{x:.3f}"


def _wordsim_table(ws: Mapping[str, Mapping[str, Any]], policy: RowPolicy) -> list[str]:
    if not ws:
        return [
            "No word-similarity results were stored for this run. Measure them with",
            "`defemb eval wordsim --run RUN --dataset ../shared/data/eval/word-similarity "
            f"{policy.spelling}` and export again.",
        ]
    cols: list[str] = []
    for res in ws.values():
        for k in res["spearman"]:
            if k not in cols:
                cols.append(k)
    order = [
        "original",
        policy.label,
        *[c for c in cols if c not in ("original", policy.label, "abtt")],
        "abtt",
    ]
    cols = [c for c in order if c in cols]
    lines = [
        "| set | pairs | covered pairs | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for ds, res in ws.items():
        lines.append(
            f"| {ds} | {res.get('pairs', '–')} | {res.get('covered_pairs', '–')} | "
            + " | ".join(_f(res["spearman"].get(c)) for c in cols)
            + " |"
        )
    if policy.label not in cols:
        lines += ["", f"(The stored results do not score `{policy.label}`, the policy of this export.)"]
    parts = {str(res.get("part", "all")) for res in ws.values()}
    if parts != {"all"}:
        lines += ["", f"Pairs scored: the {'/'.join(sorted(parts))} part of each set (see evaluation.knobs)."]
    return lines


def model_card(
    run: RunDir,
    policy: RowPolicy,
    rows_changed: int,
    vocab_size: int,
    base_model: str,
    sources: list[tuple[str, str]],
    wordsim: Mapping[str, Mapping[str, Any]],
    sentence_transformers: bool,
    chosen: str | None = None,
) -> str:
    """The README.md of an exported model folder; `chosen`: why this policy, where it is the run's
    own choice on development data (`defemb eval knobs`)."""
    m = run.manifest()
    licence = _base_licence(base_model)
    front = ["---", f"license: {licence}" if licence else None, "tags:", "- definitionemb"]
    if sentence_transformers:
        front += ["- sentence-transformers", "library_name: sentence-transformers"]
    front.append("---")
    lic_lines = [f"- {SOURCE_LICENCES.get(k, k)} (`{u}`)" for k, u in sources] or [
        "- the run's lexicon (its sources are not recorded here; Wiktionary text is CC BY-SA)"
    ]
    lines = [
        *[x for x in front if x is not None],
        "",
        f"# {Path(str(base_model).rstrip('/')).name} with DefinitionEMB rows (run `{run.run_id}`)",
        "",
        f"The base model `{base_model}` with {rows_changed:,} of its {vocab_size:,} input-embedding rows "
        "changed by DefinitionEMB (Zhang, Li & Okumura, arXiv 2408.01308): a regressor on the base model "
        "read each token's dictionary definition and predicted its row.",
        "",
        "## Rows changed and how",
        "",
        f"- policy: `{policy.spelling}` (rows `{policy.rows}`, how `{policy.how}`)",
        *([f"- chosen for this run: {chosen}"] if chosen else []),
        f"- rows changed: {rows_changed:,} (mask in `replaced_mask.npy`); every other row is the base model's",
        "- `replace` puts the generated row in place; `mix:α` is (1-α)·original + α·generated; "
        "`dirmix:α` mixes the two rows' directions and keeps the original row's norm; "
        "`normmix:α` is the mix rescaled to the original row's norm",
        f"- run: `{run.path}` (seed {m.get('seed')}, preset {(m.get('config') or {}).get('preset', '–')})",
        "",
        "## Lexicon and licence",
        "",
        "The generated rows are derived from dictionary text:",
        "",
        *lic_lines,
        "",
        "Wiktionary text is licensed CC BY-SA; rows derived from it may carry its share-alike terms. "
        + (
            f"The base model's own licence is {licence}."
            if licence
            else "The base model keeps its own licence."
        ),
        "",
        "## Word similarity (Spearman of cosine, single-token pairs)",
        "",
        *_wordsim_table(wordsim, policy),
        "",
    ]
    if sentence_transformers:
        lines += [
            "## Use",
            "",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "model = SentenceTransformer('path/to/this/folder')  # same modules as the base model",
            "```",
            "",
        ]
    else:
        lines += [
            "## Use",
            "",
            "```python",
            "from transformers import AutoModel",
            "model = AutoModel.from_pretrained('path/to/this/folder')",
            "```",
            "",
        ]
    return "\n".join(lines)
