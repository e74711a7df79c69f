"""NucleiDataModule: split, decoding, augmentation and worker seeding."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import square_masks, write_kaggle_sample

from nuclei.data.datamodule import NucleiDataModule, split_ids


def test_split_is_80_20_disjoint_complete_and_seeded() -> None:
    ids = [f"s{i:03d}" for i in range(670)]
    train, val = split_ids(ids, 0.2, seed=7)
    assert (len(train), len(val)) == (536, 134)
    assert not set(train) & set(val) and set(train) | set(val) == set(ids)
    assert split_ids(list(reversed(ids)), 0.2, seed=7) == (train, val)  # order-independent
    assert split_ids(ids, 0.2, seed=8)[1] != val


def test_setup_writes_recorded_split_and_binary_masks(synthetic_root: Path, tmp_path: Path) -> None:
    dm = NucleiDataModule(root=str(synthetic_root), image_size=32, batch_size=4)
    dm.setup("fit")
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (10, 2)
    record = json.loads(dm.write_split(tmp_path / "split.json").read_text())
    assert sorted(record["train"] + record["val"]) == sorted(
        p.name for p in synthetic_root.iterdir()
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert batch["mask"].shape == (4, 1, 32, 32)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(batch["mask"][:, 0] > 0, batch["labels"] > 0)


def asymmetric_sample_root(tmp_path: Path) -> Path:
    """One grayscale sample whose left and right halves differ, so a flip is visible."""
    image = np.zeros((32, 32), np.uint8)
    image[:, :8] = 255
    write_kaggle_sample(tmp_path, "g0", image, square_masks((32, 32), [(4, 2, 6)]))
    write_kaggle_sample(tmp_path, "g1", image, square_masks((32, 32), [(4, 2, 6)]))
    return tmp_path


def test_grayscale_inputs_become_three_channels(tmp_path: Path) -> None:
    dm = NucleiDataModule(root=str(asymmetric_sample_root(tmp_path)), image_size=32, hflip=False)
    dm.setup("fit")
    image = dm.train_dataset[0]["image"]
    assert image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_hflip_moves_image_and_mask_together_and_only_in_training(tmp_path: Path) -> None:
    dm = NucleiDataModule(root=str(asymmetric_sample_root(tmp_path)), image_size=32)
    dm.setup("fit")
    seen = set()
    for _ in range(40):
        sample = dm.train_dataset[0]
        image_left = bool(sample["image"][0, :, :8].mean() > 0.5)
        mask_left = bool(sample["mask"][0, :, :16].sum() > 0)
        assert image_left == mask_left  # flipped together or not at all
        seen.add(image_left)
    assert seen == {True, False}  # p=0.5: both outcomes occur
    for _ in range(10):
        assert dm.val_dataset[0]["image"][0, :, :8].mean() > 0.5  # never flipped


def flip_sequence(root: Path, workers: int, seed: int) -> list[bool]:
    torch.manual_seed(seed)
    dm = NucleiDataModule(root=str(root), image_size=32, batch_size=1, num_workers=workers)
    dm.setup("fit")
    # repeat the one training sample so each worker sees several
    dm.train_dataset.images = np.repeat(dm.train_dataset.images, 16, axis=0)
    dm.train_dataset.labels = np.repeat(dm.train_dataset.labels, 16, axis=0)
    dm.train_dataset.sample_ids = dm.train_dataset.sample_ids * 16
    flips = []
    for batch in dm.train_dataloader():
        flips.append(bool(batch["image"][0, 0, :, :8].mean() < 0.5))
    return flips


@pytest.mark.parametrize("workers", [2])
def test_workers_do_not_repeat_each_others_augmentations(tmp_path: Path, workers: int) -> None:
    root = asymmetric_sample_root(tmp_path)
    flips = flip_sequence(root, workers, seed=0)
    # Batches alternate between the two workers; unseeded workers would give equal halves.
    assert flips[0::2] != flips[1::2]
    assert flip_sequence(root, workers, seed=0) == flips  # and it is reproducible


def test_recorded_split_is_reused_and_checked(synthetic_root: Path, tmp_path: Path) -> None:
    first = NucleiDataModule(root=str(synthetic_root), image_size=32, split_seed=1)
    first.setup("fit")
    path = first.write_split(tmp_path / "split.json")
    again = NucleiDataModule(
        root=str(synthetic_root), image_size=32, split_seed=99, split_file=str(path)
    )
    again.setup("fit")
    assert (again.train_ids, again.val_ids) == (first.train_ids, first.val_ids)
    record = json.loads(path.read_text())
    record["val"].append("not-a-sample")
    path.write_text(json.dumps(record))
    stale = NucleiDataModule(root=str(synthetic_root), image_size=32, split_file=str(path))
    with pytest.raises(ValueError, match=r"split.json: 1 recorded id.*not-a-sample"):
        stale.setup("fit")
