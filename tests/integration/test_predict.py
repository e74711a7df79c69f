"""nuclei-predict: mixed image modes and sizes, every output file, CSVs, RLE, bad input."""

import csv
import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from omegaconf import OmegaConf
from PIL import Image
from support.configs import predict_config

import nuclei
from nuclei.api.segmenter import prediction_settings
from nuclei.cli.predict import predict
from nuclei.data.sources.io import read_image
from nuclei.data.sources.rle import rle_decode
from nuclei.inference.image_files import (
    ImageTooLargeError,
    declared_size,
    find_images,
    refuse_oversized,
)

BIN = Path(sys.executable).parent
SIZES = {"rgba": (101, 133), "gray": (77, 250), "deep": (150, 97), "tiny": (5, 7)}


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header declares a huge image (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def mixed_folder(tmp_path: Path, synthetic_root: Path) -> Path:
    """RGBA PNG, grayscale PNG, 16-bit TIFF and a 5x7 image of odd sizes, plus junk."""
    sources = sorted(synthetic_root.glob("*/images/*.png"))
    folder = tmp_path / "input"
    folder.mkdir()
    h, w = SIZES["rgba"]
    rgb = read_image(sources[0])[:h, :w]
    Image.fromarray(np.dstack([rgb, np.full((h, w), 255, np.uint8)])).save(folder / "rgba.png")
    h, w = SIZES["gray"]
    Image.fromarray(read_image(sources[1])[:h, :w, 0]).save(folder / "gray.png")
    h, w = SIZES["deep"]
    tifffile.imwrite(folder / "deep.tif", read_image(sources[2])[:h, :w, 0].astype(np.uint16) * 257)
    h, w = SIZES["tiny"]
    Image.fromarray(read_image(sources[3])[:h, :w]).save(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated")
    png_declaring(folder / "bomb.png", 100_000, 100_000)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def checkpoint_of(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])


def check_outputs(out: Path, expected: dict[str, tuple[int, int]]) -> int:
    """Every file of every image is there with the right shape, and the CSVs agree with it."""
    nuclei = read_csv(out / "nuclei.csv")
    summary = {row["image"]: row for row in read_csv(out / "summary.csv")}
    submission = read_csv(out / "submission.csv")
    assert set(summary) == set(expected)
    total = 0
    for image_id, shape in expected.items():
        mask = np.asarray(Image.open(out / f"{image_id}_mask.png"))
        labels = tifffile.imread(out / f"{image_id}_labels.tif")
        overlay = np.asarray(Image.open(out / f"{image_id}_overlay.png"))
        assert mask.shape == labels.shape == shape and overlay.shape == (*shape, 3)
        assert mask.dtype == overlay.dtype == np.uint8 and labels.dtype == np.uint32
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, labels > 0)

        ids = [k for k in np.unique(labels) if k]
        rows = [r for r in nuclei if r["image"] == image_id]
        assert sorted(int(r["label"]) for r in rows) == ids
        for row in rows:
            k = int(row["label"])
            rr, cc = np.nonzero(labels == k)
            assert int(row["area"]) == rr.size
            assert (int(row["bbox-0"]), int(row["bbox-2"])) == (rr.min(), rr.max() + 1)
            assert (int(row["bbox-1"]), int(row["bbox-3"])) == (cc.min(), cc.max() + 1)
            assert float(row["centroid-0"]) == pytest.approx(rr.mean(), abs=0.01)
            assert 0.0 <= float(row["probability_mean"]) <= 1.0
            assert 0.0 <= float(row["eccentricity"]) <= 1.0
        assert int(summary[image_id]["nuclei"]) == len(ids)
        covered = float(summary[image_id]["covered_fraction"])
        assert covered == pytest.approx((labels > 0).mean(), abs=1e-6)

        # submission.csv decodes back to exactly the label image, one row per nucleus.
        encoded = [r["EncodedPixels"] for r in submission if r["ImageId"] == image_id]
        decoded = np.zeros(shape, dtype=np.int64)
        if ids:
            assert len(encoded) == len(ids)
            for k, rle in enumerate(encoded, start=1):
                nucleus = rle_decode(rle, shape)
                assert not (decoded[nucleus]).any()  # nuclei do not overlap
                decoded[nucleus] = k
        else:
            assert encoded == [""]
        np.testing.assert_array_equal(decoded, labels)
        total += len(ids)
    return total


