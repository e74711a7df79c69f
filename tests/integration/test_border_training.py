"""A border-target run end to end: train, tune, eval and predict with the marker watershed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import open_dict

import nuclei.api.segmenter
import nuclei.cli.predict
import nuclei.inference.postprocess_pool
import nuclei.training.task
from nuclei.cli import tune
from nuclei.cli.evaluate import evaluate
from nuclei.cli.predict import predict
from nuclei.cli.train import train


@pytest.fixture
def spy_postprocess(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, str]]:
    """Record (channels, target, split) of every instances_from_maps call of task/predict."""
    calls: list[tuple[int, str, str]] = []
    real = nuclei.training.task.instances_from_maps

    def spy(maps, config=None, target="binary"):
        calls.append((np.asarray(maps).shape[0], target, config.split))
        return real(maps, config, target)

    monkeypatch.setattr(nuclei.training.task, "instances_from_maps", spy)
    monkeypatch.setattr(nuclei.api.segmenter, "instances_from_maps", spy)
    # nuclei-predict's postprocessing, when it runs in this process (postprocess_workers=0)
    monkeypatch.setattr(nuclei.inference.postprocess_pool, "instances_from_maps", spy)
    return calls


def compose_in(config: str, out: Path, *overrides: str):
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(config, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def test_border_run_trains_tunes_evaluates_and_predicts(
    train_config, synthetic_root: Path, tmp_path: Path, spy_postprocess, capsys
) -> None:
    cfg = train_config("data.target.kind=border", "task.map_every_n_epochs=1", "optimizer.lr=3e-3")
    assert cfg.model.out_channels == 2 and cfg.task.target == "border"
    summary = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val/loss", "val/acc", "val/iou", "val/dice", "val/map", "val/n_merged"):
        assert key in metrics
    ckpt = Path(summary["best_checkpoint"])
    assert ckpt.is_file()
    assert (2, "border", "auto") in spy_postprocess  # val/map went through the border maps

    spy_postprocess.clear()
    record = evaluate(
        compose_in("eval", tmp_path / "eval", f"ckpt_path={ckpt}", "progress_bar=false")
    )
    assert record["target"] == "border" and record["val/iou"] == pytest.approx(metrics["val/iou"])
    assert spy_postprocess and all(c[:2] == (2, "border") for c in spy_postprocess)

    grid = ["grid.threshold=[0.4,0.5]", "grid.border_threshold=[0.3,0.6]"]
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        tune_cfg = compose("tune", overrides=[f"ckpt_path={ckpt}", *grid, "progress_bar=false"])
    tune.main(tune_cfg)
    printed = capsys.readouterr().out
    assert "Postprocessing grid (4 settings" in printed and "border_threshold" in printed
    tuned = json.loads((run_dir / "postprocess.json").read_text())
    assert tuned["settings"]["split"] == "markers" and len(tuned["grid"]) == 4
    best = tuned["grid"][0]["settings"]

    record = evaluate(
        compose_in("eval", tmp_path / "eval2", f"ckpt_path={ckpt}", "progress_bar=false")
    )
    assert record["postprocess"]["split"] == "markers"
    assert record["postprocess"]["border_threshold"] == best["border_threshold"]
    assert record["val/map"] == pytest.approx(tuned["best"]["map"], abs=1e-6)

    spy_postprocess.clear()
    images = sorted(synthetic_root.glob("*/images/*.png"))[:2]
    folder = tmp_path / "input"
    folder.mkdir()
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    out = tmp_path / "pred"
    report = predict(
        compose_in(
            "predict",
            tmp_path / "p",
            f"ckpt_path={ckpt}",
            f"input={folder}",
            f"output={out}",
            "progress_bar=false",
            "postprocess_workers=0",  # in this process, where the spy sees it
        )
    )
    assert len(report.images) == 2 and not report.failures
    assert spy_postprocess == [(2, "border", "markers")] * 2
    assert (out / f"{images[0].stem}_labels.tif").is_file()
