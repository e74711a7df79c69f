"""Data modules from flat keyword arguments (``root=``, ``image_size=``...), for short test
set-ups."""

from __future__ import annotations

from typing import Any

from nuclei.data.datamodule import NucleiDataModule

#: A flat keyword -> its grouped data key (``"image_size": "size.image_size"``).
FLAT_KEYS: dict[str, str] = {
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


def flat_datamodule(**flat: Any) -> NucleiDataModule:
    """``NucleiDataModule`` from flat settings (``root=``, ``image_size=``, ``hflip=``...),
    each put in its group by :data:`FLAT_KEYS`."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        group, name = FLAT_KEYS[key].split(".")
        groups.setdefault(group, {})[name] = value
    return NucleiDataModule(**groups)