def test_predict_writes_every_file_for_mixed_modes_and_sizes(
    trained_run: Path, mixed_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report = predict(predict_config(checkpoint_of(trained_run), mixed_folder, out))
    assert sorted(report.images) == sorted(SIZES)
    assert sorted(Path(p).name for p in report.failures) == ["bomb.png", "broken.png"]
    assert "declares 100000x100000" in report.failures[str(mixed_folder / "bomb.png")]
    assert "broken.png: cannot be read" in report.failures[str(mixed_folder / "broken.png")]
    total = check_outputs(out, SIZES)
    assert total == report.nuclei > 0  # the model finds nuclei, so the CSV checks bite


def test_crop_mode_runs_tiled_at_native_resolution(
    trained_run: Path, mixed_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiled"
    cfg = predict_config(
        checkpoint_of(trained_run),
        mixed_folder,
        out,
        "size_mode=crop",
        "tile=64",  # the 150x97 and 77x250 images take several windows, the 5x7 one
        "overlap=16",
        "postprocess.split=watershed",
    )
    report = predict(cfg)
    assert sorted(report.images) == sorted(SIZES)
    check_outputs(out, SIZES)


def test_image_guard_reads_sizes_from_headers(mixed_folder: Path) -> None:
    assert declared_size(mixed_folder / "deep.tif") == SIZES["deep"]
    assert declared_size(mixed_folder / "rgba.png") == SIZES["rgba"]
    assert declared_size(mixed_folder / "bomb.png") == (100_000, 100_000)
    refuse_oversized(mixed_folder / "rgba.png", max_pixels=101 * 133)
    with pytest.raises(ImageTooLargeError, match=r"rgba\.png: declares 133x101"):
        refuse_oversized(mixed_folder / "rgba.png", max_pixels=101 * 133 - 1)


def test_bad_inputs_are_refused_clearly(tmp_path: Path, mixed_folder: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere: input file or folder not found"):
        find_images(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="no images"):
        find_images(empty)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(mixed_folder / "gray.tif")
    with pytest.raises(ValueError, match="occur twice"):
        find_images(mixed_folder)


def test_nuclei_predict_console_script_reports_failures_and_exits_1(
    trained_run: Path, mixed_folder: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    done = subprocess.run(
        [
            BIN / "nuclei-predict",
            f"ckpt_path={checkpoint_of(trained_run)}",
            f"input={mixed_folder}",
            "output=segmented",
            "progress_bar=false",
        ],
        cwd=workdir,
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "2 image(s) could not be segmented" in log
    assert "broken.png" in log and "bomb.png" in log
    check_outputs(workdir / "segmented", SIZES)  # the good images were all processed


def test_prediction_follows_the_training_size_mode() -> None:
    old_run = OmegaConf.create({"size": {"image_size": 96}})  # before data.size.mode existed
    settings = prediction_settings(old_run, device="cpu")
    assert (settings.size_mode, settings.image_size) == ("resize", 96)
    crop_run = OmegaConf.create({"size": {"mode": "crop", "image_size": 128, "crop_size": 256}})
    assert prediction_settings(crop_run).size_mode == "crop"
    assert prediction_settings(crop_run, size_mode="resize").size_mode == "resize"
    with pytest.raises(ValueError, match="size_mode must be one of"):
        prediction_settings(crop_run, size_mode="warp")
    with pytest.raises(ValueError, match="needs image_size"):
        prediction_settings({"size": {"mode": "resize"}})


def test_predict_records_its_arguments_and_saves_probabilities(
    trained_run: Path, mixed_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "recorded"
    ckpt = checkpoint_of(trained_run)
    cfg = predict_config(
        ckpt, mixed_folder / "deep.tif", out, "save_probabilities=true", "postprocess.min_area=7"
    )
    predict(cfg)
    record = json.loads((out / "predict_args.json").read_text())
    assert record["checkpoint"] == {
        "path": str(ckpt.resolve()),
        "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
    }
    assert record["nuclei_version"] == nuclei.__version__
    assert record["postprocess"]["min_area"] == 7
    assert record["postprocess"]["threshold"] == 0.5  # the run's own value, kept
    size = record["settings"]
    assert (size["size_mode"], size["image_size"], size["batch_size"]) == ("resize", 64, 8)
    assert record["input"] == str(mixed_folder / "deep.tif")
    assert record["target"] == "binary" and record["packages"]["torch"]

    maps = tifffile.imread(out / "deep_probabilities.tif")  # one channel: read as (H, W)
    maps = maps.reshape(-1, *SIZES["deep"])
    assert maps.shape[0] == 1 and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    labels = tifffile.imread(out / "deep_labels.tif")
    seg = nuclei.Segmenter.from_checkpoint(ckpt, device="cpu", postprocess={"min_area": 7})
    np.testing.assert_array_equal(labels, seg.instances(maps))


def test_test_time_augmentation_in_the_api_and_in_predict_args(
    trained_run: Path, mixed_folder: Path, tmp_path: Path
) -> None:
    ckpt = checkpoint_of(trained_run)
    image = read_image(next(mixed_folder.glob("rgba.png")))
    plain = nuclei.Segmenter.from_checkpoint(ckpt, device="cpu")
    d4 = nuclei.Segmenter.from_checkpoint(ckpt, device="cpu", tta="d4")
    assert "test-time augmentation d4" in repr(d4)
    p_plain, p_d4 = plain.probabilities(image), d4.probabilities(image)
    assert p_plain.shape == p_d4.shape and not np.allclose(p_plain, p_d4)
    with pytest.raises(ValueError, match="tta must be one of"):
        nuclei.Segmenter.from_checkpoint(ckpt, device="cpu", tta="mirror")
    out = tmp_path / "tta"
    predict(predict_config(ckpt, mixed_folder / "rgba.png", out, "tta=flips"))
    assert json.loads((out / "predict_args.json").read_text())["settings"]["tta"] == "flips"
