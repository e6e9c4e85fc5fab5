"""Imports point down the flow only: core <- lexicon <- embedder <- index <- evaluation <- cli (definitionemb)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Layer names; a layer's folder is its name, except the top one (the CLI, the pipeline, the root API).
ORDER = ["core", "lexicon", "embedder", "index", "evaluation", "definitionemb"]
STAGES = set(ORDER[:-1])
# What import names each layer: anything outside definitionemb is a third-party name, kept as is.


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "definitionemb":
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "definitionemb"


# lexicon must stay light: it is what a user opens to run SQL.
FORBIDDEN_IN_LEXICON = {"torch", "transformers", "faiss"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_layer(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "definitionemb" and node.level == 0:
            found.update(_layer(f"definitionemb.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(_layer(node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(_layer(arg.value))
    return found


@pytest.mark.parametrize("package", ORDER)
def test_imports_point_down_the_flow(package: str) -> None:
    allowed = set(ORDER[: ORDER.index(package) + 1])
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "definitionemb" and path.name == "__init__.py" and path.parent.name == package:
            continue  # the root API re-exports the stages; it sits at the top with the CLI
        bad = (_imports(path) & set(ORDER)) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}, which sit later in the flow"


def test_lexicon_does_not_import_heavy_frameworks() -> None:
    for path in sorted((ROOT / "lexicon").rglob("*.py")):
        bad = _imports(path) & FORBIDDEN_IN_LEXICON
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "import definitionemb.evaluation\nfrom definitionemb.index.swap import replace_rows\n"
        "from definitionemb.cli import main\nimport torch\nimport index\n"
    )
    assert _imports(f) == {"evaluation", "index", "definitionemb", "torch"}


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
    want = {**lazy, **{m: f"definitionemb.{package}" for m in submodules}}
    assert typed == want
    pkg = importlib.import_module(f"definitionemb.{package}")
    for name, module in lazy.items():
        # A submodule named like a lazy export would replace it on the package once imported.
        assert module != f"definitionemb.{package}.{name}", (
            f"{module} shadows {package}.{name}: rename the module"
        )
        assert getattr(pkg, name) is getattr(importlib.import_module(module), name)


def _all_sources() -> list[Path]:
    dirs = [*ORDER[:-1], "definitionemb", "benchmarks", "scripts", "tests"]
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def test_no_module_imports_a_stage_by_its_bare_name() -> None:
    """`import index` (or `import_module("embedder")`) would load the top-level folder from the current
    directory, a second copy of the stage, or PyPI's `index` package: always `definitionemb.<stage>`."""
    bare_names = set(ORDER[:-1]) | {"defemb"}
    for path in _all_sources():
        written: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif (
                isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args
            ):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names = [arg.value]
            written.update(n.split(".")[0] for n in names)
        bare = written & bare_names
        assert not bare, f"{path.relative_to(ROOT)} imports {sorted(bare)} by the bare name"
