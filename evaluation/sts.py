"""Zero-shot sentence similarity: the run's sentence encoder with its original rows and with a policy's rows.

This is the model as people use it: all-MiniLM-L6-v2 encodes both sentences of an STS Benchmark pair
(mean pooling over the last hidden states, then L2 normalisation, as its own sentence-transformers
modules say: `index.sentence`), and the cosine of the two vectors is scored against the gold similarity
by Spearman's rho. The original rows and each policy's rows are scored in the same run on the same
pairs; each difference comes with a paired bootstrap 95 % interval (pairs resampled, both sides on the
same resample).

Beside the whole set the table reports the *rare-token subset*: the pairs with at least one token whose
row the policy changed and that lies in the rare frequency bucket (:func:`rare_examples`), where
DefinitionEMB claims to help. The development part chooses; the test part reports.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.embedder.binding import LexiconRef
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import DataFormatError, EvaluationError
from definitionemb.evaluation.rows import changed_rare_rows, rare_examples, run_buckets
from definitionemb.evaluation.wordsim import GoldPairs, Side, spearman

__all__ = [
    "STS_PARTS",
    "StsPairs",
    "read_sts",
    "sts_file",
    "bootstrap_difference",
    "StsResult",
    "sts_scores",
    "compare_sts",
    "sts_line",
]

STS_PARTS = ("train", "dev", "test")
_SCORE, _S1, _S2 = 4, 5, 6  # STS Benchmark columns (readme.txt): score, sentence 1, sentence 2


class StsPairs(GoldPairs):
    """Sentence pairs with their gold similarity (0-5)."""

    s1 = Side("first")
    s2 = Side("second")


def read_sts(path: str | os.PathLike[str]) -> StsPairs:
    """An STS Benchmark file: tab-separated, score in column 5, the sentences in columns 6 and 7 (more
    columns, the sources, may follow). Quotes are text, not field delimiters."""
    p = Path(path)
    if not p.is_file():
        raise EvaluationError(f"STS file {p} does not exist")
    s1, s2, score = [], [], []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        try:
            gold = float(cols[_SCORE])
            a, b = cols[_S1].strip(), cols[_S2].strip()
        except (IndexError, ValueError) as exc:
            raise DataFormatError(
                f"{p}:{n}: not an STS Benchmark line (tab-separated, score in column 5, sentences in 6-7)"
            ) from exc
        s1.append(a)
        s2.append(b)
        score.append(gold)
    if len(score) < 2:
        raise DataFormatError(f"{p} holds fewer than 2 sentence pairs")
    return StsPairs(p.stem, tuple(s1), tuple(s2), np.asarray(score, dtype=np.float64))


def sts_file(data: str | os.PathLike[str], part: str) -> Path:
    """`data` itself when it is a file, else `<data>/sts-<part>.csv` (the STS Benchmark's file names)."""
    p = Path(data)
    if p.is_file():
        return p
    if part not in STS_PARTS:
        raise EvaluationError(f"unknown STS part {part!r}; choose among {', '.join(STS_PARTS)}")
    f = p / f"sts-{part}.csv"
    if not f.is_file():
        raise EvaluationError(f"no {f.name} in {p}; give the STS Benchmark folder (sts-train/dev/test.csv)")
    return f


def bootstrap_difference(
    gold: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Spearman(gold, b) − Spearman(gold, a) and its paired bootstrap `level` interval: the same resampled
    pairs score both sides, so what the two share (the pairs' difficulty) cancels out."""
    from scipy.stats import rankdata

    gold, a, b = (np.asarray(x, dtype=np.float64) for x in (gold, a, b))
    m = gold.size
    nan = float("nan")
    if m < 3:
        return {"delta": nan, "ci_low": nan, "ci_high": nan, "resamples": 0}
    idx = np.random.default_rng(seed).integers(0, m, size=(n, m))

    def rho(pred: np.ndarray) -> np.ndarray:
        rg, rp = rankdata(gold[idx], axis=1), rankdata(pred[idx], axis=1)
        rg -= rg.mean(axis=1, keepdims=True)
        rp -= rp.mean(axis=1, keepdims=True)
        den = np.sqrt((rg * rg).sum(axis=1) * (rp * rp).sum(axis=1))
        return np.divide((rg * rp).sum(axis=1), den, out=np.full(n, np.nan), where=den > 0)

    d = rho(b) - rho(a)
    d = d[np.isfinite(d)]
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2]) if d.size else (nan, nan)
    return {
        "delta": spearman(gold, b) - spearman(gold, a),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "resamples": int(d.size),
    }


@dataclass(frozen=True)
class StsResult:
    """Spearman of every matrix on the whole part and on its rare-token subset, and each policy's paired
    difference from the original rows with its bootstrap interval."""

    file: str
    part: str
    pairs: int
    rare_pairs: int
    rare_rows: int  # rows the policy changed that lie in the rare bucket
    buckets_from: str
    spearman: dict[str, dict[str, float]] = field(default_factory=dict)  # matrix -> {all, rare}
    difference: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # policy -> subset -> ci
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cosines(encoder: Any, pairs: StsPairs) -> np.ndarray:
    texts = list(dict.fromkeys([*pairs.s1, *pairs.s2]))  # each distinct sentence once
    pos = {t: i for i, t in enumerate(texts)}
    vec = encoder.encode(texts)
    a = vec[[pos[t] for t in pairs.s1]]
    b = vec[[pos[t] for t in pairs.s2]]
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(axis=1), den, out=np.zeros(len(pairs)), where=den > 0)


