"""How many images a prediction hands the network at once."""

import torch

from nuclei.inference.settings import PredictionSettings


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
