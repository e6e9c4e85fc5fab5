"""Imports point down the flow only: lexicon <- embedder <- index <- evaluation <- defemb."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["lexicon", "embedder", "index", "evaluation", "defemb"]
# lexicon must stay light: it is what a user opens to run SQL.
FORBIDDEN_IN_LEXICON = {"torch", "transformers", "faiss"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value.split(".")[0])
    return found


@pytest.mark.parametrize("package", ORDER)
def test_imports_point_down_the_flow(package: str) -> None:
    allowed = set(ORDER[: ORDER.index(package) + 1])
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = (_imports(path) & set(ORDER)) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}, which sit later in the flow"


def test_lexicon_does_not_import_heavy_frameworks() -> None:
    for path in sorted((ROOT / "lexicon").rglob("*.py")):
        bad = _imports(path) & FORBIDDEN_IN_LEXICON
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import evaluation\nfrom index.swap import replace_rows\nimport torch\n")
    assert _imports(f) == {"evaluation", "index", "torch"}
