"""The base layer under the four stages: what lexicon, embedder, index and evaluation all share.

Errors (one root, `DefembError`), atomic writes and output ownership (`fileio`), device resolution
(`device`) and the PLM loader (`plm`), written once here so no stage reaches sideways or up the flow for
them. Nothing in core imports a stage, and nothing here imports torch or transformers at module level.
"""

from __future__ import annotations

from definitionemb.core.errors import DefembError, OutputError

__all__ = ["DefembError", "OutputError"]
