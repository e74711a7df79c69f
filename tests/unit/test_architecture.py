"""The package's layers hold: every module imports only its own layer and the layers below,
whether by absolute or relative import, and the configuration names only classes that the
layer building it may import."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nuclei"
CONF = ROOT / "conf"

#: Top to bottom; each layer may import only itself and the layers after it.
LAYERS = (
    "cli",
    "api",
    "runs",
    "training",
    "inference",
    "instances",
    "metrics",
    "data",
    "synthetic",
    "models",
    "runtime",
    "files",
)
#: The layer that builds (instantiates) the ``_target_`` entries of each config group;
#: the top-level files (``train.yaml``...) and ``hydra/`` are read by the commands.
CONF_BUILDERS = {
    "callbacks": "training",
    "debug": "training",
    "logger": "training",
    "model": "training",
    "optimizer": "training",
    "scheduler": "training",
    "task": "training",
    "trainer": "training",
    "hparams_search": "cli",
    "hydra": "cli",
    ".": "cli",
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    """``nuclei/runs/checkpoint.py`` -> ``nuclei.runs.checkpoint`` (a package: its name)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    """``nuclei.runs.checkpoint`` -> ``runs``; None for the package itself and others'."""
    parts = module.split(".")
    if parts[0] != "nuclei" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports: relative imports resolved, and for ``from A import B``
    both ``A`` and ``A.B`` (B may be a module, as in ``from nuclei import api``)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def allowed_below(layer: str) -> tuple[str, ...]:
    return LAYERS[LAYERS.index(layer) :]


def test_every_module_lives_in_a_known_layer() -> None:
    for path in modules():
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        assert top in (*LAYERS, "__init__"), f"{path}: not in a layer of {LAYERS}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_run_downwards(path: Path) -> None:
    own = layer_of(module_name(path))
    if own is None:  # nuclei/__init__.py: the public names, from any layer
        return
    for module in imported_modules(path):
        layer = layer_of(module)
        if layer is not None:
            assert layer in allowed_below(own), (
                f"{path.relative_to(PACKAGE)} imports {module} (layer {layer}, above {own})"
            )


def targets(node: object, key: str = "") -> list[tuple[str, str]]:
    """``(key path, target)`` of every ``_target_`` in a loaded YAML document."""
    found = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "_target_" and isinstance(value, str):
                found.append((key, value))
            else:
                found += targets(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += targets(value, f"{key}[{index}]")
    return found


def conf_targets() -> list[tuple[Path, str, str]]:
    return [
        (path, key, target)
        for path in sorted(CONF.rglob("*.yaml"))
        for key, target in targets(yaml.safe_load(path.read_text()))
    ]


def test_the_configuration_names_only_what_its_builder_may_import() -> None:
    for path, key, target in conf_targets():
        if layer_of(target) is None:
            continue
        group = path.relative_to(CONF).parts[0] if path.parent != CONF else "."
        assert group in CONF_BUILDERS, f"{path}: add its group {group!r} to CONF_BUILDERS"
        builder = CONF_BUILDERS[group]
        assert layer_of(target) in allowed_below(builder), (
            f"{path.relative_to(ROOT)}: {key}._target_={target} is in a layer above "
            f"{builder}, which builds it"
        )


@pytest.mark.parametrize("target", sorted({t for _, _, t in conf_targets()}))
def test_every_configured_target_exists(target: str) -> None:
    module, _, name = target.rpartition(".")
    assert hasattr(importlib.import_module(module), name), f"{target}: no such object"
