"""Choosing a row policy's weight α on development data, never on the pairs that are reported.

Every word-similarity set is cut in two by a fixed rule that depends only on the pair's two words
(`pair_part`): a third of the pairs is *development* data, the rest the *test* part. `choose_how` scores
each candidate (method × α) on the development parts only — it is never handed a test pair — and picks
the best mean Spearman over sets (ties: the smaller α, the row closer to the original). The test parts
are scored afterwards, for the curve in the report; reported numbers are test-part numbers.

Given the rows of the rare bucket, a candidate is eligible only if it keeps their isotropy I(W) at least
at the original rows' (`guard_rows`): the rows DefinitionEMB exists for must not end up more crowded
than pre-training left them. The guard reads no word pair; it is a property of the matrix alone.

Beside the Spearman curve the report shows how much of the pre-trained geometry a policy keeps: the
share of each sampled covered token's 10 nearest original neighbours that stay among its 10 nearest
under the policy (`neighbours_kept`). It is 1 at α = 0 and falls as α grows; it says what a gain costs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.evaluation.wordsim import WordPairs, single_token_ids, spearman
from definitionemb.index.policy import METHODS

__all__ = [
    "DEV_SHARE",
    "ALPHAS",
    "KNOB_METHODS",
    "pair_part",
    "split_pairs",
    "covered_pair_ids",
    "spearman_curve",
    "neighbours_kept",
    "KnobChoice",
    "choose_how",
    "wins",
    "wins_line",
    "OBJECTIVES",
    "STS_MARGIN",
    "STS_ALPHAS",
    "dev_means",
    "choose_for_use",
]

DEV_SHARE = 3  # one pair in DEV_SHARE is development data
_GUARD_TOL = 1e-6  # float noise: a blend of identical rows is not "below" the original
ALPHAS: tuple[float, ...] = tuple(round(a, 2) for a in np.linspace(0.0, 1.0, 21))
# Every blend with a weight (index.policy.METHODS but replace). `normmix` points where `mix` points, so
# its Spearman curve is the mix's; only the guard tells them apart.
KNOB_METHODS = tuple(m for m in METHODS if m != "replace")


# What `defemb eval knobs --objective` optimises: static word similarity (development thirds), zero-shot
# sentence similarity (STS-B dev), or both: the best static gain among the candidates non-inferior on
# STS-B dev (the paired 95 % interval's lower end above −STS_MARGIN).
OBJECTIVES = ("wordsim", "sts", "both")
STS_MARGIN = 0.005
# The STS side encodes the whole dev part once per candidate, so it scans a coarser grid than ALPHAS.
STS_ALPHAS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.45)


def pair_part(w1: str, w2: str) -> str:
    """`dev` or `test` for a pair, from a hash of its two words (order- and case-blind, file-order free)."""
    a, b = sorted((w1.lower(), w2.lower()))
    h = int(hashlib.sha1(f"{a}\t{b}".encode()).hexdigest()[:8], 16)
    return "dev" if h % DEV_SHARE == 0 else "test"


def split_pairs(pairs: WordPairs) -> tuple[WordPairs, WordPairs]:
    """(development part, test part) of a set, by `pair_part`."""
    parts = [pair_part(a, b) for a, b in zip(pairs.word1, pairs.word2, strict=True)]
    out = []
    for want in ("dev", "test"):
        k = [i for i, p in enumerate(parts) if p == want]
        out.append(
            WordPairs(
                pairs.name,
                tuple(pairs.word1[i] for i in k),
                tuple(pairs.word2[i] for i in k),
                pairs.score[k],
            )
        )
    return out[0], out[1]


@dataclass(frozen=True)
class _Scored:
    """A set reduced to its single-token pairs: ids and gold scores."""

    name: str
    i: np.ndarray
    j: np.ndarray
    gold: np.ndarray


def covered_pair_ids(pairs: WordPairs, tokenizer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids of word 1, ids of word 2, gold) over the pairs both of whose words are single tokens."""
    id1 = single_token_ids(tokenizer, pairs.word1)
    id2 = single_token_ids(tokenizer, pairs.word2)
    keep = [k for k, (a, b) in enumerate(zip(id1, id2, strict=True)) if a is not None and b is not None]
    return (
        np.asarray([id1[k] for k in keep], dtype=np.int64),
        np.asarray([id2[k] for k in keep], dtype=np.int64),
        pairs.score[keep],
    )


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(axis=1), den, out=np.zeros_like(den), where=den > 0)


