"""nuclei.csv has one shape: grey and colour images give the same columns, filled, and the
Python API measures a file exactly as nuclei-predict does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from support.configs import predict_config

from nuclei.api.segmenter import Segmenter
from nuclei.cli.predict import predict
from nuclei.data.sources.io import read_image

INTENSITY = ("intensity_mean", "intensity_max", "intensity_min", "intensity_integrated")


def write_kinds(folder: Path, synthetic_root: Path) -> dict[str, Path]:
    """A grey PNG, a grey PNG stored as RGBA and a colour PNG (three different channels)."""
    sources = sorted(synthetic_root.glob("*/images/*.png"))
    folder.mkdir(parents=True)
    # Images of the set the short training run finds nuclei in, also when tinted.
    grey, grey_too, tinted = (read_image(sources[k])[..., 0] for k in (0, 1, 5))
    opaque = np.full(grey_too.shape, 255, np.uint8)
    colour = np.dstack([tinted, tinted // 2 + 60, 255 - tinted // 3])
    files = {"grey": folder / "grey.png", "grey_rgba": folder / "grey_rgba.png"}
    Image.fromarray(grey).save(files["grey"])
    Image.fromarray(np.dstack([grey_too, grey_too, grey_too, opaque])).save(files["grey_rgba"])
    files["colour"] = folder / "colour.png"
    Image.fromarray(colour).save(files["colour"])
    return files


def run_predict(checkpoint: Path, source: Path, out: Path) -> pd.DataFrame:
    """nuclei-predict of ``source`` into ``out`` (in this process); its nuclei.csv, exactly."""
    cfg = predict_config(checkpoint, source, out, "decode_workers=0", "postprocess_workers=0")
    report = predict(cfg)
    assert not report.failures
    return pd.read_csv(out / "nuclei.csv")


@pytest.fixture(scope="module")
def predicted(
    trained_run: Path, synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Path], Path, pd.DataFrame, dict[str, pd.DataFrame]]:
    """The three kinds predicted together in one folder, and each alone."""
    checkpoint = Path(json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"])
    root = tmp_path_factory.mktemp("kinds")
    files = write_kinds(root / "mixed", synthetic_root)
    mixed = run_predict(checkpoint, root / "mixed", root / "mixed_out")
    alone = {}
    for name, path in files.items():
        (root / name).mkdir()
        shutil.copy(path, root / name / path.name)
        alone[name] = run_predict(checkpoint, root / name, root / f"{name}_out")
    return checkpoint, files, root / "mixed_out", mixed, alone


def test_a_folder_of_grey_and_colour_images_has_the_columns_of_each_alone(predicted) -> None:
    _, files, _, mixed, alone = predicted
    assert set(mixed["image"]) == set(files)  # every kind has nuclei: the rows are compared
    for name, table in alone.items():
        assert list(table.columns) == list(mixed.columns), name
    for name in INTENSITY:
        assert [name, f"{name}-0", f"{name}-1", f"{name}-2"] == [
            column for column in mixed.columns if column.split("-")[0] == name
        ]
    assert not mixed.isna().any().any()  # no channel left blank for a grey image


def test_a_grey_image_reports_its_value_in_every_channel_column(predicted) -> None:
    _, _, _, mixed, _ = predicted
    grey = mixed[mixed["image"] != "colour"]
    colour = mixed[mixed["image"] == "colour"]
    for name in INTENSITY:
        for channel in range(3):
            np.testing.assert_array_equal(grey[f"{name}-{channel}"], grey[name])
    # A colour image's plain columns are its grey value: the mean of its three channels.
    channels = colour[[f"intensity_mean-{c}" for c in range(3)]].mean(axis=1)
    np.testing.assert_allclose(colour["intensity_mean"], channels, rtol=1e-12)
    assert (colour["intensity_mean-0"] != colour["intensity_mean-1"]).any()


@pytest.mark.parametrize("name", ["grey", "grey_rgba", "colour"])
def test_the_api_measures_a_file_as_nuclei_predict_does(predicted, name: str) -> None:
    checkpoint, files, out, mixed, _ = predicted
    segmenter = Segmenter.from_checkpoint(checkpoint, device="cpu")
    image = np.asarray(Image.open(files[name]))  # as a notebook reads it: RGBA stays 4 planes
    labels = tifffile.imread(out / f"{name}_labels.tif")
    table = segmenter.measure(image, labels, probabilities=segmenter.probabilities(image))
    rows = mixed[mixed["image"] == name].drop(columns="image").reset_index(drop=True)
    assert list(table.columns) == list(rows.columns)
    exact = [column for column in rows.columns if column != "probability_mean"]
    pd.testing.assert_frame_equal(table[exact], rows[exact], check_exact=True)
    np.testing.assert_allclose(table["probability_mean"], rows["probability_mean"], rtol=1e-5)
