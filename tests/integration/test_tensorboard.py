"""A real TensorBoard server on 127.0.0.1 shows a run's scalars, image grid and hparams row."""

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.tensorboard_server import SESSION_GROUPS_QUERY, get, tensorboard_server

from nuclei.cli.train import train


@pytest.fixture
def logged_run(train_config, tmp_path: Path) -> Path:
    cfg = train_config("trainer.max_epochs=2", "data.size.image_size=32")
    train(cfg)
    return Path(cfg.paths.output_dir)


@pytest.fixture
def tensorboard_url(logged_run: Path) -> Iterator[str]:
    with tensorboard_server(logged_run.parent) as url:
        yield url


def test_tensorboard_serves_scalars_images_and_hparams(tensorboard_url: str) -> None:
    runs = get(f"{tensorboard_url}/data/runs")
    assert runs == ["run"]
    scalar_tags = get(f"{tensorboard_url}/data/plugin/scalars/tags")["run"]
    assert {"val/loss", "val/acc", "val/iou", "val/dice", "train/loss_step"} <= set(scalar_tags)
    query = urllib.parse.urlencode({"run": "run", "tag": "val/iou"})
    points = get(f"{tensorboard_url}/data/plugin/scalars/scalars?{query}")
    assert [step for _, step, _ in points] == sorted(step for _, step, _ in points)
    assert len(points) == 2 and all(0.0 <= value <= 1.0 for _, _, value in points)

    image_tags = get(f"{tensorboard_url}/data/plugin/images/tags")["run"]
    assert "val/prediction_grid" in image_tags

    groups = get(f"{tensorboard_url}/data/plugin/hparams/session_groups", SESSION_GROUPS_QUERY)
    (group,) = groups["sessionGroups"]
    assert group["hparams"]["model/base_channels"] == 8
    metric_values = {v["name"]["tag"]: v["value"] for v in group["metricValues"]}
    assert 0.0 <= metric_values["hp/val_iou"] <= 1.0
