"""The README's notebook example, end to end, on arrays of every dtype and layout.

Each array is also saved to disk as the file holding the same pixels and segmented by
nuclei-predict: the notebook's labels must equal the labels TIFF it writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from nuclei.cli.predict import predict
from nuclei.data.decode import read_sample
from nuclei.data.sources.io import read_image
from nuclei.data.sources.layouts import SampleFiles, scan_folder

matplotlib.use("Agg")
import matplotlib.pyplot as plt

H, W = 96, 120


def notebook_example(checkpoint: Path, image: np.ndarray, channel: int | None = None) -> tuple:
    """The README's example, as a notebook runs it (``channel`` only for a stack)."""
    import nuclei

    seg = nuclei.Segmenter.from_checkpoint(checkpoint, device="cpu")
    labels = seg.segment(image, channel=channel)  # (H, W) uint32: 0 background, nuclei 1..N
    probs = seg.probabilities(image, channel=channel)  # (C, H, W) float32, 0: nucleus
    table = seg.measure(image, labels, probabilities=probs, pixel_size_um=0.5)
    ax = nuclei.show(image, labels, channel=channel)  # outlines over the image
    return labels, probs, table, ax


def picture(synthetic_root: Path) -> np.ndarray:
    """A grey (H, W) uint8 crop of the generated image whose crop holds the most separate
    nuclei (the small test model then finds several)."""
    samples = scan_folder(synthetic_root, "auto", split="train").samples

    def separate_nuclei(sample: SampleFiles) -> int:
        return int(ndi.label(read_sample(sample)[1][:H, :W] > 0)[1])

    chosen = max(sorted(samples, key=lambda s: s.sample_id), key=separate_nuclei)
    return read_image(chosen.image)[:H, :W].mean(axis=2).round().astype(np.uint8)


def variants(gray: np.ndarray) -> dict[str, tuple[np.ndarray, int | None, np.ndarray]]:
    """id -> (array, channel, the pixels of the file standing for it on disk)."""
    rgb = np.dstack([gray, gray, (gray * 0.8).astype(np.uint8)])
    noise = np.random.default_rng(1).integers(0, 4000, (H, W)).astype(np.uint16)
    counts = gray.astype(np.uint16) * 13 + 300  # a 16-bit camera's raw counts
    plain = {
        "gray_uint8": gray,
        "gray_uint16": counts,
        "gray_float01": gray / 255.0,
        "gray_float_wide": gray * 4.5 - 120.0,
        "gray_int32": gray.astype(np.int32) * 1000 - 70_000,
        "gray_bool": gray > np.percentile(gray, 80),
        "gray_hw1": gray[..., None],
        "rgb_uint8": rgb,
        "rgb_uint16": rgb.astype(np.uint16) * 257,
        "rgba_uint8": np.dstack([rgb, np.full((H, W), 255, np.uint8)]),
    }
    found = {name: (array, None, array) for name, array in plain.items()}
    found["stack_chw_channel1"] = (np.stack([noise, counts, noise]), 1, counts)
    found["stack_hwc_channel0"] = (np.dstack([counts, noise]), 0, counts)
    return found


def save_file(folder: Path, name: str, pixels: np.ndarray) -> None:
    if pixels.dtype == bool:
        Image.fromarray(pixels).save(folder / f"{name}.png")  # 1-bit PNG
        return
    colour = pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
    tifffile.imwrite(folder / f"{name}.tif", pixels, photometric="rgb" if colour else None)


@pytest.fixture(scope="module")
def predicted(trained_run: Path, synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The variants, their files segmented by nuclei-predict, and its output folder."""
    import nuclei

    cases = variants(picture(synthetic_root))
    folder = tmp_path_factory.mktemp("notebook") / "files"
    folder.mkdir()
    for name, (_, _, pixels) in cases.items():
        save_file(folder, name, pixels)
    checkpoint = Path(json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"])
    out = folder.parent / "predicted"
    cfg = nuclei.compose(
        "predict",
        [f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}", "progress_bar=false"],
    )
    report = predict(cfg)
    assert not report.failures and len(report.images) == len(cases)
    return checkpoint, cases, out


@pytest.mark.parametrize("name", sorted(variants(np.zeros((H, W), np.uint8))))
def test_notebook_labels_equal_nuclei_predict_on_the_saved_file(predicted, name: str) -> None:
    checkpoint, cases, out = predicted
    image, channel, _ = cases[name]
    labels, probs, table, ax = notebook_example(checkpoint, image, channel)

    written = tifffile.imread(out / f"{name}_labels.tif")
    assert labels.dtype == np.uint32 and labels.shape == (H, W)
    np.testing.assert_array_equal(labels, written)
    assert probs.dtype == np.float32 and probs.shape == (1, H, W)

    assert isinstance(table, pd.DataFrame)
    assert sorted(table["label"]) == sorted(k for k in np.unique(labels) if k)
    assert {"area_um2", "probability_mean"} <= set(table.columns)
    assert ax.get_title() == f"{len(table)} nuclei"
    plt.close("all")


def test_the_example_finds_nuclei_and_measures_raw_counts(predicted) -> None:
    checkpoint, cases, _ = predicted
    counts = cases["gray_uint16"][0]
    labels, _, table, _ = notebook_example(checkpoint, counts)
    assert len(table) >= 2  # the equality checks above compare real segmentations
    for row in table.itertuples():
        raw_mean = counts[labels == row.label].mean()  # the camera's counts, not 8-bit
        assert row.intensity_mean == pytest.approx(raw_mean)
        assert row.area_um2 == pytest.approx(row.area * 0.25)
    stack, channel, _ = cases["stack_chw_channel1"]
    _, _, per_channel, _ = notebook_example(checkpoint, stack, channel)
    assert {"intensity_mean-0", "intensity_mean-1", "intensity_mean-2"} <= set(per_channel)
    np.testing.assert_allclose(per_channel["intensity_mean-1"], table["intensity_mean"])
    plt.close("all")


def test_compose_and_build_datamodule_in_a_notebook(synthetic_root: Path, tmp_path: Path) -> None:
    import nuclei

    cfg = nuclei.compose(
        "train",
        [
            f"data.source.root={synthetic_root}",
            f"paths.cache_dir={tmp_path}",
            "data.size.image_size=64",
            "data.source.decode_workers=1",
        ],
    )
    datamodule = nuclei.build_datamodule(cfg)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape[-2:] == (64, 64)


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The README's notebook example: its first Python code block."""
    text = README.read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_example_runs_as_written(predicted, tmp_path: Path, monkeypatch) -> None:
    """The README's block, with its placeholders pointed at a real checkpoint and file."""
    checkpoint, _, out = predicted
    source = readme_example()
    assert "nuclei.Segmenter.from_checkpoint" in source and "seg.measure" in source
    image_file = out.parent / "files" / "gray_uint16.tif"
    source = source.replace('"outputs/train/<run>/checkpoints/<best>.ckpt"', repr(str(checkpoint)))
    source = source.replace('"my_image.tif"', repr(str(image_file)))
    monkeypatch.chdir(tmp_path)  # compose() without a run folder writes nothing here
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)
    np.testing.assert_array_equal(
        namespace["labels"], tifffile.imread(out / "gray_uint16_labels.tif")
    )
    assert isinstance(namespace["table"], pd.DataFrame) and len(namespace["table"]) >= 2
    assert namespace["probs"].shape[1:] == namespace["labels"].shape
    assert namespace["datamodule"].size.image_size == 128
    plt.close("all")
