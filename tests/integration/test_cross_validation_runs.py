"""A real 3-fold cross-validation sweep, then out-of-fold evaluation and tuning, and
ensembles of its checkpoints (nuclei-eval, nuclei.Segmenter)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, open_dict
from PIL import Image
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

from nuclei.api.segmenter import Segmenter
from nuclei.cli.evaluate import EvaluationError, evaluate
from nuclei.cli.evaluate_folds import evaluate_out_of_fold
from nuclei.cli.tune import tune_out_of_fold
from nuclei.runs.members import checkpoints_of
from nuclei.runs.sweep import summarize
from nuclei.runs.sweep_groups import group_runs

FOLDS = 3
pytestmark = pytest.mark.slow  # a 3-run sweep and a dozen evaluations: make test-slow, .ci/run


@pytest.fixture(scope="module")
def cv_sweep(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """A 3-fold cross-validation of short real runs on the 12-image set."""
    work = tmp_path_factory.mktemp("cv")
    sweep = work / "sweep"
    command = [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        "-m",
        f"data.split.folds={FOLDS}",
        f"data.split.fold=range({FOLDS})",
        *FAST_TRAIN_OVERRIDES,
        *SMALL_UNET_OVERRIDES,
        "optimizer.lr=1e-2",
        "data.loader.batch_size=2",
        "task.map_every_n_epochs=0",
        f"data.source.root={synthetic_root}",
        f"paths.cache_dir={work / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep


def composed(name: str, *overrides: str, output_dir: Path | None = None) -> DictConfig:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(name, overrides=["progress_bar=false", "device=cpu", *overrides])
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


def fold_split(sweep: Path, fold: int) -> dict:
    for split_file in sweep.glob("*/split.json"):
        record = json.loads(split_file.read_text())
        if record["fold"] == fold:
            return record
    raise AssertionError(f"no run of fold {fold}")


def test_out_of_fold_scores_every_image_once_with_a_model_that_did_not_train_on_it(
    cv_sweep: Path, tmp_path: Path
) -> None:
    out = tmp_path / "oof"
    result = evaluate_out_of_fold(
        composed("eval", f"ckpt_path={cv_sweep}", "out_of_fold=true", f"output={out}")
    )
    [record] = result["cross_validations"]
    assert record["configuration"] == "all" and record["n_folds"] == FOLDS
    with (out / "cv_images.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    all_ids = fold_split(cv_sweep, 0)["train"] + fold_split(cv_sweep, 0)["val"]
    assert sorted(row["id"] for row in rows) == sorted(all_ids)  # each image exactly once
    for row in rows:
        split = fold_split(cv_sweep, int(row["fold"]))
        assert row["id"] in split["val"] and row["id"] not in split["train"]
    assert record["cv/n_images"] == len(all_ids)
    assert record["cv/map"] == pytest.approx(np.mean([float(r["map"]) for r in rows]), abs=1e-6)

    # Each fold's share equals what its own run scored on its validation fold.
    for fold in record["folds"]:
        run_dir = Path(fold["checkpoint"]).parent.parent
        final = json.loads((run_dir / "metrics.json").read_text())
        for name in ("iou", "acc", "map", "ap50"):
            assert fold[name] == pytest.approx(final[f"val/{name}"], abs=1e-4), name
    assert json.loads((cv_sweep / "cv_metrics.json").read_text()) == result


def test_out_of_fold_tuning_is_stored_in_every_fold_run(cv_sweep: Path) -> None:
    cfg = composed("tune", f"ckpt_path={cv_sweep}", "out_of_fold=true", "grid.threshold=[0.3,0.6]")
    [record] = tune_out_of_fold(cfg)
    assert record["tuned_on"] == "out-of-fold" and record["n_images"] == 12
    assert len(record["checkpoints"]) == FOLDS and len(record["grid"]) == 2
    for run_dir in sorted(p.parent for p in cv_sweep.glob("*/split.json")):
        stored = json.loads((run_dir / "postprocess.json").read_text())
        assert stored == record
    # nuclei-eval then scores with them and says where they came from
    out = cv_sweep.parent / "eval-tuned"
    [checkpoint, *_] = checkpoints_of(cv_sweep)
    scored = evaluate(composed("eval", f"ckpt_path={checkpoint}", f"output={out}"))
    assert scored["postprocess_source"] == "tuned on out-of-fold"
    assert scored["postprocess"]["threshold"] == record["settings"]["threshold"]


def test_an_ensemble_of_identical_checkpoints_equals_the_single_model(
    cv_sweep: Path, tmp_path: Path, synthetic_root: Path
) -> None:
    checkpoint = checkpoints_of(cv_sweep)[0]
    single = evaluate(composed("eval", f"ckpt_path={checkpoint}", f"output={tmp_path / 'a'}"))
    twice = f"ckpt_path=[{checkpoint},{checkpoint}]"
    ensemble = evaluate(composed("eval", twice, f"output={tmp_path / 'b'}"))
    assert ensemble["ensemble"] == 2 and single["ensemble"] == 1
    for key in ("val/iou", "val/acc", "val/map", "val/ap50", "val/n_merged"):
        assert ensemble[key] == pytest.approx(single[key], abs=1e-6), key

    image = np.asarray(Image.open(next(synthetic_root.glob("*/images/*.png"))))
    alone = Segmenter.from_checkpoint(checkpoint, device="cpu")
    doubled = Segmenter.from_checkpoint([checkpoint, checkpoint], device="cpu")
    np.testing.assert_allclose(doubled.probabilities(image), alone.probabilities(image), atol=1e-5)
    assert np.array_equal(doubled.segment(image), alone.segment(image))
    assert doubled.describe()["ensemble"] == [str(checkpoint)] * 2


def test_an_ensemble_of_the_folds_is_refused_on_their_validation_splits(cv_sweep: Path) -> None:
    cfg = composed("eval", f"ckpt_path={cv_sweep}", "split=val")
    with pytest.raises(EvaluationError, match="trained on different splits"):
        evaluate(cfg)


def test_an_ensemble_of_the_folds_scores_a_test_split(cv_sweep: Path, tmp_path: Path) -> None:
    fold_root = Path(fold_split(cv_sweep, 0)["root"])
    cfg = composed(
        "eval", f"ckpt_path={cv_sweep}", f"data.source.test_root={fold_root}", f"output={tmp_path}"
    )
    record = evaluate(cfg)
    assert record["split"] == "test" and record["ensemble"] == FOLDS
    assert len(record["checkpoints"]) == FOLDS
    assert 0.0 <= record["test/iou"] <= 1.0 and record["n_images"] == 12
    interval = record["map_interval"]  # bootstrap over the 12 images
    assert interval["low"] <= record["test/map"] <= interval["high"]
    assert interval["confidence"] == 0.95
    assert json.loads((tmp_path / "eval_metrics.json").read_text())["ensemble"] == FOLDS


def test_labelled_evaluations_of_the_folds_are_grouped_by_nuclei_summarize(
    cv_sweep: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    scored = []
    for checkpoint in checkpoints_of(cv_sweep):
        cfg = composed(
            "eval",
            f"ckpt_path={checkpoint}",
            f"data.source.test_root={synthetic_root}",
            "label=heldout",
            f"output={tmp_path / checkpoint.parent.parent.name}",
        )
        scored.append(evaluate(cfg)["test/map"])
        assert checkpoint.with_name(f"{checkpoint.stem}.test.heldout.eval.json").is_file()
    [group] = group_runs(summarize(cv_sweep))
    assert len(group.runs) == FOLDS
    interval = group.interval("test.heldout/map", 0.95)
    assert interval.n == FOLDS
    assert interval.mean == pytest.approx(np.mean(scored), abs=1e-6)
    with pytest.raises(EvaluationError, match="label may hold"):
        evaluate(composed("eval", f"ckpt_path={checkpoint}", "label=a/b"))
