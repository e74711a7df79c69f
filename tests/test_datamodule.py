"""NucleiDataModule: split, decoding, augmentation, worker seeding and test splits."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import square_masks, write_kaggle_sample
from fake_data import labelled_set, write_flat, write_kaggle, write_solution

from nuclei.data.datamodule import NucleiDataModule, split_ids
from nuclei.data.sources.layouts import LayoutError


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


def flip_sequence(root: Path, workers: int, seed: int, size_mode: str = "resize") -> list[bool]:
    torch.manual_seed(seed)
    dm = NucleiDataModule(
        root=str(root),
        image_size=32,
        crop_size=32,  # the whole 32x32 image: only the flip is random
        size_mode=size_mode,
        batch_size=1,
        num_workers=workers,
    )
    dm.setup("fit")
    # repeat the one training sample so each worker sees several
    dm.train_dataset.images = np.repeat(dm.train_dataset.images, 16, axis=0)
    dm.train_dataset.labels = np.repeat(dm.train_dataset.labels, 16, axis=0)
    dm.train_dataset.sample_ids = dm.train_dataset.sample_ids * 16
    flips = []
    for batch in dm.train_dataloader():
        flips.append(bool(batch["image"][0, 0, :, :8].mean() < 0.5))
    return flips


@pytest.mark.parametrize("size_mode", ["resize", "crop"])
def test_workers_do_not_repeat_each_others_augmentations(tmp_path: Path, size_mode: str) -> None:
    root = asymmetric_sample_root(tmp_path)
    flips = flip_sequence(root, 2, seed=0, size_mode=size_mode)
    # Batches alternate between the two workers; unseeded workers would give equal halves.
    assert flips[0::2] != flips[1::2]
    assert flip_sequence(root, 2, seed=0, size_mode=size_mode) == flips  # and reproducible


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


def test_default_augmentation_is_horizontal_flip_only(tmp_path: Path) -> None:
    dm = NucleiDataModule(root=str(tmp_path))
    assert [type(t).__name__ for t in dm.train_transform().transforms] == ["HorizontalFlip"]
    everything = NucleiDataModule(
        root=str(tmp_path),
        size_mode="crop",
        vflip=True,
        rot90=True,
        brightness_contrast=True,
        invert=True,
    )
    assert [type(t).__name__ for t in everything.train_transform().transforms] == [
        "PadIfNeeded",
        "RandomCrop",
        "HorizontalFlip",
        "VerticalFlip",
        "RandomRotate90",
        "RandomBrightnessContrast",
        "InvertImg",
    ]


def corner_sample_root(tmp_path: Path) -> Path:
    """Samples with a bright top-left corner whose mask covers exactly that corner."""
    image = np.full((32, 32), 40, np.uint8)
    image[:8, :8] = 220
    for name in ("c0", "c1"):
        write_kaggle_sample(tmp_path, name, image, square_masks((32, 32), [(0, 0, 8)]))
    return tmp_path


def bright_corner(sample: dict) -> tuple[int, int]:
    """Which corner (row, col half) of the image is bright; the mask must sit there too."""
    image, mask = sample["image"][0], sample["mask"][0]
    corners = {
        (r, c): image[r * 24 : r * 24 + 8, c * 24 : c * 24 + 8].mean().item()
        for r in (0, 1)
        for c in (0, 1)
    }
    found = max(corners, key=lambda k: abs(corners[k] - image.median().item()))
    r, c = found
    assert mask[r * 24 : r * 24 + 8, c * 24 : c * 24 + 8].all(), "mask left its image"
    assert mask.sum() == 64
    return found


@pytest.mark.parametrize(
    ("switch", "corners"),
    [("vflip", {(0, 0), (1, 0)}), ("rot90", {(0, 0), (0, 1), (1, 0), (1, 1)})],
)
def test_geometric_switches_move_image_and_mask_together(
    tmp_path: Path, switch: str, corners: set
) -> None:
    dm = NucleiDataModule(
        root=str(corner_sample_root(tmp_path)), image_size=32, hflip=False, **{switch: True}
    )
    dm.setup("fit")
    assert {bright_corner(dm.train_dataset[0]) for _ in range(40)} == corners


def test_intensity_switches_change_the_image_only(tmp_path: Path) -> None:
    root = corner_sample_root(tmp_path)
    plain = NucleiDataModule(root=str(root), image_size=32, hflip=False)
    plain.setup("fit")
    original = plain.train_dataset[0]
    for switch in ("invert", "brightness_contrast"):
        dm = NucleiDataModule(root=str(root), image_size=32, hflip=False, **{switch: True})
        dm.setup("fit")
        samples = [dm.train_dataset[0] for _ in range(20)]
        assert all(torch.equal(s["mask"], original["mask"]) for s in samples)
        changed = [not torch.equal(s["image"], original["image"]) for s in samples]
        assert any(changed) and not all(changed), switch  # p=0.5
    dm = NucleiDataModule(root=str(root), image_size=32, hflip=False, invert=True)
    dm.setup("fit")
    inverted = next(
        s for s in (dm.train_dataset[0] for _ in range(20)) if s["image"][0, 0, 0] < 0.5
    )
    torch.testing.assert_close(inverted["image"], 1.0 - original["image"])


def test_flat_layout_with_test_folder_gives_fit_and_test_splits(tmp_path: Path) -> None:
    write_flat(tmp_path / "train", labelled_set("a", 5), label_masks=True)
    write_flat(tmp_path / "test", labelled_set("b", 3))
    dm = NucleiDataModule(root=str(tmp_path), size_mode="crop", crop_size=16, decode_workers=1)
    assert dm.has_test_split
    dm.setup("fit")  # checks the test split too, before any training step
    assert len(dm.train_ids) + len(dm.val_ids) == 5
    assert dm.test_ids == ["b0", "b1", "b2"]
    test_dataset = dm.test_dataset
    dm.setup("test")
    assert dm.test_dataset is test_dataset  # decoded once
    expected = labelled_set("b", 3)
    for k, sample_id in enumerate(dm.test_ids):  # binary masks: one instance per blob
        labels = dm.test_dataset[k]["labels"].numpy()
        assert labels.max() == 3
        np.testing.assert_array_equal(labels > 0, expected[sample_id] > 0)
    batches = list(dm.test_dataloader())
    assert [b["id"] for b in batches] == [["b0"], ["b1"], ["b2"]]


def test_kaggle_root_with_stage1_test_and_solution_csv(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "train" / "stage1_train", labelled_set("a", 4))
    test_labels = labelled_set("t", 2, shape=(20, 28))
    write_kaggle(tmp_path / "elsewhere" / "stage1_test", test_labels, with_masks=False)
    csv = write_solution(tmp_path / "elsewhere" / "stage1_solution.csv", test_labels)
    dm = NucleiDataModule(
        root=str(tmp_path / "train"),
        test_root=str(tmp_path / "elsewhere" / "stage1_test"),
        test_labels=str(csv),
        size_mode="crop",
        crop_size=16,
    )
    dm.setup("test")
    assert dm.train_dataset is None and dm.test_ids == ["t0", "t1"]
    for k, sample_id in enumerate(dm.test_ids):  # the CSV's instances, exactly, at native size
        np.testing.assert_array_equal(dm.test_dataset[k]["labels"].numpy(), test_labels[sample_id])
    report = dm.data_report()["test"]
    assert report["labels"] == str(csv) and report["used"] == 2


def test_no_test_split_is_a_clear_error(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "stage1_train", labelled_set("a", 3))
    dm = NucleiDataModule(root=str(tmp_path))
    assert not dm.has_test_split
    dm.setup(None)  # fit only: nothing to test against
    assert dm.test_dataset is None and dm.train_dataset is not None
    with pytest.raises(LayoutError, match=r"no test split: set data.test_root"):
        dm.setup("test")
    labels_only = NucleiDataModule(root=str(tmp_path), test_labels=str(tmp_path / "s.csv"))
    with pytest.raises(LayoutError, match=r"data.test_labels=.* is set but data.test_root is not"):
        labels_only.setup("test")
