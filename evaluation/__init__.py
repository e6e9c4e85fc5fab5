"""evaluation: swap DefinitionEMB rows into the PLM and measure what changed.

Public API (imported lazily so `import evaluation` does not pull in torch)::

    evaluation.isotropy(W) / isoscore(W) / mean_cosine(W) / top_pc_share(W) / all_but_the_top(W)
    evaluation.measure_by_bucket(W, labels)               -> {"all", "frequent", "medium", "rare"}
    evaluation.word_similarity(read_pairs(f), tok, mats)  -> WordSimResult
    evaluation.save_swapped(run, db, rows, how=...)       -> SwapResult (save_pretrained into run/model)
    evaluation.knobs_of_run(run, ["word-similarity/"])    -> α chosen on the sets' development parts
    evaluation.compare_glue(run, FinetuneConfig(...))     -> GlueResult (seeds, mean ± std, paired t-test)
    evaluation.compare_summarization(run, SummarizationConfig(...)) -> SummarizationResult (ROUGE)
    evaluation.evaluate_run(run, db, wordsim=[...], glue=...)       -> RunReport (runs/<id>/report/)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evaluation.errors import DataFormatError, EvaluationError, MissingStage

if TYPE_CHECKING:  # the lazy names below, spelled out for mypy and editors
    from evaluation.finetune import FinetuneConfig, GlueResult, compare_glue
    from evaluation.geometry import (
        IsotropyMetrics,
        all_but_the_top,
        isoscore,
        isotropy,
        isotropy_naive,
        mean_cosine,
        measure,
        measure_by_bucket,
        top_pc_share,
    )
    from evaluation.glue_data import read_glue_tsv
    from evaluation.knobs import choose_how, split_pairs
    from evaluation.report import RunReport, build_report, evaluate_run, isotropy_of_run, knobs_of_run
    from evaluation.rows import buckets_by_order, run_buckets, run_matrices
    from evaluation.summarization import (
        PRESETS,
        SummarizationConfig,
        SummarizationResult,
        compare_summarization,
    )
    from evaluation.swap import SwapResult, save_swapped
    from evaluation.wordsim import WordSimResult, read_pairs, spearman, word_similarity

_LAZY = {
    "isotropy": "evaluation.geometry",
    "isotropy_naive": "evaluation.geometry",
    "isoscore": "evaluation.geometry",
    "mean_cosine": "evaluation.geometry",
    "top_pc_share": "evaluation.geometry",
    "all_but_the_top": "evaluation.geometry",
    "measure": "evaluation.geometry",
    "measure_by_bucket": "evaluation.geometry",
    "IsotropyMetrics": "evaluation.geometry",
    "buckets_by_order": "evaluation.rows",
    "run_buckets": "evaluation.rows",
    "run_matrices": "evaluation.rows",
    "read_pairs": "evaluation.wordsim",
    "spearman": "evaluation.wordsim",
    "word_similarity": "evaluation.wordsim",
    "WordSimResult": "evaluation.wordsim",
    "choose_how": "evaluation.knobs",
    "split_pairs": "evaluation.knobs",
    "knobs_of_run": "evaluation.report",
    "save_swapped": "evaluation.swap",
    "SwapResult": "evaluation.swap",
    "read_glue_tsv": "evaluation.glue_data",
    "FinetuneConfig": "evaluation.finetune",
    "GlueResult": "evaluation.finetune",
    "compare_glue": "evaluation.finetune",
    "PRESETS": "evaluation.summarization",
    "SummarizationConfig": "evaluation.summarization",
    "SummarizationResult": "evaluation.summarization",
    "compare_summarization": "evaluation.summarization",
    "RunReport": "evaluation.report",
    "build_report": "evaluation.report",
    "evaluate_run": "evaluation.report",
    "isotropy_of_run": "evaluation.report",
}

__all__ = ["EvaluationError", "DataFormatError", "MissingStage", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
