"""Keep the run's value: how eval, predict and tune inherit a training run's settings.

Their configs carry sections (``data``, ``postprocess``) whose keys are all ``???``
(:func:`missing_like` makes them from the training schema, so a new option needs no copy).
A key given on the command line replaces the run's value; a key left at ``???`` keeps it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


def missing_like(schema: type) -> dict[str, Any]:
    """A nested dict with the fields of a (nested) dataclass, every leaf ``???``.

    Keys starting with ``_`` (``_target_``, ``_convert_``) are left out: they are not
    settings a user gives.
    """
    section: dict[str, Any] = {}
    for field in dataclasses.fields(schema):
        if field.name.startswith("_"):
            continue
        kind = field.type if isinstance(field.type, type) else None
        default = field.default_factory() if callable(field.default_factory) else None
        if kind is None and dataclasses.is_dataclass(default):
            kind = type(default)
        if kind is not None and dataclasses.is_dataclass(kind):
            section[field.name] = missing_like(kind)
        else:
            section[field.name] = MISSING
    return section


def given_values(section: DictConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of ``section`` that were given a value (``???`` keys left out), nested."""
    if section is None:
        return {}
    if not isinstance(section, DictConfig):
        section = OmegaConf.create(dict(section))
    given: dict[str, Any] = {}
    for key in section:
        if OmegaConf.is_missing(section, key):
            continue
        value = section[key]
        if isinstance(value, DictConfig):
            nested = given_values(value)
            if nested:
                given[str(key)] = nested
        else:
            given[str(key)] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return given


def inherit(base: DictConfig | Mapping[str, Any], section: DictConfig | None) -> DictConfig:
    """The run's ``base`` section with every value given in ``section`` put over it."""
    merged = OmegaConf.create(
        OmegaConf.to_container(base, resolve=True) if OmegaConf.is_config(base) else dict(base)
    )
    return OmegaConf.merge(merged, given_values(section))  # type: ignore[return-value]


def register_inherit_configs(sections: Mapping[str, type]) -> None:
    """Store ``<group>/inherit`` (every key ``???``) for each config group and its schema."""
    store = ConfigStore.instance()
    for group, schema in sections.items():
        store.store(group=group, name="inherit", node=missing_like(schema))
