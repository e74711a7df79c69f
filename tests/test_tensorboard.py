"""A real TensorBoard server on 127.0.0.1 shows a run's scalars, image grid and hparams row."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nuclei.train import train

TENSORBOARD = Path(sys.executable).parent / "tensorboard"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def logged_run(train_config, tmp_path: Path) -> Path:
    cfg = train_config("trainer.max_epochs=2", "data.image_size=32")
    train(cfg)
    return Path(cfg.paths.output_dir)


@pytest.fixture
def tensorboard_url(logged_run: Path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(TENSORBOARD),
            "--logdir",
            str(logged_run.parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast",
            "false",
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(f"{url}/data/runs"):
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail("TensorBoard did not list the run within 60 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


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

    groups = get(
        f"{tensorboard_url}/data/plugin/hparams/session_groups",
        {
            "experimentName": "",
            "allowedStatuses": [
                "STATUS_UNKNOWN",
                "STATUS_SUCCESS",
                "STATUS_FAILURE",
                "STATUS_RUNNING",
            ],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 10,
        },
    )
    (group,) = groups["sessionGroups"]
    assert group["hparams"]["model/base_channels"] == 8
    metric_values = {v["name"]["tag"]: v["value"] for v in group["metricValues"]}
    assert 0.0 <= metric_values["hp/val_iou"] <= 1.0
