"""Image kinds from image statistics: the synthetic families, hand-made images, edge cases."""

import cv2
import numpy as np
import pytest

from nuclei.data.kinds import image_kind, image_kinds, kind_counts, kinds_summary, ordered_kinds
from nuclei.synthetic.profiles import PROFILES
from nuclei.synthetic.render import plan_sample, render_sample

# The first images of each family in a synthetic set (brightfield is 1024x1024 and slow to
# render, so only a few of those).
PER_FAMILY = {"fluorescence": 16, "tissue": 8, "brightfield": 3}


def synthetic_indices(seed: int) -> list[int]:
    """Indices of the first ``PER_FAMILY`` images of each family (plans are cheap)."""
    chosen: dict[str, list[int]] = {family: [] for family in PER_FAMILY}
    index = 0
    while any(len(chosen[f]) < n for f, n in PER_FAMILY.items()):
        family = plan_sample(seed, index).family
        if len(chosen[family]) < PER_FAMILY[family]:
            chosen[family].append(index)
        index += 1
    return sorted(i for indices in chosen.values() for i in indices)


@pytest.mark.parametrize("profile", sorted(PROFILES))  # the training set and the shifted one
def test_every_synthetic_image_gets_its_family(profile: str) -> None:
    for index in synthetic_indices(seed=5):
        image, _, plan = render_sample(5, index, profile)
        assert image_kind(image) == plan.family, f"image {index}"
        # as real DSB2018 stores them (RGBA, alpha 255) and as resize mode shrinks them
        rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
        assert image_kind(rgba) == plan.family
        small = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)
        assert image_kind(small) == plan.family


def disks(background: tuple[int, ...], nucleus: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A 96x128 image: 12 disks of colour ``nucleus`` on ``background``, with a little noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((96, 128, 3), np.float32)
    image[:] = background
    yy, xx = np.mgrid[:96, :128]
    for cy, cx in zip(rng.integers(10, 86, 12), rng.integers(10, 118, 12), strict=True):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 49] = nucleus
    return np.clip(image + rng.normal(0, 3, image.shape[:2])[..., None], 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("background", "nucleus", "kind"),
    [
        ((10, 10, 10), (200, 200, 200), "fluorescence"),
        ((25, 25, 25), (70, 70, 70), "fluorescence"),  # dim: nuclei at ~27% of the range
        ((210, 210, 210), (90, 90, 90), "brightfield"),
        ((120, 120, 120), (40, 40, 40), "brightfield"),  # a darker brightfield background
        ((235, 180, 210), (110, 70, 160), "tissue"),  # H&E: pink background, purple nuclei
        ((200, 190, 200), (150, 110, 170), "tissue"),  # faint stain
    ],
)
def test_hand_made_images(background: tuple[int, ...], nucleus: tuple[int, ...], kind: str) -> None:
    assert image_kind(disks(background, nucleus)) == kind


def test_grey_stays_grey_under_channel_noise_and_other_storage() -> None:
    grey = disks((10, 10, 10), (200, 200, 200))
    rng = np.random.default_rng(1)
    jittered = np.clip(grey + rng.integers(-2, 3, grey.shape), 0, 255).astype(np.uint8)
    assert image_kind(jittered) == "fluorescence"  # JPEG-like channel differences: still grey
    assert image_kind(grey[..., 0]) == "fluorescence"  # (H, W)
    assert image_kind(grey[..., :1]) == "fluorescence"  # (H, W, 1)
    assert image_kind(grey.astype(np.uint16) * 257) == "fluorescence"  # 16-bit copy
    bright = disks((210, 210, 210), (90, 90, 90))
    assert image_kind(bright.astype(np.float32) / 255) == "brightfield"  # float in [0, 1]
    # a colour image whose colour is only a tint of the channels would be tissue
    tinted = grey.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 20, 0, 255)
    assert image_kind(tinted) == "tissue"


def test_large_images_are_subsampled_to_the_same_answer() -> None:
    small = disks((210, 210, 210), (90, 90, 90))
    large = np.tile(small, (12, 12, 1))  # 1152x1536
    assert image_kind(large) == image_kind(small) == "brightfield"


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected an"):
        image_kind(np.zeros((4, 4, 3, 1), np.uint8))
    with pytest.raises(ValueError, match="expected an"):
        image_kind(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="2 ids but 1 images"):
        image_kinds(["a", "b"], [np.zeros((4, 4, 3), np.uint8)])


def test_kinds_of_a_set_counted_and_summarised() -> None:
    images = [disks((10,) * 3, (200,) * 3), disks((235, 180, 210), (110, 70, 160))] * 2
    kinds = image_kinds(["a", "b", "c", "d"], images)
    assert kinds == {"a": "fluorescence", "b": "tissue", "c": "fluorescence", "d": "tissue"}
    assert kind_counts("abc", kinds) == {"fluorescence": 2, "tissue": 1}
    assert kinds_summary("abc", "d", kinds) == "fluorescence 2/0, tissue 1/1"


def test_ordered_kinds_follow_the_dsb_families_then_other_names_sorted() -> None:
    assert ordered_kinds(["tissue", "zebra", "fluorescence", "alpha"]) == [
        "fluorescence",
        "tissue",
        "alpha",
        "zebra",
    ]
    assert ordered_kinds([]) == []
