"""The package's shape holds: layers import only layers below them; modules and functions
stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nuclei"

#: Top to bottom; each layer may import only the layers after it.
LAYERS = (
    "cli",
    "api",
    "runs",
    "benchmarks",
    "training",
    "inference",
    "instances",
    "metrics",
    "data",
    "synthetic",
    "models",
    "progress",
    "heap",
    "child_environment",
    "cores",
    "files",
    "parent_death",
)
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "conf" not in p.relative_to(PACKAGE).parts)


def layer_of(module: str) -> str | None:
    """``nuclei.runs.checkpoint`` -> ``runs``; None for the package itself."""
    parts = module.split(".")
    if parts[0] != "nuclei" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_every_module_lives_in_a_known_layer() -> None:
    for path in modules():
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        assert top in (*LAYERS, "__init__"), f"{path}: not in a layer of {LAYERS}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_run_downwards(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if own == "__init__":
        return
    below = LAYERS[LAYERS.index(own) :]
    for module in imported_modules(path):
        layer = layer_of(module)
        if layer is not None and layer != "conf":
            assert layer in below, f"{path.relative_to(PACKAGE)} imports {module} (a layer above)"


def test_modules_are_small() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_are_small() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
