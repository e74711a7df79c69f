"""How many images a prediction hands the network at once; the size mode chosen once, as a
strategy; one device mapping for every Trainer.

Network inputs made ahead of the network (in DataLoader workers) give the same maps as those
made beside it, in both size modes; the prediction's dataset serves them."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from nuclei.data.config import IntensityConfig
from nuclei.inference.probabilities import (
    CropMode,
    DeviceError,
    PredictionSettings,
    ResizeMode,
    choose_size_mode,
    trainer_device,
)
from nuclei.inference.segment import ImageFiles, ImageFilesDataModule


def settings(size_mode: str, device: str) -> PredictionSettings:
    return PredictionSettings(
        size_mode=size_mode,
        image_size=128,
        tile=None,
        overlap=None,
        batch_size=8,
        device=torch.device(device),
    )


def test_native_images_go_one_at_a_time_on_the_cpu_and_in_batches_elsewhere() -> None:
    assert settings("crop", "cpu").images_per_batch == 1  # each image finished when mapped
    assert settings("crop", "cuda").images_per_batch == 8  # windows share passes on a GPU
    assert settings("resize", "cpu").images_per_batch == 8  # small resized copies batch


def test_the_size_mode_is_chosen_once_and_checked_in_one_place() -> None:
    assert settings("resize", "cpu").mode == ResizeMode(128)
    assert settings("crop", "cpu").mode == CropMode(None, None)
    assert choose_size_mode("crop", 96, tile=256) == CropMode(256, None)
    assert "256 px tiles overlapping by the receptive field" in CropMode(256).describe()
    with pytest.raises(ValueError, match="size_mode must be one of"):
        settings("warp", "cpu")
    with pytest.raises(ValueError, match="size_mode=resize needs image_size"):
        choose_size_mode("resize", None)


def test_one_device_mapping_serves_every_trainer() -> None:
    assert trainer_device("auto") == {"accelerator": "auto", "devices": 1}
    cpu = {"accelerator": "cpu", "devices": 1}
    assert trainer_device("cpu") == trainer_device(torch.device("cpu")) == cpu
    assert trainer_device(torch.device("cuda", 1)) == {"accelerator": "gpu", "devices": [1]}
    assert trainer_device(torch.device("cuda")) == {"accelerator": "gpu", "devices": [0]}
    with pytest.raises(DeviceError, match="device must be auto, cpu, cuda or cuda:N, got 'cpu:0'"):
        trainer_device("cpu:0")
    with pytest.raises(DeviceError, match="device=tpu: not a device"):
        trainer_device("tpu")


PERCENTILE = IntensityConfig(normalize="percentile", low=1.0, high=99.8)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval()


def images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in [(40, 52, 3)] * 2]


def settings_for(size_mode: str) -> PredictionSettings:
    return PredictionSettings(
        size_mode=size_mode,
        image_size=32,
        tile=None,
        overlap=None,
        batch_size=2,
        device=torch.device("cpu"),
        intensity=PERCENTILE,
    )


@pytest.mark.parametrize("size_mode", ["resize", "crop"])
def test_maps_from_inputs_made_beforehand_equal_the_maps_made_beside(size_mode: str) -> None:
    settings, pictures, net = settings_for(size_mode), images(), small_net()
    inputs = [settings.network_input(picture) for picture in pictures]
    expected_side = 32 if size_mode == "resize" else 40
    assert inputs[0].shape == (3, expected_side, 32 if size_mode == "resize" else 52)
    beside = settings.probabilities(net, pictures)
    ahead = settings.probabilities(net, pictures, inputs=inputs)
    assert len(ahead) == 2
    for made_ahead, made_beside in zip(ahead, beside, strict=True):
        assert made_ahead.shape == (2, 40, 52)
        np.testing.assert_array_equal(made_ahead, made_beside)


def test_the_dataset_serves_each_image_with_its_network_input(tmp_path: Path) -> None:
    pictures = images(seed=1)
    paths = []
    for index, picture in enumerate(pictures):
        paths.append(tmp_path / f"im{index}.png")
        Image.fromarray(picture).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    settings = settings_for("crop")
    served = ImageFiles([*paths, tmp_path / "broken.png"], 10**8, settings.network_input)
    for item, picture in zip(served, pictures, strict=False):
        np.testing.assert_array_equal(item.loaded.image, picture)
        assert torch.equal(item.network_input, settings.network_input(picture))
    broken = served[2]
    assert broken.network_input is None and "broken.png" in broken.loaded.error
    assert ImageFiles(paths, 10**8)[0].network_input is None  # nothing to prepare


def test_network_inputs_cross_from_a_worker_process(tmp_path: Path) -> None:
    path = tmp_path / "im.png"
    picture = images(seed=2)[0]
    Image.fromarray(picture).save(path)
    settings = settings_for("crop")
    module = ImageFilesDataModule([path], 10**8, 1, workers=1, prepare=settings.network_input)
    loader: DataLoader = module.predict_dataloader()
    (batch,) = list(loader)
    assert torch.equal(batch[0].network_input, settings.network_input(picture))
