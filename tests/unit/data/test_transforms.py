"""Training augmentation: which transforms, image and labels together, worker seeding."""

import dataclasses
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
    assert names(train_transform(SizeConfig(mode="crop"), AugmentationConfig())) == [
        "PadIfNeeded",
        "RandomCrop",
        "HorizontalFlip",
    ]
    assert names(train_transform(SizeConfig(mode="crop"), EVERYTHING)) == [
        "Affine",  # scale jitter, before the crop: the crop keeps the network's size
        "PadIfNeeded",
        "RandomCrop",
        "HorizontalFlip",
        "VerticalFlip",
        "RandomRotate90",
        "RandomBrightnessContrast",
        "RandomGamma",
        "GaussianBlur",
        "GaussNoise",
        "InvertImg",
    ]


def test_strengths_become_the_documented_ranges() -> None:
    config = AugmentationConfig(scale=0.25, gamma=0.5, blur=1.5, noise=0.1)
    crop, resize = (train_transform(SizeConfig(mode=m), config) for m in ("crop", "resize"))
    zoom = crop.transforms[0]
    assert zoom.scale == {"x": (0.8, 1.25), "y": (0.8, 1.25)} and zoom.balanced_scale
    assert zoom.fit_output and not resize.transforms[0].fit_output  # resize mode keeps its size
    by_name = {type(t).__name__: t for t in crop.transforms}
    assert by_name["RandomGamma"].gamma_limit == pytest.approx((100 / 1.5, 150))
    assert by_name["GaussianBlur"].sigma_limit == (0.0, 1.5)
    assert by_name["GaussNoise"].std_range == (0.0, 0.1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"scale": -0.1}, "data.augmentation.scale must be >= 0.0, got -0.1"),
        ({"gamma": "big"}, "data.augmentation.gamma must be a number, got 'big'"),
        ({"blur": True}, "data.augmentation.blur must be a number, got True"),
        ({"noise": 1.5}, "data.augmentation.noise must be in [0.0, 1.0], got 1.5"),
    ],
)
def test_bad_strengths_are_named(values: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        AugmentationConfig(**values)
    assert message in str(raised.value)


#: Every augmentation on, at strengths well beyond a recipe's.
EVERYTHING = AugmentationConfig(
    vflip=True,
    rot90=True,
    brightness_contrast=True,
    invert=True,
    scale=0.5,
    gamma=1.0,
    blur=2.0,
    noise=0.3,
)


def coded_sample(shape: tuple[int, int] = (48, 56)) -> tuple[np.ndarray, np.ndarray, dict]:
    """Rectangular nuclei (int32 ids, one above 2**24) on a float image whose intensity is a
    code of the id, different in each channel; returns image, labels and id -> code."""
    labels = np.zeros(shape, np.int32)
    ids = [3, 9, 70000, 2**24 + 1, 41]
    for k, label in enumerate(ids):
        row, col = 4 + (k % 3) * 14, 4 + (k // 3) * 24
        labels[row : row + 10, col : col + 18] = label
    code = {0: np.zeros(3)} | {
        i: (k + 1) / (len(ids) + 1) * np.array([1.0, 0.5, 0.25]) for k, i in enumerate(ids)
    }
    image = np.stack([code[i] for i in labels.ravel()]).reshape(*shape, 3).astype(np.float32)
    return image, labels, code


def interior(labels: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels whose (2 radius + 1)^2 neighbourhood lies in the image and holds one label only
    (the only pixels where linear interpolation of the image cannot mix two labels)."""
    padded = np.pad(labels, radius, constant_values=-1)
    same = np.ones(labels.shape, bool)
    h, w = labels.shape
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            same &= padded[dy : dy + h, dx : dx + w] == labels
    return same


GEOMETRIC = {
    "hflip": ({"mode": "resize"}, {}),
    "vflip": ({"mode": "resize"}, {"hflip": False, "vflip": True}),
    "rot90": ({"mode": "resize"}, {"hflip": False, "rot90": True}),
    "scale, resize mode": ({"mode": "resize"}, {"scale": 0.6}),
    "scale, crop mode": ({"mode": "crop", "crop_size": 32}, {"scale": 0.6}),
    "all, crop mode": (
        {"mode": "crop", "crop_size": 32},
        {"vflip": True, "rot90": True, "scale": 1.0},
    ),
}


@pytest.mark.parametrize("case", GEOMETRIC)
def test_geometric_augmentations_move_labels_with_the_image(case: str) -> None:
    size, switches = GEOMETRIC[case]
    image, labels, code = coded_sample()
    transform = train_transform(SizeConfig(**size), AugmentationConfig(**switches))
    areas, checked = set(), 0
    for _ in range(24):
        out = transform(image=image, mask=labels)
        moved, moved_labels = out["image"], out["mask"]
        assert moved.dtype == np.float32 and moved_labels.dtype == np.int32
        assert moved.min() >= 0.0 and moved.max() <= 1.0
        assert set(np.unique(moved_labels)) <= set(code)  # original ids only
        if size["mode"] == "crop":
            assert moved_labels.shape == (32, 32)
        inside = interior(moved_labels)
        checked += int((inside & (moved_labels > 0)).sum())
        expected = np.stack([code[i] for i in moved_labels[inside]])
        np.testing.assert_allclose(moved[inside], expected, atol=1e-5)
        areas.add(int((moved_labels == 9).sum()))
    assert checked > 24 * 50  # nucleus pixels checked, not only background
    if "scale" in case or "all" in case:
        assert len(areas) > 3, "the zoom never changed a nucleus' size"


@pytest.mark.parametrize("switch", ["brightness_contrast", "gamma", "blur", "noise", "invert"])
def test_intensity_augmentations_leave_labels_bit_for_bit(switch: str) -> None:
    strength = {
        "brightness_contrast": True,
        "invert": True,
        "gamma": 0.5,
        "blur": 1.5,
        "noise": 0.1,
    }
    image, labels, _ = coded_sample()
    transform = train_transform(
        SizeConfig(), AugmentationConfig(hflip=False, **{switch: strength[switch]})
    )
    changed = []
    for _ in range(24):
        out = transform(image=image, mask=labels)
        assert out["mask"].dtype == np.int32 and np.array_equal(out["mask"], labels)
        assert out["image"].dtype == np.float32 and out["image"].shape == image.shape
        assert out["image"].min() >= 0.0 and out["image"].max() <= 1.0
        changed.append(not np.allclose(out["image"], image, atol=1e-6))
    assert any(changed) and not all(changed)  # p=0.5


def test_noise_is_grey_and_bounded_and_invert_is_one_minus_x() -> None:
    grey = np.full((64, 64, 3), 0.5, np.float32)
    noisy = train_transform(SizeConfig(), AugmentationConfig(hflip=False, noise=0.05))
    stds = []
    for _ in range(20):
        out = noisy(image=grey)["image"]
        assert np.array_equal(out[..., 0], out[..., 2])  # one noise field for all channels
        stds.append(float(out.std()))
    assert 0.0 < max(stds) < 0.055 and min(stds) == 0.0
    image, labels, _ = coded_sample()
    inverting = train_transform(SizeConfig(), AugmentationConfig(hflip=False, invert=True))
    outs = [inverting(image=image, mask=labels)["image"] for _ in range(20)]
    flipped = next(o for o in outs if not np.array_equal(o, image))
    np.testing.assert_allclose(flipped, 1.0 - image, atol=1e-7)


def test_full_pipeline_is_reproducible_from_its_seed_and_stays_in_range() -> None:
    image, labels, code = coded_sample()

    def draws(seed: int) -> list[tuple[bytes, bytes]]:
        config = dataclasses.replace(EVERYTHING, seed=seed)
        transform = train_transform(SizeConfig(mode="crop", crop_size=32), config)
        outs = [transform(image=image, mask=labels) for _ in range(12)]
        for out in outs:
            assert out["image"].dtype == np.float32 and out["mask"].dtype == np.int32
            assert out["image"].min() >= 0.0 and out["image"].max() <= 1.0
            assert set(np.unique(out["mask"])) <= set(code)
        return [(o["image"].tobytes(), o["mask"].tobytes()) for o in outs]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_pipeline_seed_is_augmentation_seed_plus_rank() -> None:
    """Each DDP process draws its own augmentations, reproducibly."""
    image = np.arange(16 * 16 * 3, dtype=np.float32).reshape(16, 16, 3) / (16 * 16 * 3)

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
