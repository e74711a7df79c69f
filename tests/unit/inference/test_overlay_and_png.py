"""The overlay a prediction writes equals scikit-image's ``mark_boundaries(mode="inner")``, and
its PNGs read back as the arrays written."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.segmentation import find_boundaries, mark_boundaries

from nuclei.inference.output_files import save_png
from nuclei.inference.writers import inner_outlines, overlay_outlines


def touching_labels(seed: int, shape: tuple[int, int] = (37, 53)) -> np.ndarray:
    """Random blocky labels: nuclei touching each other, the background and the edges."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 6, size=(shape[0] // 4 + 1, shape[1] // 4 + 1))
    labels = np.kron(coarse, np.ones((4, 4), dtype=np.int64))[: shape[0], : shape[1]]
    labels[rng.random(shape) < 0.05] = 0  # single-pixel holes
    return labels.astype(np.uint32)


@pytest.mark.parametrize("seed", range(5))
def test_inner_outlines_are_scikit_images_inner_boundaries(seed: int) -> None:
    labels = touching_labels(seed)
    expected = find_boundaries(labels, mode="inner")
    np.testing.assert_array_equal(inner_outlines(labels), expected)
    assert expected.any() and not expected.all()


@pytest.mark.parametrize("seed", range(3))
def test_overlay_is_mark_boundaries_in_yellow(seed: int) -> None:
    labels = touching_labels(seed)
    rng = np.random.default_rng(seed + 10)
    image = rng.integers(0, 256, size=(*labels.shape, 3), dtype=np.uint8)
    marked = mark_boundaries(image, labels, color=(1.0, 1.0, 0.0), mode="inner")
    expected = np.round(marked * 255.0).astype(np.uint8)
    drawn = overlay_outlines(image, labels)
    np.testing.assert_array_equal(drawn, expected)
    assert not np.shares_memory(drawn, image)


def test_a_grey_image_is_drawn_on_in_colour() -> None:
    labels = touching_labels(0)
    grey = np.full(labels.shape, 40, np.uint8)
    drawn = overlay_outlines(grey, labels)
    assert drawn.shape == (*labels.shape, 3)
    outline = inner_outlines(labels)
    assert (drawn[outline] == (255, 255, 0)).all()
    assert (drawn[~outline] == 40).all()


@pytest.mark.parametrize(
    "image", [np.zeros((37, 53, 3), np.float32), np.zeros((37, 53, 4), np.uint8), np.zeros((5, 5))]
)
def test_an_image_the_overlay_cannot_draw_on_is_refused(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="overlay needs a uint8"):
        overlay_outlines(image, touching_labels(0))


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3)])
def test_png_reads_back_as_written(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    save_png(tmp_path / "a.png", array)
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == ("RGB" if len(shape) == 3 else "L")
        np.testing.assert_array_equal(np.asarray(image), array)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_png_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bad\.png"):
        save_png(tmp_path / "bad.png", np.zeros((4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []
