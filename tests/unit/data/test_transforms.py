"""Training augmentation: which transforms, image and mask together, worker seeding."""

from pathlib import Path

import numpy as np
import pytest
import torch
from support.samples import square_masks, write_kaggle_sample

from nuclei.data.config import AugmentationConfig, LoaderConfig, SizeConfig, SourceConfig
from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.transforms import train_transform


def datamodule(
    root: Path, size: dict | None = None, loader: dict | None = None, **augmentation: object
) -> NucleiDataModule:
    """A data module on ``root`` at 32x32 (unless ``size`` says otherwise)."""
    return NucleiDataModule(
        source=SourceConfig(root=str(root)),
        size=SizeConfig(**{"image_size": 32, **(size or {})}),
        augmentation=AugmentationConfig(**augmentation),
        loader=LoaderConfig(**(loader or {})),
    )


def asymmetric_sample_root(tmp_path: Path) -> Path:
    """One grayscale sample whose left and right halves differ, so a flip is visible."""
    image = np.zeros((32, 32), np.uint8)
    image[:, :8] = 255
    write_kaggle_sample(tmp_path, "g0", image, square_masks((32, 32), [(4, 2, 6)]))
    write_kaggle_sample(tmp_path, "g1", image, square_masks((32, 32), [(4, 2, 6)]))
    return tmp_path


def test_hflip_moves_image_and_mask_together_and_only_in_training(tmp_path: Path) -> None:
    dm = datamodule(asymmetric_sample_root(tmp_path))
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
    dm = datamodule(
        root,
        # crop_size 32: the whole 32x32 image, so only the flip is random
        size={"mode": size_mode, "crop_size": 32},
        loader={"batch_size": 1, "num_workers": workers},
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


def names(transform) -> list[str]:
    return [type(t).__name__ for t in transform.transforms]


def test_default_augmentation_is_horizontal_flip_only() -> None:
    assert names(train_transform(SizeConfig(), AugmentationConfig())) == ["HorizontalFlip"]
    everything = AugmentationConfig(vflip=True, rot90=True, brightness_contrast=True, invert=True)
    assert names(train_transform(SizeConfig(mode="crop"), everything)) == [
        "PadIfNeeded",
        "RandomCrop",
        "HorizontalFlip",
        "VerticalFlip",
        "RandomRotate90",
        "RandomBrightnessContrast",
        "InvertImg",
    ]


def test_pipeline_seed_is_augmentation_seed_plus_rank() -> None:
    """Each DDP process draws its own augmentations, reproducibly."""
    image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)

    def draws(seed: int, rank: int) -> list[bytes]:
        transform = train_transform(SizeConfig(), AugmentationConfig(rot90=True, seed=seed), rank)
        return [transform(image=image)["image"].tobytes() for _ in range(12)]

    assert draws(5, 2) == draws(7, 0)  # seed 5 + rank 2 == seed 7 + rank 0
    assert draws(5, 0) != draws(5, 1)


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
    dm = datamodule(corner_sample_root(tmp_path), hflip=False, **{switch: True})
    dm.setup("fit")
    assert {bright_corner(dm.train_dataset[0]) for _ in range(40)} == corners


def test_intensity_switches_change_the_image_only(tmp_path: Path) -> None:
    root = corner_sample_root(tmp_path)
    plain = datamodule(root, hflip=False)
    plain.setup("fit")
    original = plain.train_dataset[0]
    for switch in ("invert", "brightness_contrast"):
        dm = datamodule(root, hflip=False, **{switch: True})
        dm.setup("fit")
        samples = [dm.train_dataset[0] for _ in range(20)]
        assert all(torch.equal(s["mask"], original["mask"]) for s in samples)
        changed = [not torch.equal(s["image"], original["image"]) for s in samples]
        assert any(changed) and not all(changed), switch  # p=0.5
    dm = datamodule(root, hflip=False, invert=True)
    dm.setup("fit")
    inverted = next(
        s for s in (dm.train_dataset[0] for _ in range(20)) if s["image"][0, 0, 0] < 0.5
    )
    torch.testing.assert_close(inverted["image"], 1.0 - original["image"])
