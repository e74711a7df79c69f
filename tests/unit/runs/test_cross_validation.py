"""A cross-validation sweep's fold runs: grouped by configuration, checked to validate every
image exactly once, with errors naming the run or fold that is wrong."""

import json
from pathlib import Path

import pytest

from nuclei.data.splits import fold_ids
from nuclei.runs.cross_validation import CrossValidationError, cross_validations

IDS = [f"img{i:02d}" for i in range(11)]


def write_fold_run(folder: Path, overrides: list[str], folds: int, fold: int) -> None:
    (folder / ".hydra").mkdir(parents=True)
    lines = "".join(f"- {o}\n" for o in [*overrides, f"data.split.fold={fold}"])
    (folder / ".hydra" / "overrides.yaml").write_text(lines)
    train, val = fold_ids(IDS, folds, fold, seed=0)
    record = {"train": train, "val": val, "folds": folds, "fold": fold}
    (folder / "split.json").write_text(json.dumps(record))


def test_two_configurations_of_three_folds(tmp_path: Path) -> None:
    for i, (experiment, fold) in enumerate(
        (e, f) for e in ("binary_unet", "instance_unet") for f in (2, 0, 1)
    ):
        write_fold_run(
            tmp_path / str(i), ["data.split.folds=3", f"experiment={experiment}"], 3, fold
        )
    found = cross_validations(tmp_path)
    assert [cv.label for cv in found] == ["experiment=binary_unet", "experiment=instance_unet"]
    for cv in found:
        assert [run.fold for run in cv.runs] == [0, 1, 2]
        assert cv.n_images == len(IDS)
        validated = [i for run in cv.runs for i in run.val_ids]
        assert sorted(validated) == IDS  # every image exactly once
        for run in cv.runs:
            assert not set(run.val_ids) & set(run.train_ids)


def test_one_configuration_is_labelled_all(tmp_path: Path) -> None:
    for fold in range(2):
        write_fold_run(tmp_path / str(fold), ["data.split.folds=2"], 2, fold)
    (tmp_path / "unrelated").mkdir()  # not a run: ignored
    [cv] = cross_validations(tmp_path)
    assert cv.label == "all" and len(cv.runs) == 2


def test_a_missing_fold_is_named(tmp_path: Path) -> None:
    for fold in (0, 2):
        write_fold_run(tmp_path / str(fold), ["data.split.folds=3"], 3, fold)
    with pytest.raises(CrossValidationError, match=r"missing \[1\], repeated \[\]"):
        cross_validations(tmp_path)


def test_overlapping_folds_are_refused(tmp_path: Path) -> None:
    for i, fold in enumerate((0, 1)):
        write_fold_run(tmp_path / str(i), ["data.split.folds=2"], 2, fold)
    record = json.loads((tmp_path / "1" / "split.json").read_text())
    moved = record["train"].pop()
    record["val"].append(moved)  # an image of fold 0 validated by fold 1 too
    (tmp_path / "1" / "split.json").write_text(json.dumps(record))
    with pytest.raises(CrossValidationError, match="validated by another fold too"):
        cross_validations(tmp_path)


def test_a_sweep_without_folds_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "0" / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=0.001\n")
    (tmp_path / "0" / "split.json").write_text(json.dumps({"train": IDS[:8], "val": IDS[8:]}))
    with pytest.raises(CrossValidationError, match=r"data\.split\.folds=5"):
        cross_validations(tmp_path)
