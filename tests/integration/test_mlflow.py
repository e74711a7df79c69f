"""``logger=mlflow``: a real training run, read back with MLflow's own client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

from nuclei.cli.train import train
from nuclei.training.mlflow_logger import ALLOW_FILE_STORE, RUN_DIR_TAG, run_name

mlflow = pytest.importorskip("mlflow")


def test_a_run_is_tracked_in_a_local_mlflow_store(
    train_config: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_FILE_STORE, "")  # restored afterwards; the logger sets it
    monkeypatch.delenv(ALLOW_FILE_STORE)
    cfg = train_config("logger=mlflow", f"paths.root_dir={tmp_path}")
    summary = train(cfg)

    store = tmp_path / "mlruns"
    assert store.is_dir()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))  # TensorBoard as well
    client = mlflow.tracking.MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("train")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"
    assert run.data.tags[RUN_DIR_TAG] == str((tmp_path / "run").resolve())

    metrics = run.data.metrics
    # The training curves under their own names, '/' included...
    assert {"val/iou", "val/loss", "train/loss_epoch"} <= metrics.keys()
    assert len(client.get_metric_history(run.info.run_id, "val/iou")) == 2  # one per epoch
    # ...and the best checkpoint's final figures, as TensorBoard's HPARAMS row has them.
    assert metrics["hp/val_iou"] == pytest.approx(summary["val/iou"])
    assert metrics["hp/val_dice"] == pytest.approx(summary["val/dice"])

    params = run.data.params
    assert params["trainer/max_epochs"] == "2"
    assert params["seed"] == str(cfg.seed)
    assert params["task/net/base_channels"] == "8"
    assert params["data/size/image_size"] == "64"


def test_run_names_are_the_folders_under_the_outputs_root(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    assert run_name(root / "train" / "2026-01-02_03-04-05", root) == "train/2026-01-02_03-04-05"
    assert run_name(root / "train-multirun" / "t" / "3", root) == "train-multirun/t/3"
    elsewhere = tmp_path / "elsewhere" / "run"
    assert run_name(elsewhere, root) == str(elsewhere.resolve())


def test_logger_mlflow_without_mlflow_is_one_line(synthetic_root: Path, tmp_path: Path) -> None:
    """With the mlflow package missing, ``nuclei-train logger=mlflow`` says what to install."""
    arguments = [
        *FAST_TRAIN_OVERRIDES,
        *SMALL_UNET_OVERRIDES,
        f"data.source.root={synthetic_root}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "logger=mlflow",
    ]
    program = (
        "import sys; sys.modules['mlflow'] = None; "  # what an environment without it sees
        f"sys.argv = ['nuclei-train', *{arguments!r}]; "
        "from nuclei.cli.train import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("nuclei-train:")]
    assert line.endswith("which is not installed: pip install 'nuclei[mlflow]' (or mlflow-skinny)")
    assert "logger=mlflow" in line
    assert not (tmp_path / "outputs" / "mlruns").exists()
