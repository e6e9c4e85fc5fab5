"""`defemb serve`: a local web explorer over one run — words, definitions, neighbours before and after,
reverse search and read-only SQL, with a JSON API behind every page.

    from definitionemb.serve import Explorer, create_app
    app = create_app(Explorer("runs/r1"))        # FastAPI app; uvicorn.run(app) or `defemb serve --run runs/r1`

The web framework (FastAPI, uvicorn) is the `definitionemb[serve]` extra, imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from definitionemb.serve.app import create_app
    from definitionemb.serve.explorer import Explorer, Limits, run_of_work

_LAZY = {
    "Explorer": "definitionemb.serve.explorer",
    "Limits": "definitionemb.serve.explorer",
    "run_of_work": "definitionemb.serve.explorer",
    "create_app": "definitionemb.serve.app",
}

__all__ = ["Explorer", "Limits", "create_app", "run_of_work"]  # = the keys of _LAZY


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'definitionemb.serve' has no attribute {name!r}")
