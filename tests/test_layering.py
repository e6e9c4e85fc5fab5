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


@pytest.mark.parametrize("package", ["lexicon", "embedder", "index", "evaluation"])
def test_lazy_exports_are_spelled_out_for_type_checkers(package: str) -> None:
    """Every lazily exported name also has its `if TYPE_CHECKING:` import, from the module it loads from."""
    import importlib

    tree = ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8"))
    lazy: dict[str, str] = {}
    submodules: set[str] = set()
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "_LAZY":
                lazy = ast.literal_eval(node.value)
            elif node.targets[0].id == "_SUBMODULES":
                submodules = set(ast.literal_eval(node.value))
        elif isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for alias in imp.names:
                    typed[alias.asname or alias.name] = imp.module
    assert lazy, f"{package}/__init__.py has no _LAZY table"
    want = {**lazy, **{m: package for m in submodules}}
    assert typed == want
    pkg = importlib.import_module(package)
    for name, module in lazy.items():
        # A submodule named like a lazy export would replace it on the package once imported.
        assert module != f"{package}.{name}", f"{module} shadows {package}.{name}: rename the module"
        assert getattr(pkg, name) is getattr(importlib.import_module(module), name)
