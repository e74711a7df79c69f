"""The train/val split: drawn from a seed (one 80:20 split, or fold ``i`` of ``K``
cross-validation folds), taken from the user's folds file, or read back from a recorded
``split.json``."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nuclei.data.kinds import kind_counts
from nuclei.data.split_files import fold_from_file, read_groups

if TYPE_CHECKING:
    from nuclei.data.config import SplitConfig


def split_ids(
    sample_ids: list[str],
    val_fraction: float,
    seed: int,
    kinds: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Split ids into (train, val) with a seeded permutation of the sorted ids; with ``kinds``
    (id -> image kind), each kind is split on its own so that it keeps its share on both sides.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(sample_ids) < 2:
        raise ValueError(f"need at least 2 samples to split, got {len(sample_ids)}")
    ordered = sorted(sample_ids)
    n_val = min(max(1, round(len(ordered) * val_fraction)), len(ordered) - 1)
    rng = np.random.default_rng(seed)
    groups = _by_kind(ordered, kinds) if kinds is not None else {"": ordered}
    quotas = val_quotas({kind: len(ids) for kind, ids in groups.items()}, val_fraction, n_val)
    val: list[str] = []
    for kind, ids in groups.items():
        permutation = rng.permutation(len(ids))
        val += [ids[i] for i in permutation[: quotas[kind]]]
    chosen = set(val)
    return [i for i in ordered if i not in chosen], sorted(val)


def check_folds(folds: object, fold: object, prefix: str = "") -> None:
    """Raise a ValueError unless ``folds`` is an integer >= 2 and ``fold`` one of its folds;
    messages name the keys with ``prefix`` (``data.split.`` for the config)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"{prefix}folds must be an integer >= 2, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(
            f"{prefix}fold must be in 0..{folds - 1} for {prefix}folds={folds}, got {fold!r}"
        )


def fold_ids(
    sample_ids: list[str],
    folds: int,
    fold: int,
    seed: int,
    kinds: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """(train, val) of fold ``fold`` of ``folds`` disjoint validation folds covering every id.

    Each kind (with ``kinds``; else all ids as one) is permuted from ``seed`` and dealt to the
    folds in turn, the deal continuing from kind to kind, so that every fold holds each
    kind's share to within one image and the folds' sizes differ by at most one.
    """
    check_folds(folds, fold)
    ordered = sorted(sample_ids)
    if len(ordered) < folds:
        raise ValueError(f"need at least {folds} samples for {folds} folds, got {len(ordered)}")
    rng = np.random.default_rng(seed)
    groups = _by_kind(ordered, kinds) if kinds is not None else {"": ordered}
    val: list[str] = []
    dealt = 0
    for ids in groups.values():
        for i in rng.permutation(len(ids)):
            if dealt % folds == fold:
                val.append(ids[i])
            dealt += 1
    chosen = set(val)
    return [i for i in ordered if i not in chosen], sorted(val)


def draw_split(
    ids: list[str], split: SplitConfig, kinds: Mapping[str, str] | None
) -> tuple[list[str], list[str], int | None]:
    """(train, val, number of folds or None) drawn from ``split.seed``: fold ``split.fold`` of
    ``split.folds``, or one split of ``split.val_fraction``; stratified by ``kinds`` when
    given."""
    if split.folds is not None:
        return (*fold_ids(ids, split.folds, split.fold, split.seed, kinds), split.folds)
    return (*split_ids(ids, split.val_fraction, split.seed, kinds), None)


def pinned_split(
    split: SplitConfig, known: Collection[str]
) -> tuple[list[str], list[str], int | None] | None:
    """The split that files fix, checked against the ``known`` ids: the recorded
    ``split.file``, or fold ``split.fold`` of ``split.folds_file`` (with the number of folds);
    None when the split is drawn."""
    if split.file is not None:
        return (*read_split(split.file, dict.fromkeys(known)), None)
    if split.folds_file is not None:
        return fold_from_file(split.folds_file, split.fold, known)
    return None


def user_groups(split: SplitConfig, known: Collection[str]) -> dict[str, str] | None:
    """The groups of ``split.groups_file`` for the ``known`` ids; None without one, or when a
    recorded ``split.file`` fixes the split."""
    if split.groups_file is None or split.file is not None:
        return None
    return read_groups(split.groups_file, known)


def split_kinds(
    split: SplitConfig,
    ids: list[str],
    groups: Mapping[str, str] | None,
    image_kinds: Mapping[str, str],
) -> dict[str, str]:
    """What each of ``ids`` is stratified by (and counted by in ``split.json``): its group
    (``groups``, from :func:`user_groups`), else its image kind (``image_kinds``) when
    ``split.stratify``; nothing for a recorded ``split.file``."""
    if split.file is not None:
        return {}
    if groups is not None:
        return {i: groups[i] for i in ids}
    return {i: image_kinds[i] for i in ids} if split.stratify else {}


def _by_kind(ordered: list[str], kinds: Mapping[str, str]) -> dict[str, list[str]]:
    """The ids of each kind (kinds sorted by name), each list in the order of ``ordered``."""
    missing = [i for i in ordered if i not in kinds]
    if missing:
        raise ValueError(f"{len(missing)} id(s) have no image kind: " + ", ".join(missing[:5]))
    groups: dict[str, list[str]] = {kind: [] for kind in sorted({kinds[i] for i in ordered})}
    for sample_id in ordered:
        groups[kinds[sample_id]].append(sample_id)
    return groups


def val_quotas(counts: Mapping[str, int], val_fraction: float, n_val: int) -> dict[str, int]:
    """Each group's validation count: ``count * val_fraction`` rounded down, then one more for
    the largest remainders (ties by name) until the counts add up to ``n_val``."""
    quotas = {name: int(np.floor(count * val_fraction)) for name, count in counts.items()}
    remainders = sorted(
        counts, key=lambda name: (-(counts[name] * val_fraction - quotas[name]), name)
    )
    for name in remainders[: n_val - sum(quotas.values())]:
        quotas[name] += 1
    return quotas


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
    root: str | Path,
    val_fraction: float,
    seed: int,
    train: Sequence[str],
    val: Sequence[str],
    kinds: Mapping[str, str] | None = None,
    folds: int | None = None,
    fold: int = 0,
    folds_file: str | None = None,
    groups_file: str | None = None,
) -> dict[str, Any]:
    """The split as saved in a run folder (``split.json``): settings and each side's ids; with
    ``kinds`` (id -> image kind or group), also how many images of each each side holds; with
    ``folds``, which cross-validation fold the validation side is; and the user's folds and
    groups files it came from, when given."""
    record: dict[str, Any] = {
        "root": str(root),
        "val_fraction": val_fraction,
        "split_seed": seed,
        "train": list(train),
        "val": list(val),
    }
    if folds is not None:
        record.update(folds=folds, fold=fold)
    if folds_file is not None:
        record["folds_file"] = str(folds_file)
    if groups_file is not None:
        record["groups_file"] = str(groups_file)
    if kinds:
        record["kinds"] = {"train": kind_counts(train, kinds), "val": kind_counts(val, kinds)}
    return record
