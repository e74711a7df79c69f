"""The overlay a prediction writes equals scikit-image's ``mark_boundaries(mode="inner")``, and
its PNGs read back as the arrays written.

The files of a prediction: uint32 ImageJ label TIFFs, probability TIFFs, ROI sets,
nuclei.csv on the raw pixels of the file, and atomic writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import roifile
import tifffile
from PIL import Image
from skimage.draw import disk, polygon2mask
from skimage.segmentation import find_boundaries, mark_boundaries

from nuclei.data.sources.io import read_image, read_raw_image
from nuclei.inference import output_files
from nuclei.inference.output_files import (
    PredictionWriter,
    inner_outlines,
    overlay_outlines,
    save_png,
)
from nuclei.inference.output_folder import record_path


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


SHAPE = (48, 64)


def labelled() -> np.ndarray:
    """Two nuclei: label 1 a disc, label 70,000 (beyond uint16) a rectangle on the edge."""
    labels = np.zeros(SHAPE, np.uint32)
    labels[disk((16, 18), 7, shape=SHAPE)] = 1
    labels[30:40, 54:64] = 70_000
    return labels


def sixteen_bit_tiff(folder: Path, labels: np.ndarray) -> Path:
    """A 16-bit camera image: background 180 counts, nucleus 1 at 3,300, the other at 900."""
    image = np.full(SHAPE, 180, np.uint16)
    image[labels == 1] = 3300
    image[labels == 70_000] = 900
    path = folder / "deep.tif"
    tifffile.imwrite(path, image)
    return path


def write_one(out: Path, source: Path, labels: np.ndarray, **options: object) -> PredictionWriter:
    probabilities = options.pop("probabilities", None)
    with PredictionWriter(out, **options) as writer:
        writer.write(source.stem, source, read_image(source), labels, probabilities=probabilities)
    return writer


def test_labels_read_back_as_uint32_with_imagej_metadata(tmp_path: Path) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    write_one(tmp_path / "out", source, labels, pixel_size_um=0.25)
    with tifffile.TiffFile(tmp_path / "out" / "deep_labels.tif") as tif:
        stored = tif.asarray()
        assert tif.is_imagej
        metadata = tif.imagej_metadata
        resolution = tif.pages[0].resolution
        compression = tif.pages[0].compression
    assert compression == tifffile.COMPRESSION.ADOBE_DEFLATE  # lossless, read by ImageJ
    assert (tmp_path / "out" / "deep_labels.tif").stat().st_size < stored.nbytes / 4
    assert stored.dtype == np.uint32
    np.testing.assert_array_equal(stored, labels)
    assert metadata["unit"] == "micron" and (metadata["min"], metadata["max"]) == (0, 70_000)
    assert resolution == pytest.approx((4.0, 4.0))  # pixels per micron


def test_probabilities_round_trip_as_float32_channels(tmp_path: Path) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    maps = np.random.default_rng(0).random((2, *SHAPE)).astype(np.float32)
    write_one(tmp_path / "out", source, labels, probabilities=maps, save_probabilities=True)
    with tifffile.TiffFile(tmp_path / "out" / "deep_probabilities.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "CYX"
        np.testing.assert_array_equal(tif.asarray(), maps)
    one_channel = maps[:1]
    write_one(tmp_path / "one", source, labels, probabilities=one_channel, save_probabilities=True)
    stored = tifffile.imread(tmp_path / "one" / "deep_probabilities.tif", squeeze=False)
    np.testing.assert_array_equal(stored.reshape(one_channel.shape), one_channel)
    write_one(tmp_path / "unsaved", source, labels, probabilities=maps)
    assert not (tmp_path / "unsaved" / "deep_probabilities.tif").exists()


def test_nuclei_csv_measures_the_raw_16_bit_counts(tmp_path: Path) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    maps = np.stack([np.where(labels > 0, 0.8, 0.1)]).astype(np.float32)
    write_one(tmp_path / "out", source, labels, probabilities=maps, pixel_size_um=0.5)
    table = pd.read_csv(tmp_path / "out" / "nuclei.csv").set_index("label")
    assert list(table.columns[:2]) == ["image", "area"]
    assert {"intensity_integrated", "touches_border", "probability_mean", "area_um2"} <= set(
        table.columns
    )
    assert table.loc[1, "intensity_mean"] == pytest.approx(3300.0)  # not 8-bit 255
    assert table.loc[70_000, "intensity_mean"] == pytest.approx(900.0)
    assert table.loc[1, "probability_mean"] == pytest.approx(0.8)
    assert table["touches_border"].tolist() == [False, True]
    assert (table["image"] == "deep").all()


def test_given_raw_pixels_are_measured_instead_of_the_file(tmp_path: Path) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    raw = np.full((*SHAPE, 2), 7, np.uint16)
    with PredictionWriter(tmp_path / "out", properties=["intensity_mean"]) as writer:
        writer.write("deep", source, read_image(source), labels, raw=raw)
    table = pd.read_csv(tmp_path / "out" / "nuclei.csv")
    columns = ["image", "label", "intensity_mean", "intensity_mean-0", "intensity_mean-1"]
    assert list(table.columns) == columns
    assert (table["intensity_mean-0"] == 7).all() and (table["intensity_mean"] == 7).all()


def test_a_grey_png_stored_as_rgba_is_read_as_one_raw_channel(tmp_path: Path) -> None:
    grey = np.random.default_rng(1).integers(0, 256, SHAPE, dtype=np.uint8)
    Image.fromarray(np.dstack([grey, grey, grey, np.full(SHAPE, 255, np.uint8)])).save(
        tmp_path / "grey.png"
    )
    np.testing.assert_array_equal(read_raw_image(tmp_path / "grey.png"), grey)
    colour = np.dstack([grey, grey // 2, grey // 3])
    Image.fromarray(colour).save(tmp_path / "colour.png")
    np.testing.assert_array_equal(read_raw_image(tmp_path / "colour.png"), colour)


def test_roi_zip_holds_one_outline_per_nucleus(tmp_path: Path) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    write_one(tmp_path / "out", source, labels, roi_zip=True)
    rois = roifile.roiread(tmp_path / "out" / "deep_rois.zip")
    assert [roi.name for roi in rois] == ["00001", "70000"]
    for roi, label in zip(rois, (1, 70_000), strict=True):
        x, y = roi.coordinates().T  # ImageJ: pixel (row, col) spans [col, col + 1)
        filled = polygon2mask(SHAPE, np.column_stack([y - 0.5, x - 0.5]))
        np.testing.assert_array_equal(filled, labels == label)


def test_tables_and_files_of_finished_images_survive_an_error(tmp_path: Path) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), PredictionWriter(out) as writer:
        writer.write("deep", source, read_image(source), labels)
        raise KeyboardInterrupt
    summary = pd.read_csv(out / "summary.csv")
    assert summary["nuclei"].tolist() == [2]
    submission = pd.read_csv(out / "submission.csv")
    assert submission["ImageId"].tolist() == ["deep", "deep"]
    assert record_path(out, "deep").is_file()  # its completion record
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "deep_labels.tif",
        "deep_mask.png",
        "deep_overlay.png",
        "nuclei.csv",
        "submission.csv",
        "summary.csv",
    ]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = labelled()
    source = sixteen_bit_tiff(tmp_path, labels)
    out = tmp_path / "out"
    write_one(out, source, labels)
    before = (out / "deep_labels.tif").read_bytes()

    def broken(path: Path, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"half a TIFF")
        raise OSError("disk full")

    monkeypatch.setattr(output_files.tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_one(out, source, labels * 0)
    assert (out / "deep_labels.tif").read_bytes() == before
    assert not [p.name for p in out.rglob(".*.partial-*")]


def test_an_unknown_property_is_refused_before_any_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: label, area"):
        PredictionWriter(tmp_path, properties=["mean_intensity"])


def test_a_writer_without_images_writes_headers(tmp_path: Path) -> None:
    with PredictionWriter(tmp_path / "out"):
        pass
    header = (tmp_path / "out" / "nuclei.csv").read_text().splitlines()[0]
    assert header.startswith("image,label,area,") and "intensity_mean" in header
    assert (tmp_path / "out" / "summary.csv").read_text().startswith("image,file,height")
