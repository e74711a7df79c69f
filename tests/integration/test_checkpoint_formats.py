"""Checkpoints of every layout load: one written by nuclei 0.1 (before the package was
layered) still evaluates and predicts, and a new one rebuilds through Lightning alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module
from omegaconf import open_dict

from nuclei.cli.evaluate import evaluate
from nuclei.cli.predict import predict
from nuclei.runs.checkpoint import load_run, restore_task
from nuclei.training.task import SegmentationTask

#: Written by `python -m nuclei.train` of nuclei 0.1 (commit b86085a): U-Net base 4, depth 2,
#: 32 px, one epoch on a 12-image synthetic set; flat data keys, task built from top-level
#: model/optimizer sections.
LEGACY_CHECKPOINT = (
    Path(__file__).resolve().parents[1] / "support" / "data" / "nuclei-0.1-unet.ckpt"
)


def compose_for(config_name: str, out_dir: Path, *overrides: str):
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(config_name, overrides=["progress_bar=false", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    return cfg


def test_a_0_1_checkpoint_is_read_in_todays_shape() -> None:
    stored = torch.load(LEGACY_CHECKPOINT, weights_only=True)["nuclei_config"]
    assert "image_size" in stored["data"] and "net" not in stored["task"]  # the old shape
    run = load_run(LEGACY_CHECKPOINT)
    assert run.config.data.size.image_size == 32 and run.config.data.source.synthetic_images == 12
    assert run.config.task.net.base_channels == 4 and run.config.task.loss.pos_weight is None
    assert run.config.task._target_ == "nuclei.training.task.SegmentationTask"
    task = restore_task(run)
    assert isinstance(task, SegmentationTask) and task.target == "binary"


def test_a_0_1_checkpoint_evaluates_and_predicts(synthetic_root: Path, tmp_path: Path) -> None:
    # A copy: nuclei-eval writes its results beside the checkpoint, not into the source tree.
    checkpoint = Path(shutil.copy(LEGACY_CHECKPOINT, tmp_path / LEGACY_CHECKPOINT.name))
    evaluation = evaluate(
        compose_for(
            "eval",
            tmp_path / "eval",
            f"ckpt_path={checkpoint}",
            f"data.source.root={synthetic_root}",
        )
    )
    assert evaluation["n_images"] == 2 and 0.0 <= evaluation["val/iou"] <= 1.0
    assert np.isfinite(evaluation["val/loss"]) and "val/map" in evaluation
    out = tmp_path / "predicted"
    report = predict(
        compose_for(
            "predict",
            tmp_path / "predict",
            f"ckpt_path={checkpoint}",
            f"input={synthetic_root}",
            f"output={out}",
        )
    )
    assert len(report.images) == 12 and not report.failures
    assert (out / "summary.csv").is_file()
    assert any(tmp_path.glob(f"{checkpoint.stem}.val.*.eval.json"))  # written beside the copy


def test_a_new_checkpoint_rebuilds_with_lightning_alone(trained_run: Path) -> None:
    best = Path(json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"])
    task = SegmentationTask.load_from_checkpoint(best, map_location="cpu").eval()
    restored = restore_task(load_run(best))
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(task(image), restored(image))
    assert task.hparams.net["base_channels"] == 8  # the network's config travels
