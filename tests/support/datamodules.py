"""Data modules from the flat keyword arguments of nuclei 0.1, for short test set-ups."""

from __future__ import annotations

from typing import Any

from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.legacy_keys import upgrade_data_section


def flat_datamodule(**flat: Any) -> NucleiDataModule:
    """``NucleiDataModule`` from flat settings (``root=``, ``image_size=``, ``hflip=``...),
    grouped by the same table that upgrades old checkpoints."""
    return NucleiDataModule(**upgrade_data_section(flat))