def spearman_curve(
    original: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray,
    scored: Sequence[_Scored],
    how: Sequence[str],
) -> dict[str, dict[str, float]]:
    """`{how: {set: Spearman}}` with the `mask` rows blended by each `how` (only the pairs' rows are built)."""
    from definitionemb.index.policy import blend

    ids = np.unique(np.concatenate([np.concatenate([s.i, s.j]) for s in scored] or [np.zeros(0, np.int64)]))
    o = np.asarray(original[ids], dtype=np.float64)
    g = np.asarray(generated[ids], dtype=np.float64)
    m = np.asarray(mask, dtype=bool)[ids]
    pos = {int(t): k for k, t in enumerate(ids)}
    out: dict[str, dict[str, float]] = {}
    for h in how:
        rows = o.copy()
        if m.any():
            rows[m] = blend(o[m], g[m], h)
        per: dict[str, float] = {}
        for s in scored:
            if s.i.size < 2:
                per[s.name] = float("nan")
                continue
            a = rows[[pos[int(t)] for t in s.i]]
            b = rows[[pos[int(t)] for t in s.j]]
            per[s.name] = spearman(s.gold, _cos(a, b))
        out[h] = per
    return out


def neighbours_kept(
    original: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray,
    how: Sequence[str],
    k: int = 10,
    sample: int = 300,
    seed: int = 0,
) -> dict[str, float]:
    """`{how: mean share of a sampled covered token's k original nearest neighbours kept under how}`."""
    from definitionemb.index.policy import apply_how

    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m)
    if rows.size == 0:
        return {h: 1.0 for h in how}
    q = np.sort(np.random.default_rng(seed).choice(rows, size=min(sample, rows.size), replace=False))

    def top(w: np.ndarray) -> np.ndarray:
        u = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
        sim = u[q] @ u.T
        sim[np.arange(q.size), q] = -np.inf
        return np.argpartition(-sim, k, axis=1)[:, :k]

    base = top(np.asarray(original, dtype=np.float32))
    out: dict[str, float] = {}
    for h in how:
        nb = top(apply_how(original, generated, m, h))
        out[h] = float(np.mean([np.intersect1d(x, y).size / k for x, y in zip(base, nb, strict=True)]))
    return out


@dataclass(frozen=True)
class KnobChoice:
    """The chosen `how`, why, and the whole curve (development and test parts, neighbours kept)."""

    chosen: str
    criterion: str
    dev_value: float
    original_dev_value: float
    alphas: tuple[float, ...]
    methods: tuple[str, ...]
    dev: dict[str, dict[str, float]] = field(default_factory=dict)  # how -> set -> Spearman
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    neighbours_kept: dict[str, float] = field(default_factory=dict)
    pairs: dict[str, dict[str, int]] = field(default_factory=dict)  # set -> {dev, test}: covered pairs
    guard: dict[str, float] = field(default_factory=dict)  # how -> I(W) of the guarded rows ("original" too)

    @property
    def reason(self) -> str:
        why = (
            f"{self.chosen} has the best {self.criterion} ({self.dev_value:.4f}; original rows "
            f"{self.original_dev_value:.4f}) among {', '.join(self.methods)} at α in "
            f"{{{', '.join(f'{a:g}' for a in self.alphas)}}}, on the development third of "
            f"{len(self.pairs)} word-similarity set(s)"
        )
        if self.guard:
            floor = self.guard["original"] - _GUARD_TOL
            dropped = sum(1 for h, v in self.guard.items() if h != "original" and v < floor)
            why += (
                f", among the candidates that keep the rare rows' I(W) at least at the original's "
                f"({self.guard['original']:.4f}; {dropped} candidate(s) fell below it)"
            )
        return why

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reason": self.reason}


def _how(method: str, alpha: float) -> str:
    return "replace" if method == "replace" else f"{method}:{alpha:g}"


