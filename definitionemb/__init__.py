"""definitionemb: dictionary definitions turned into token embeddings for pre-trained language models.

One import root. The stages are subpackages, each with its own small API (loaded lazily, so importing
one does not load torch or faiss until a call needs them)::

    from definitionemb import lexicon, embedder, index, evaluation

    lexicon.build("lex.duckdb", ["open-dictionary:open-dictionary/api"])
    lexicon.align("lex.duckdb", "models/minilm")
    embedder.train(embedder.preset("quick", db="lex.duckdb", model="models/minilm", run="runs/m1"))
    embedder.generate(embedder.GenerateConfig(db="lex.duckdb", run="runs/m1"))
    index.build("runs/m1")
    index.neighbors("runs/m1", ["cat"], k=5)
    evaluation.evaluate_run("runs/m1", "lex.duckdb")

The command line is `defemb` (`definitionemb.cli`); every error raised on purpose derives from
`DefembError`.
"""

from __future__ import annotations

from definitionemb import embedder, evaluation, index, lexicon
from definitionemb.core.errors import DefembError, OutputError

__version__ = "0.1.0"

__all__ = ["DefembError", "OutputError", "__version__", "embedder", "evaluation", "index", "lexicon"]
