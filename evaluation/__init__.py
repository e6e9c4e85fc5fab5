"""evaluation: swap DefinitionEMB rows into the PLM and measure what changed.

Public API (imported lazily so `import evaluation` does not pull in torch)::

    evaluation.isotropy(W) / isoscore(W) / mean_cosine(W) / top_pc_share(W) / all_but_the_top(W)
    evaluation.measure_by_bucket(W, labels)               -> {"all", "frequent", "medium", "rare"}
    evaluation.word_similarity(read_pairs(f), tok, mats)  -> WordSimResult
    evaluation.save_swapped(run, db, rows, how=...)       -> SwapResult (save_pretrained into run/model)
    evaluation.knobs_of_run(run, ["word-similarity/"])    -> α chosen on the sets' development parts
    evaluation.compare_glue(run, FinetuneConfig(...))     -> GlueResult (seeds, mean ± std, paired t-test)
    evaluation.compare_sts(run, "sts/", "test")           -> StsResult (zero-shot STS, bootstrap CI, rare subset)
    evaluation.compare_summarization(run, SummarizationConfig(...)) -> SummarizationResult (ROUGE)
    evaluation.evaluate_run(run, db, wordsim=[...], glue=...)       -> RunReport (runs/<id>/report/)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from definitionemb.evaluation.errors import DataFormatError, EvaluationError, MissingStage

if TYPE_CHECKING:  # the lazy names below, spelled out for mypy and editors
    from definitionemb.evaluation.finetune import FinetuneConfig, GlueResult, compare_glue
    from definitionemb.evaluation.geometry import (
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
    from definitionemb.evaluation.glue_data import read_glue_tsv
    from definitionemb.evaluation.knobs import choose_how, split_pairs
    from definitionemb.evaluation.report import (
        RunReport,
        build_report,
        evaluate_run,
        is_sentence_encoder,
        isotropy_of_run,
        knobs_of_run,
    )
    from definitionemb.evaluation.rows import buckets_by_order, run_buckets, run_matrices
    from definitionemb.evaluation.sts import StsResult, compare_sts, read_sts
    from definitionemb.evaluation.summarization import (
        PRESETS,
        SummarizationConfig,
        SummarizationResult,
        compare_summarization,
    )
    from definitionemb.evaluation.swap import SwapResult, save_swapped
    from definitionemb.evaluation.wordsim import WordSimResult, read_pairs, spearman, word_similarity

_LAZY = {
    "isotropy": "definitionemb.evaluation.geometry",
    "isotropy_naive": "definitionemb.evaluation.geometry",
    "isoscore": "definitionemb.evaluation.geometry",
    "mean_cosine": "definitionemb.evaluation.geometry",
    "top_pc_share": "definitionemb.evaluation.geometry",
    "all_but_the_top": "definitionemb.evaluation.geometry",
    "measure": "definitionemb.evaluation.geometry",
    "measure_by_bucket": "definitionemb.evaluation.geometry",
    "IsotropyMetrics": "definitionemb.evaluation.geometry",
    "buckets_by_order": "definitionemb.evaluation.rows",
    "run_buckets": "definitionemb.evaluation.rows",
    "run_matrices": "definitionemb.evaluation.rows",
    "read_pairs": "definitionemb.evaluation.wordsim",
    "spearman": "definitionemb.evaluation.wordsim",
    "word_similarity": "definitionemb.evaluation.wordsim",
    "WordSimResult": "definitionemb.evaluation.wordsim",
    "choose_how": "definitionemb.evaluation.knobs",
    "split_pairs": "definitionemb.evaluation.knobs",
    "knobs_of_run": "definitionemb.evaluation.report",
    "save_swapped": "definitionemb.evaluation.swap",
    "SwapResult": "definitionemb.evaluation.swap",
    "read_glue_tsv": "definitionemb.evaluation.glue_data",
    "FinetuneConfig": "definitionemb.evaluation.finetune",
    "GlueResult": "definitionemb.evaluation.finetune",
    "compare_glue": "definitionemb.evaluation.finetune",
    "PRESETS": "definitionemb.evaluation.summarization",
    "SummarizationConfig": "definitionemb.evaluation.summarization",
    "SummarizationResult": "definitionemb.evaluation.summarization",
    "compare_summarization": "definitionemb.evaluation.summarization",
    "RunReport": "definitionemb.evaluation.report",
    "build_report": "definitionemb.evaluation.report",
    "evaluate_run": "definitionemb.evaluation.report",
    "isotropy_of_run": "definitionemb.evaluation.report",
    "is_sentence_encoder": "definitionemb.evaluation.report",
    "compare_sts": "definitionemb.evaluation.sts",
    "StsResult": "definitionemb.evaluation.sts",
    "read_sts": "definitionemb.evaluation.sts",
}

__all__ = ["EvaluationError", "DataFormatError", "MissingStage", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'definitionemb.evaluation' has no attribute {name!r}")
