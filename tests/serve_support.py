"""A run to serve, for the `defemb serve` tests and benchmark: the small real lexicon of tests/data
aligned to the tiny random BERT made a sentence encoder, a short trained run with its generated rows,
its token indexes, its reverse-dictionary index (every scorer) and an evaluation report (no tests here).
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
WORDSIM = DATA / "eval" / "word-similarity" / "EN-RG-65.txt"


def build_served_run(work: Path, tiny_bert_dir: Path) -> tuple[Path, Path, Path]:
    """(run, lexicon, sentence cache) under `work`, everything `defemb serve` shows already built."""
    from test_reverse_dictionary import _make_sentence_encoder, _trained_run

    from definitionemb import evaluation, index

    run, db = _trained_run(work, _make_sentence_encoder(tiny_bert_dir, work / "tiny-st"))
    cache = work / "cache"
    index.build(run, kind="tokens", db=db, progress=False)
    index.build_reverse(run, db=db, cache_dir=cache, progress=False)
    evaluation.evaluate_run(run, db, wordsim=[WORDSIM], knobs=True, command="defemb eval report")
    return run, db, cache
