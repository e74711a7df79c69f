"""What a stored run configuration may build: the ``_target_``s of the package's own configs.

A checkpoint (and a run folder's ``.hydra/config.yaml``) carries the configuration its run
was trained with, and eval, predict, tune, resume and the API build the run again from it
with Hydra's ``instantiate``, which imports and calls whatever a ``_target_`` names. A file
from elsewhere could name any function (``pandas.read_pickle``, ``numpy.load``,
``torch.load`` of inline bytes), nested in any value. So a stored configuration is read as
plain values only: every ``_target_`` in it must be one that this package's own configs
(``conf/`` and the data schema) name, or a ``torch.optim`` optimizer or learning-rate
scheduler class; anything else needs the user's explicit ``trust_checkpoint=true``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import torch
from omegaconf import OmegaConf

from nuclei.data.config import DATA_MODULE

#: The key by which Hydra names what to build.
TARGET_KEY = "_target_"
#: What a learning-rate scheduler class derives from (ReduceLROnPlateau did not always).
SCHEDULER_BASES = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def entries(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any, str]]:
    """Every ``(dotted key of its container, key, value, its own dotted key)`` of a nested
    mapping/list of plain values, depth first (list items keyed by their index)."""
    if isinstance(node, Mapping):
        items = [(key, value, f"{path}.{key}" if path else str(key)) for key, value in node.items()]
    elif isinstance(node, list | tuple):
        items = [(index, value, f"{path}[{index}]") for index, value in enumerate(node)]
    else:
        return
    for key, value, where in items:
        yield path, key, value, where
        yield from entries(value, where)


def targets_in(node: Any) -> Iterator[tuple[str, Any]]:
    """Every ``(dotted key, target)`` in a nested mapping/list of plain values."""
    return ((path, value) for path, key, value, _ in entries(node) if key == TARGET_KEY)


@functools.cache
def packaged_targets() -> frozenset[str]:
    """The ``_target_`` of every packaged config (``nuclei.conf``), and the data module's."""
    found = {DATA_MODULE}
    pending = [files("nuclei.conf")]
    while pending:
        entry = pending.pop()
        if entry.is_dir():
            pending += list(entry.iterdir())
        elif entry.name.endswith(".yaml"):
            config = OmegaConf.to_container(OmegaConf.create(entry.read_text()), resolve=False)
            found |= {target for _, target in targets_in(config) if isinstance(target, str)}
    return frozenset(found)


def _is_torch_class(target: str, module: Any, *bases: type) -> bool:
    """Whether ``target`` is ``<module>.<Name>`` for a class of ``module`` derived from
    one of ``bases`` (looked up, not imported)."""
    prefix, _, name = target.rpartition(".")
    found = getattr(module, name, None) if prefix == module.__name__ else None
    return inspect.isclass(found) and issubclass(found, bases)


def is_allowed(target: Any) -> bool:
    """Whether a stored configuration may build ``target`` without being trusted."""
    if not isinstance(target, str):
        return False
    return (
        target in packaged_targets()
        or _is_torch_class(target, torch.optim, torch.optim.Optimizer)
        or _is_torch_class(target, torch.optim.lr_scheduler, *SCHEDULER_BASES)
    )


def foreign_targets(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``(dotted key, target)`` pairs of ``config`` (plain values) it may not build."""
    return [(where, target) for where, target in targets_in(config) if not is_allowed(target)]


def interpolations_in(node: Any) -> Iterator[str]:
    """The dotted key of every string in ``node`` that OmegaConf would read as an
    interpolation (``${...}``)."""
    return (
        where for _, _, value, where in entries(node) if isinstance(value, str) and "${" in value
    )
