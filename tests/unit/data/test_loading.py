"""Loading a folder: bad input is found at setup, reported all together, and never trained
on silently."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.samples import labelled_set, square_labels, write_flat, write_kaggle, write_solution

from nuclei.data.config import SizeConfig, SourceConfig
from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.sources.layouts import LayoutError
from nuclei.data.sources.rle import rle_encode
from nuclei.data.validation import DataValidationError


def kaggle_root(tmp_path: Path, n: int = 5) -> Path:
    return write_kaggle(tmp_path / "stage1_train", labelled_set("k", n))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def datamodule(root: Path, size: SizeConfig | None = None, **source: object) -> NucleiDataModule:
    """A data module on ``root`` decoding with one thread; ``source`` adds source settings."""
    return NucleiDataModule(
        source=SourceConfig(root=str(root), decode_workers=1, **source), size=size
    )


def setup_fit(root: Path, **source: object) -> NucleiDataModule:
    dm = datamodule(root, SizeConfig(image_size=16), **source)
    dm.setup("fit")
    return dm


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=r"nowhere: data root does not exist"):
        setup_fit(tmp_path / "nowhere")


def test_every_bad_file_is_named_in_one_error(tmp_path: Path) -> None:
    train = kaggle_root(tmp_path)
    (train / "k1" / "images" / "k1.png").write_bytes(b"not a png at all")
    truncate(train / "k3" / "masks" / "n2.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(train / "k4" / "masks" / "n1.png")
    with pytest.raises(DataValidationError) as raised:
        setup_fit(tmp_path)
    error = raised.value
    assert len(error.problems) == 3
    message = str(error)
    assert "k1/images/k1.png: cannot be read as an image" in message
    assert "k3/masks/n2.png: cannot be read as an image" in message
    assert "k4/masks/n1.png: mask is 10x10 but its image is 24x24" in message
    assert "data.source.on_bad_file=skip" in message


def test_skip_drops_bad_samples_and_lists_them(tmp_path: Path, caplog) -> None:
    train = kaggle_root(tmp_path, n=6)
    truncate(train / "k2" / "images" / "k2.png")
    (train / "k5" / "images" / "k5.png").unlink()
    with caplog.at_level(logging.WARNING):
        dm = setup_fit(tmp_path, on_bad_file="skip")
    assert sorted(dm.train_ids + dm.val_ids) == ["k0", "k1", "k3", "k4"]
    assert "Dropped sample k2" in caplog.text and "k2/images/k2.png" in caplog.text
    assert "Dropped sample k5" in caplog.text
    report = json.loads(json.dumps(dm.data_report()))  # JSON-ready, as data_report.json
    fit = report["train/val"]
    assert (fit["found"], fit["used"]) == (6, 4)
    assert [d["id"] for d in fit["dropped"]] == ["k2", "k5"]
    assert "k5/images: no image file" in fit["dropped"][1]["reason"]


def test_flat_mask_of_the_wrong_size_names_both_files_and_sizes(tmp_path: Path) -> None:
    flat = write_flat(tmp_path / "train", labelled_set("f", 3))
    Image.fromarray(np.zeros((12, 30), np.uint8)).save(flat / "masks" / "f1.png")
    with pytest.raises(DataValidationError) as raised:
        setup_fit(tmp_path)
    message = str(raised.value)
    assert "masks/f1.png: mask is 12x30 but its image" in message
    assert "inputs/f1.png is 24x24" in message


def test_images_without_masks_are_background_and_counted(tmp_path: Path, caplog) -> None:
    train = kaggle_root(tmp_path)
    for path in (train / "k1" / "masks").iterdir():
        path.unlink()  # empty masks/ folder
    for path in (train / "k3" / "masks").iterdir():
        path.unlink()
    (train / "k3" / "masks").rmdir()  # no masks/ folder at all
    with caplog.at_level(logging.WARNING):
        dm = setup_fit(tmp_path)
    assert "2 of 5 image(s) have no masks or empty masks and are used as all background" in (
        caplog.text
    )
    assert dm.data_report()["train/val"]["empty"] == ["k1", "k3"]
    assert len(dm.train_ids) + len(dm.val_ids) == 5  # kept, not dropped


def test_a_folder_with_no_labels_at_all_is_refused(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "stage1_test", labelled_set("t", 3), with_masks=False)
    with pytest.raises(DataValidationError, match=r"(?s)stage1_test.*none of its 3 images"):
        setup_fit(tmp_path / "stage1_test")


def test_junk_files_do_not_disturb_setup(tmp_path: Path) -> None:
    train = kaggle_root(tmp_path, n=3)
    (train / "Thumbs.db").write_bytes(b"\0\1")
    (train / ".DS_Store").write_bytes(b"\0\1")
    (train / "k0" / "masks" / "notes.txt").write_text("checked by hand")
    dm = setup_fit(tmp_path)
    assert len(dm.train_ids) + len(dm.val_ids) == 3
    assert dm.data_report()["train/val"]["ignored_files"] == 2


def kaggle_with_test(tmp_path: Path, rows: str = "") -> tuple[Path, Path]:
    kaggle_root(tmp_path, n=3)
    test_labels = labelled_set("t", 3)
    write_kaggle(tmp_path / "stage1_test", test_labels, with_masks=False)
    csv = write_solution(tmp_path / "stage1_solution.csv", test_labels)
    csv.write_text(csv.read_text() + rows)
    return tmp_path, csv


def test_solution_rows_without_images_and_images_without_rows(tmp_path: Path) -> None:
    root, csv = kaggle_with_test(tmp_path)
    lines = csv.read_text().splitlines()
    kept = [line for line in lines if not line.startswith("t1,")]
    ghost = "ghost,1 3,24,24,Public"
    csv.write_text("\n".join([*kept, ghost]) + "\n")
    dm = datamodule(root)
    assert dm.has_test_split  # stage1_test + stage1_solution.csv next to stage1_train
    with pytest.raises(DataValidationError) as raised:
        dm.setup("test")
    message = str(raised.value)
    assert "rows but no image" in message and "ghost" in message
    assert "no rows for 1 image(s)" in message and "t1" in message


def test_malformed_rle_names_the_row_and_skip_drops_that_image(tmp_path: Path) -> None:
    root, csv = kaggle_with_test(tmp_path, rows="t2,4 2 1 1,24,24,Public\n")
    n_lines = len(csv.read_text().splitlines())
    with pytest.raises(DataValidationError, match=rf"line {n_lines} \(image t2\): runs not in"):
        datamodule(root).setup("test")
    dm = datamodule(root, on_bad_file="skip")
    dm.setup("test")
    assert dm.test_ids == ["t0", "t1"]
    assert dm.data_report()["test"]["dropped"][0]["id"] == "t2"


def test_overlapping_nuclei_in_the_solution_name_both_rows(tmp_path: Path) -> None:
    labels = square_labels((24, 24), seed=0)  # t0's labels: repeat its first nucleus
    root, _ = kaggle_with_test(tmp_path, rows=f"t0,{rle_encode(labels == 1)},24,24,Public\n")
    with pytest.raises(
        DataValidationError, match=r"\(image t0\): nucleus overlaps the one on line"
    ):
        datamodule(root).setup("test")


def test_stage1_test_image_of_another_size_than_its_rows(tmp_path: Path) -> None:
    root, _ = kaggle_with_test(tmp_path)
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(root / "stage1_test/t1/images/t1.png")
    with pytest.raises(
        DataValidationError,
        match=r"t1/images/t1.png is 20x24 but .*stage1_solution.csv gives image t1 as 24x24",
    ):
        datamodule(root).setup("test")


def test_fit_checks_the_test_split_too_and_reports_both_at_once(tmp_path: Path) -> None:
    root, _ = kaggle_with_test(tmp_path, rows="t2,1 2 3,24,24,Public\n")
    truncate(root / "stage1_train" / "k1" / "images" / "k1.png")
    with pytest.raises(DataValidationError) as raised:
        datamodule(root).setup("fit")  # before any step
    message = str(raised.value)
    assert "2 problem(s) in the training data" in message
    assert "k1/images/k1.png: cannot be read" in message
    assert "(image t2): odd number of values" in message
    assert "data.source.on_bad_file=skip" in message
