"""The model card (README.md) of an exported model, and the sentence-transformers files it keeps.

A card says what a new user needs before trusting the folder: the base model, which rows changed and
how (the row policy's spelling), the lexicon the definitions came from and its licence (Wiktionary text
is CC BY-SA), and the word- and sentence-similarity tables measured on the run, read from the results
that `defemb eval wordsim --run` (and `eval sts`) store in `<run>/report/results/`.

Its front matter is Hub metadata written through `huggingface_hub.ModelCardData` (`base_model` as a Hub
id, `base_model_relation`, `language`, `pipeline_tag`, `license`, `datasets`, `tags`), and nothing in
it names a path of the machine it was written on: folders appear by name only.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from definitionemb.embedder.errors import EmbedderError
from definitionemb.embedder.results import ResultKind, results_of
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.policy import RowPolicy

__all__ = [
    "BIBTEX",
    "CARD_LICENSE",
    "SOURCE_LICENCES",
    "base_model_id",
    "card_languages",
    "pipeline_tag",
    "portable_command",
    "stored_sts",
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
# Sources whose text is Wiktionary's (CC BY-SA 4.0): rows regressed from it are an adaptation of it.
_SHARE_ALIKE = frozenset({"kaikki", "open-dictionary", "wiktionary-dump"})
# The licence of an export whose rows come (or may come) from Wiktionary text. Share-alike binds the
# adaptation; the permissive licences of the usual base models (Apache-2.0, MIT) allow their weights
# to be redistributed under it, so CC BY-SA 4.0 is the one licence that honours both.
CARD_LICENSE = "cc-by-sa-4.0"
BIBTEX = """@misc{zhang2024definitionemb,
  title         = {Reconsidering Degeneration of Token Embeddings with Definitions for Encoder-based
                   Pre-trained Language Models},
  author        = {Zhang, Ying and Li, Dongyuan and Okumura, Manabu},
  year          = {2024},
  eprint        = {2408.01308},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CL},
  url           = {https://arxiv.org/abs/2408.01308}
}"""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# How a base model's own card names it: SentenceTransformer('org/name'), from_pretrained('org/name').
_SELF_REFERENCE = re.compile(r"""(?:SentenceTransformer|from_pretrained)\(\s*['"]([\w.-]+/[\w.-]+)['"]""")
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


def _stored_scores(run: RunDir, kind: ResultKind) -> dict[str, dict[str, Any]]:
    """The run's stored results of one kind (`embedder.results`) that score matrices by Spearman, by set,
    each with the command that measured it."""
    out: dict[str, dict[str, Any]] = {}
    try:
        stored = results_of(run, kind)
    except EmbedderError:
        return out  # a broken result file is the report's business, not a reason to fail an export
    for rec in stored:
        for ds, res in rec.result.items():
            if isinstance(res, dict) and isinstance(res.get("spearman"), dict):
                out[ds] = {**res, "command": rec.command}
    return out


def stored_wordsim(run: RunDir) -> dict[str, dict[str, Any]]:
    """The run's stored word-similarity results, by set."""
    return _stored_scores(run, ResultKind.WORDSIM)


def stored_sts(run: RunDir) -> dict[str, dict[str, Any]]:
    """The run's stored sentence-similarity results (`defemb eval sts`), by set, shaped as the
    word-similarity results."""
    return _stored_scores(run, ResultKind.STS)


def lexicon_sources(con: Any) -> list[tuple[str, str]]:
    """(kind, uri) of each source loaded into the lexicon."""
    try:
        rows = con.execute("SELECT kind, uri FROM source ORDER BY source_id").fetchall()
    except Exception:  # an older schema without the column: the card just lists no sources
        return []
    return [(str(k), str(u)) for k, u in rows]


def _base_card(model_dir: str | Path) -> tuple[dict[str, Any], str]:
    """The base model's own card: (front matter, text); empty where it has none."""
    from huggingface_hub import ModelCard

    readme = Path(model_dir) / "README.md"
    try:
        card = ModelCard(readme.read_text(encoding="utf-8"), ignore_metadata_errors=True)
    except (OSError, ValueError):
        return {}, ""
    return card.data.to_dict(), card.text


def _base_licence(model_dir: str | Path) -> str | None:
    lic = _base_card(model_dir)[0].get("license")
    return str(lic) if lic else None


def portable_command(command: str) -> str:
    """A recorded command with each local path shortened to its last part (`--run /home/me/runs/r1` →
    `--run r1`), so what an export writes names no folder of the machine it ran on."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()

    def short(w: str) -> str:
        flag, eq, value = w.partition("=")
        if eq and flag.startswith("-"):
            return f"{flag}={short(value)}"
        return Path(w).name or w if w.startswith(("/", "~")) else w

    return shlex.join(short(w) for w in words)


def _is_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or Path(name).exists()


def base_model_id(model_dir: str | Path, given: str | None = None) -> str | None:
    """The base model's Hub id: `given` (the user's `--base-model`), else the id the base's own card
    loads itself by (`SentenceTransformer('sentence-transformers/all-MiniLM-L6-v2')`), else the
    config's `_name_or_path` when it is an id rather than a local path; None when nothing names one.

    The card wins over the config because a fine-tuned model's config often keeps its parent's name
    (all-MiniLM-L6-v2's says `nreimers/MiniLM-L6-H384-uncased`).
    """
    if given:
        return given
    name = str(model_dir)
    if not _is_local(name) and _HUB_ID.match(name):
        return name  # the run was trained from a hub name
    m = _SELF_REFERENCE.search(_base_card(model_dir)[1])
    if m:
        return m.group(1)
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    ref = str(config.get("_name_or_path") or "")
    return ref if _HUB_ID.match(ref) and not _is_local(ref) else None


def pipeline_tag(model_dir: str | Path, sentence_transformers: bool) -> str:
    """The Hub task of the exported model: sentence-similarity for a sentence-transformers folder, else
    what its head does (fill-mask, text2text-generation) or feature-extraction for a bare encoder."""
    if sentence_transformers:
        return "sentence-similarity"
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        config = {}
    arch = " ".join(config.get("architectures") or [])
    if "MaskedLM" in arch:
        return "fill-mask"
    if "ConditionalGeneration" in arch or "Seq2SeqLM" in arch:
        return "text2text-generation"
    return "feature-extraction"


def card_languages(sources: list[tuple[str, str]], langs: list[str], model_dir: str | Path) -> list[str]:
    """Languages of the definitions (the lexicon's sources), else those of the base model's card."""
    codes = sorted({c for lang in langs for c in lang.split(",") if c and c != "*"})
    if codes:
        return codes
    base = _base_card(model_dir)[0].get("language")
    return [base] if isinstance(base, str) else list(base or [])


def _licence_of(sources: list[tuple[str, str]]) -> tuple[str, str]:
    """(licence id, why) for rows derived from these sources."""
    kinds = {k for k, _ in sources}
    if not sources:
        return CARD_LICENSE, (
            "The run's lexicon is not recorded here, and definitionemb lexicons are Wiktionary text "
            "(CC BY-SA 4.0) unless the user brought their own: the card takes the share-alike licence."
        )
    if kinds & _SHARE_ALIKE:
        return CARD_LICENSE, (
            "The rows were regressed from Wiktionary definitions (CC BY-SA 4.0), so the changed rows are "
            "an adaptation of that text and share-alike applies to them; the base model's own licence "
            "allows its weights to be redistributed under CC BY-SA 4.0 with its notices kept."
        )
    return "other", (
        "The definitions are the user's own (tsv sources): the rows carry their author's licence together "
        "with the base model's; state it here before publishing."
    )


def _f(x: Any) -> str:
    return "–" if not isinstance(x, int | float) or x != x else f"{x:.3f}"


def _wordsim_table(ws: Mapping[str, Mapping[str, Any]], policy: RowPolicy) -> list[str]:
    if not ws:
        return [
            "No word-similarity results were stored for this run. Measure them with",
            "`defemb eval wordsim --run RUN --dataset ../shared/data/eval/word-similarity "
            f"{policy.spelling}` and export again.",
        ]
    return _scores_table(ws, policy)


def _scores_table(ws: Mapping[str, Mapping[str, Any]], policy: RowPolicy) -> list[str]:
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
    *,
    base_id: str | None = None,
    langs: list[str] | None = None,
    sts: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The README.md of an exported model folder: Hub front matter (`huggingface_hub.ModelCardData`)
    and a text that names no local path. `chosen`: why this policy, where it is the run's own choice on
    development data (`defemb eval knobs`); `base_id`: the user's Hub id of the base model (else
    :func:`base_model_id` finds one); `langs`: the lexicon's languages; `sts`: sentence similarity."""
    from huggingface_hub import ModelCard, ModelCardData

    m = run.manifest()
    hub_id = base_model_id(base_model, base_id)
    base_name = hub_id or Path(str(base_model).rstrip("/")).name
    base_licence = _base_licence(base_model)
    licence, why = _licence_of(sources)
    tags = ["definitionemb", "token-embeddings", "wiktionary"]
    if sentence_transformers:
        tags += ["sentence-transformers", "feature-extraction"]
    data = ModelCardData(
        license=licence,
        base_model=hub_id,
        base_model_relation="finetune" if hub_id else None,
        language=card_languages(sources, langs or [], base_model) or None,
        pipeline_tag=pipeline_tag(base_model, sentence_transformers),
        library_name="sentence-transformers" if sentence_transformers else "transformers",
        datasets=["wiktionary"] if not sources or {k for k, _ in sources} & _SHARE_ALIKE else None,
        tags=tags,
    )
    lic_lines = [f"- {SOURCE_LICENCES.get(k, k)} (`{Path(u).name}`)" for k, u in sources] or [
        "- the run's lexicon (its sources are not recorded here; Wiktionary text is CC BY-SA)"
    ]
    title = hub_id.split("/")[-1] if hub_id else (Path(str(base_model).rstrip("/")).name or run.run_id)
    lines = [
        f"# {title} with DefinitionEMB rows (run `{run.run_id}`)",
        "",
        f"The base model `{base_name}` with {rows_changed:,} of its {vocab_size:,} input-embedding rows "
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
        f"- run: `{run.run_id}` (seed {m.get('seed')}, preset {(m.get('config') or {}).get('preset', '–')})",
        "",
        "## Lexicon and licence",
        "",
        "The generated rows are derived from dictionary text:",
        "",
        *lic_lines,
        "",
        f"**Licence: `{licence}`.** {why} "
        + (
            f"The base model's own licence is {base_licence}; its notices stay with this folder."
            if base_licence
            else "The base model keeps its own licence."
        ),
        "",
        "## Word similarity (Spearman of cosine, single-token pairs)",
        "",
        *_wordsim_table(wordsim, policy),
        "",
    ]
    if sts:
        lines += ["## Sentence similarity (Spearman)", "", *_scores_table(sts, policy), ""]
    use = "path/to/this/folder"
    if sentence_transformers:
        lines += [
            "## Use",
            "",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            f"model = SentenceTransformer('{use}')  # same modules as the base model",
            "```",
            "",
        ]
    else:
        lines += [
            "## Use",
            "",
            "```python",
            "from transformers import AutoModel",
            f"model = AutoModel.from_pretrained('{use}')",
            "```",
            "",
        ]
    lines += ["## Citation", "", "```bibtex", BIBTEX, "```", ""]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)))
