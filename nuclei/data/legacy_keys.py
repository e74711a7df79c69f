"""The data section before it was grouped: old flat keys and where they live now.

``data.image_size``, ``data.split_seed``... (nuclei 0.1) map to ``data.size.image_size``,
``data.split.seed``...: :data:`LEGACY_DATA_KEYS` serves old checkpoints
(:func:`upgrade_data_section`) and old command lines (:func:`translate_legacy_override`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nuclei.data.config import DATA_MODULE, GROUPS

#: The flat keys of the data section before it was grouped -> their grouped keys.
LEGACY_DATA_KEYS: dict[str, str] = {
    "root": "source.root",
    "layout": "source.layout",
    "test_root": "source.test_root",
    "test_labels": "source.test_labels",
    "on_bad_file": "source.on_bad_file",
    "cache_dir": "source.cache_dir",
    "decode_workers": "source.decode_workers",
    "synthetic_images": "source.synthetic_images",
    "synthetic_seed": "source.synthetic_seed",
    "size_mode": "size.mode",
    "image_size": "size.image_size",
    "crop_size": "size.crop_size",
    "pad_multiple": "size.pad_multiple",
    "hflip": "augmentation.hflip",
    "vflip": "augmentation.vflip",
    "rot90": "augmentation.rot90",
    "brightness_contrast": "augmentation.brightness_contrast",
    "invert": "augmentation.invert",
    "augmentation_seed": "augmentation.seed",
    "val_fraction": "split.val_fraction",
    "split_seed": "split.seed",
    "split_file": "split.file",
    "target": "target.kind",
    "border_width": "target.border_width",
    "batch_size": "loader.batch_size",
    "eval_batch_size": "loader.eval_batch_size",
    "num_workers": "loader.num_workers",
    "pin_memory": "loader.pin_memory",
}


def upgrade_data_section(section: Mapping[str, Any]) -> dict[str, Any]:
    """A data section in the grouped form: old flat keys moved into their groups.

    Grouped input comes back unchanged (as a plain dict); interpolations such as
    ``${seed}`` are kept, not resolved. ``_target_`` becomes the current data module.
    """
    if isinstance(section, DictConfig):
        section = OmegaConf.to_container(section, resolve=False)
    grouped: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for key, value in section.items():
        if key == "_target_":
            grouped["_target_"] = DATA_MODULE
        elif key in GROUPS and isinstance(value, Mapping):
            grouped[key] = dict(value)
        elif key in LEGACY_DATA_KEYS:
            flat[key] = value
        else:
            raise ValueError(
                f"data.{key} is not a data key, old or new (groups: {', '.join(GROUPS)})"
            )
    for key, value in flat.items():
        group, name = LEGACY_DATA_KEYS[key].split(".")
        keys = grouped.setdefault(group, {})
        if name in keys and keys[name] != value:
            raise ValueError(f"data.{key}={value!r} contradicts data.{group}.{name}={keys[name]!r}")
        keys[name] = value
    return grouped


# [prefix]data.<key>[=value]: prefix is Hydra's +, ++ or ~.
_OVERRIDE = re.compile(r"^(?P<prefix>\+\+|\+|~)?data\.(?P<key>[A-Za-z_]\w*)(?P<rest>(=.*)?)$", re.S)


def translate_legacy_override(override: str) -> tuple[str, str | None]:
    """A command-line override with an old flat data key rewritten to its grouped key.

    ``data.root=/x`` -> ``("data.source.root=/x", note)``; the prefix (``+``, ``++``,
    ``~``) and the value, sweeps included, are kept. The note is one line saying what the
    override became; None when the override needed no change.
    """
    match = _OVERRIDE.match(override)
    if match is None or match["key"] not in LEGACY_DATA_KEYS:
        return override, None
    prefix = match["prefix"] or ""
    old, new = f"data.{match['key']}", f"data.{LEGACY_DATA_KEYS[match['key']]}"
    translated = f"{prefix}{new}{match['rest']}"
    return translated, f"{old} is now {new}: read {override!r} as {translated!r}"
