"""The train/val split: seeded, complete and disjoint; recorded and read back."""

import json
from pathlib import Path

import pytest

from nuclei.data.config import SizeConfig, SourceConfig, SplitConfig
from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.splits import read_split, split_ids, split_record


def test_split_is_80_20_disjoint_complete_and_seeded() -> None:
    ids = [f"s{i:03d}" for i in range(670)]
    train, val = split_ids(ids, 0.2, seed=7)
    assert (len(train), len(val)) == (536, 134)
    assert not set(train) & set(val) and set(train) | set(val) == set(ids)
    assert split_ids(list(reversed(ids)), 0.2, seed=7) == (train, val)  # order-independent
    assert split_ids(ids, 0.2, seed=8)[1] != val


def test_split_record_is_the_split_json_format(tmp_path: Path) -> None:
    record = split_record(tmp_path, 0.25, 3, ["a", "b", "c"], ["d"])
    assert record == {
        "root": str(tmp_path),
        "val_fraction": 0.25,
        "split_seed": 3,
        "train": ["a", "b", "c"],
        "val": ["d"],
    }
    path = tmp_path / "split.json"
    path.write_text(json.dumps(record))
    assert read_split(path, dict.fromkeys("abcd")) == (["a", "b", "c"], ["d"])
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a split file with 'train' and 'val' id lists"):
        read_split(path, dict.fromkeys("abcd"))


def datamodule(root: Path, **split: object) -> NucleiDataModule:
    return NucleiDataModule(
        source=SourceConfig(root=str(root)),
        size=SizeConfig(image_size=32),
        split=SplitConfig(**split),
    )


def test_recorded_split_is_reused_and_checked(synthetic_root: Path, tmp_path: Path) -> None:
    first = datamodule(synthetic_root, seed=1)
    first.setup("fit")
    path = tmp_path / "split.json"
    path.write_text(json.dumps(first.split_record(), indent=2))
    again = datamodule(synthetic_root, seed=99, file=str(path))
    again.setup("fit")
    assert (again.train_ids, again.val_ids) == (first.train_ids, first.val_ids)
    record = json.loads(path.read_text())
    record["val"].append("not-a-sample")
    path.write_text(json.dumps(record))
    stale = datamodule(synthetic_root, file=str(path))
    with pytest.raises(ValueError, match=r"split.json: 1 recorded id.*not-a-sample"):
        stale.setup("fit")