def sts_scores(
    model_dir: str | os.PathLike[str],
    pairs: StsPairs,
    matrices: dict[str, tuple[np.ndarray, np.ndarray] | None],
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """`{name: cosine per pair}` with each `(matrix, mask)` swapped into the encoder (None: its own rows)."""
    import torch
    from definitionemb.evaluation.swap import replace_rows
    from definitionemb.index.errors import IndexStageError
    from definitionemb.index.sentence import SentenceEncoder

    try:
        encoder = SentenceEncoder(model_dir, device=device)
    except IndexStageError as exc:
        raise EvaluationError(str(exc)) from exc
    emb = encoder.model.get_input_embeddings().weight
    own = emb.detach().clone()
    out: dict[str, np.ndarray] = {}
    for name, swap in matrices.items():
        with torch.no_grad():
            emb.copy_(own)
        if swap is not None:
            replace_rows(encoder.model, swap[0], swap[1])
        out[name] = _cosines(encoder, pairs)
    return out


def compare_sts(
    run: RunDir,
    data: str | os.PathLike[str],
    part: str = "test",
    db: LexiconRef = None,
    rows: str | None = None,
    how: Sequence[str] | str | None = None,
    bootstrap: int = 2000,
    seed: int = 0,
    device: str = "cpu",
) -> StsResult:
    """The run's sentence encoder on an STS part with its original rows and with each policy `rows` × `how`
    (default: the run's policy), the paired differences and the rare-token subset.

    The rare subset is chosen from the run's own buckets and the first policy's mask (all policies share
    `rows`, so they change the same rows).
    """
    from definitionemb.index.policy import as_policy, policy_matrix

    t0 = time.perf_counter()
    model_dir = run.manifest().get("model")
    if not model_dir or not Path(str(model_dir)).exists():
        raise EvaluationError(f"{run.manifest_path}: model {model_dir!r} is not a local folder")
    f = sts_file(data, part)
    pairs = read_sts(f)
    hows: list[str | None] = [how] if isinstance(how, str) else [*(how or [])] or [None]
    policies = list(dict.fromkeys(as_policy(rows, h, run) for h in hows))
    swaps = {p.label: policy_matrix(run, db, p) for p in policies}
    labels, source = run_buckets(run, db)
    changed = changed_rare_rows(next(iter(swaps.values()))[1], labels)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids1 = tok(list(pairs.s1), add_special_tokens=False)["input_ids"]
    ids2 = tok(list(pairs.s2), add_special_tokens=False)["input_ids"]
    rare = rare_examples([a + b for a, b in zip(ids1, ids2, strict=True)], changed)
    cos = sts_scores(str(model_dir), pairs, {"original": None, **swaps}, device=device)
    subsets = {"all": np.ones(len(pairs), dtype=bool), "rare": rare}
    table = {
        name: {
            s: spearman(pairs.score[m], c[m]) if m.sum() >= 3 else float("nan") for s, m in subsets.items()
        }
        for name, c in cos.items()
    }
    diff = {
        p: {
            s: bootstrap_difference(pairs.score[m], cos["original"][m], cos[p][m], bootstrap, seed)
            for s, m in subsets.items()
        }
        for p in swaps
    }
    return StsResult(
        file=str(f),
        part=part,
        pairs=len(pairs),
        rare_pairs=int(rare.sum()),
        rare_rows=int(changed.sum()),
        buckets_from=source,
        spearman=table,
        difference=diff,
        seconds=round(time.perf_counter() - t0, 3),
    )


def sts_line(res: StsResult | dict[str, Any]) -> str:
    """'STS-B test (1,379 pairs): original 0.8203, mix:0.45 0.8164 (−0.0039 [−0.0080, +0.0001]); rare
    subset (212): …' — the first policy only."""
    d = res.to_dict() if isinstance(res, StsResult) else res
    if not d["difference"]:
        return f"STS {d['part']}: original {d['spearman']['original']['all']:.4f}"
    name = next(iter(d["difference"]))
    parts = []
    for s, label in (
        ("all", f"{d['pairs']:,} pairs"),
        ("rare", f"rare-token subset, {d['rare_pairs']:,} pairs"),
    ):
        ci = d["difference"][name][s]
        parts.append(
            f"{label}: original {d['spearman']['original'][s]:.4f}, {name} {d['spearman'][name][s]:.4f} "
            f"({ci['delta']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}])"
        )
    return f"STS {d['part']} Spearman — " + "; ".join(parts)