def _mean(per: Mapping[str, float]) -> float:
    v = [x for x in per.values() if np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def choose_how(
    original: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray,
    tokenizer: Any,
    sets: Sequence[WordPairs],
    methods: Sequence[str] = ("mix", "dirmix"),
    alphas: Sequence[float] = ALPHAS,
    neighbours: bool = True,
    guard_rows: np.ndarray | None = None,
) -> KnobChoice:
    """Pick method × α by the mean development-part Spearman over `sets`; score the test parts after.

    Only the development parts reach the selection; the test parts are scored once the choice is made,
    with the same candidates, so the report can show the whole curve. With `guard_rows` (a boolean
    row mask, e.g. the rare bucket), candidates whose I(W) on those rows falls below the original
    rows' are not eligible (when none is, the original rows are kept: `mix:0`).
    """
    if not sets:
        raise EvaluationError("choosing α needs at least one word-similarity set")
    if not methods or any(m not in KNOB_METHODS for m in methods):
        raise EvaluationError(f"methods must be among {', '.join(KNOB_METHODS)}, got {list(methods)}")
    cands = [_how(m, float(a)) for m in methods for a in alphas]
    dev_sets, test_sets, counts = [], [], {}
    for s in sets:
        d, t = split_pairs(s)
        dev_sets.append(_Scored(s.name, *covered_pair_ids(d, tokenizer)))
        test_sets.append(_Scored(s.name, *covered_pair_ids(t, tokenizer)))
        counts[s.name] = {"dev": int(dev_sets[-1].i.size), "test": int(test_sets[-1].i.size)}
    if sum(c["dev"] for c in counts.values()) < 2:
        raise EvaluationError("the development parts hold fewer than 2 single-token pairs; add sets")
    dev = spearman_curve(original, generated, mask, dev_sets, ["mix:0", *cands])
    orig_value = _mean(dev["mix:0"])  # mix:0 is the original row itself
    # Highest mean; among equals the smaller α (max() keeps the first of equal keys, cands ascend in α).
    by_alpha = sorted(cands, key=lambda h: float(h.split(":")[1]))
    guard = _guard(original, generated, mask, guard_rows, cands) if guard_rows is not None else {}
    floor = guard.get("original", 0.0) - _GUARD_TOL
    eligible = [h for h in by_alpha if not guard or guard[h] >= floor] or ["mix:0"]
    best = max(eligible, key=lambda h: np.nan_to_num(_mean(dev[h]), nan=-np.inf))
    criterion = "mean development-part Spearman"
    # The choice is made; only now are the test parts scored, for the report's curve.
    test = spearman_curve(original, generated, mask, test_sets, ["mix:0", *cands])
    kept = neighbours_kept(original, generated, mask, cands) if neighbours else {}
    return KnobChoice(
        chosen=best,
        criterion=criterion,
        dev_value=_mean(dev[best]),
        original_dev_value=orig_value,
        alphas=tuple(float(a) for a in alphas),
        methods=tuple(methods),
        dev={h: dev[h] for h in cands},
        test={"original": test["mix:0"], **{h: test[h] for h in cands}},
        neighbours_kept=kept,
        pairs=counts,
        guard=guard,
    )


def _guard(
    original: np.ndarray, generated: np.ndarray, mask: np.ndarray, rows: np.ndarray, cands: Sequence[str]
) -> dict[str, float]:
    """I(W) of the guarded rows under the original matrix and under each candidate."""
    from definitionemb.evaluation.geometry import isotropy
    from definitionemb.index.policy import blend

    rows = np.asarray(rows, dtype=bool)
    if rows.shape != mask.shape:
        raise EvaluationError(f"guard rows must be a mask of {mask.shape[0]} rows, got {rows.shape}")
    if rows.sum() < 2:
        raise EvaluationError("the guarded bucket holds fewer than 2 rows; its isotropy is undefined")
    o = np.asarray(original[rows], dtype=np.float32)
    changed = np.asarray(mask[rows], dtype=bool)
    g = np.asarray(generated[rows], dtype=np.float32)[changed]
    out = {"original": float(isotropy(o))}
    for h in cands:
        w = o.copy()
        if changed.any():
            w[changed] = blend(o[changed], g, h)
        out[h] = float(isotropy(w))
    return out


def wins(per_set: Mapping[str, Mapping[str, float]], name: str, against: str = "original") -> dict[str, Any]:
    """How `name` does against `against` over sets: `{wins, sets, mean_delta, deltas}`.

    `per_set` maps set -> matrix -> Spearman; sets where either value is missing are left out.
    """
    deltas = {}
    for ds, sp in per_set.items():
        a, b = sp.get(name), sp.get(against)
        if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
            continue
        deltas[ds] = float(a) - float(b)
    won = sum(1 for d in deltas.values() if d > 0)
    mean = float(np.mean(list(deltas.values()))) if deltas else float("nan")
    return {
        "name": name,
        "against": against,
        "wins": won,
        "sets": len(deltas),
        "mean_delta": mean,
        "deltas": deltas,
    }


def wins_line(w: Mapping[str, Any]) -> str:
    """'dirmix:0.2 beats original on 6 of 6 sets, mean +0.021'."""
    if not w["sets"]:
        return f"{w['name']}: no set scores both it and {w['against']}"
    return (
        f"{w['name']} beats {w['against']} on {w['wins']} of {w['sets']} set{'s' if w['sets'] != 1 else ''}, "
        f"mean {w['mean_delta']:+.3f}"
    )


def dev_means(
    original: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray,
    tokenizer: Any,
    sets: Sequence[WordPairs],
    how: Sequence[str],
) -> dict[str, float]:
    """`{how: mean Spearman over the development parts of sets}` with the `mask` rows blended by each how.
    Only `split_pairs(...)[0]`, the development part, is ever scored here."""
    dev = [_Scored(s.name, *covered_pair_ids(split_pairs(s)[0], tokenizer)) for s in sets]
    return {h: _mean(per) for h, per in spearman_curve(original, generated, mask, dev, how).items()}


def choose_for_use(
    static: Mapping[str, float],
    sts: Mapping[str, Mapping[str, float]],
    objective: str,
    margin: float = STS_MARGIN,
) -> tuple[str | None, str]:
    """(chosen candidate or None for the original rows, why) among the candidates of `sts`.

    `static` maps each candidate to its mean development-part word-similarity Spearman (the original rows
    under ``"original"``); `sts` maps it to its STS-B *dev* difference from the original rows (`delta`,
    `ci_low`, `ci_high`; evaluation.sts.bootstrap_difference). Candidates come in preference order (smaller
    α first), which breaks ties. `sts`: the best STS delta, if above 0. `both`: the best static score
    among the candidates whose STS interval's lower end lies above −`margin`, if it beats the original.
    """
    if objective not in ("sts", "both"):
        raise EvaluationError(f"objective must be sts or both here, got {objective!r}")
    cands = list(sts)
    if objective == "sts":
        best = max(cands, key=lambda c: np.nan_to_num(sts[c]["delta"], nan=-np.inf), default=None)
        if best is None or not sts[best]["delta"] > 0:
            return None, "no candidate beats the original rows on STS-B dev"
        return best, f"{best} has the best STS-B dev difference ({sts[best]['delta']:+.4f})"
    ok = [c for c in cands if sts[c]["ci_low"] > -margin]
    base = static.get("original", float("nan"))
    best = max(ok, key=lambda c: np.nan_to_num(static.get(c, float("nan")), nan=-np.inf), default=None)
    if best is None or not static.get(best, float("nan")) > base:
        return None, (
            f"none of {len(cands)} candidates is both non-inferior on STS-B dev (95% CI above −{margin:g}) "
            "and better than the original rows on the word-similarity development parts"
        )
    ci = sts[best]
    return best, (
        f"{best} has the best mean development-part word similarity ({static[best]:.4f}; original rows "
        f"{base:.4f}) among the {len(ok)} of {len(cands)} candidates non-inferior on STS-B dev (95% CI of "
        f"the difference above −{margin:g}; its own {ci['delta']:+.4f} [{ci['ci_low']:+.4f}, "
        f"{ci['ci_high']:+.4f}])"
    )
