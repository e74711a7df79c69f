"""The train/val split: drawn from a seed, or read back from a recorded ``split.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def split_ids(sample_ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ids into (train, val) with a seeded permutation of the sorted ids."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(sample_ids) < 2:
        raise ValueError(f"need at least 2 samples to split, got {len(sample_ids)}")
    ordered = sorted(sample_ids)
    permutation = np.random.default_rng(seed).permutation(len(ordered))
    n_val = min(max(1, round(len(ordered) * val_fraction)), len(ordered) - 1)
    val = sorted(ordered[i] for i in permutation[:n_val])
    train = sorted(ordered[i] for i in permutation[n_val:])
    return train, val


def read_split(path: str | Path, available: Mapping[str, object]) -> tuple[list[str], list[str]]:
    """Read a recorded split (``split.json``); every id in it must be among ``available``."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        train, val = list(record["train"]), list(record["val"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a split file with 'train' and 'val' id lists ({exc})"
        ) from exc
    missing = sorted(set(train + val) - set(available))
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} recorded id(s) are not in the data: "
            + ", ".join(missing[:5])
            + (" ..." if len(missing) > 5 else "")
        )
    return train, val


def split_record(
    root: str | Path, val_fraction: float, seed: int, train: Sequence[str], val: Sequence[str]
) -> dict[str, Any]:
    """The split as saved in a run folder (``split.json``): settings and each side's ids."""
    return {
        "root": str(root),
        "val_fraction": val_fraction,
        "split_seed": seed,
        "train": list(train),
        "val": list(val),
    }
