"""Training settings that cannot train are refused from the composed config, before any data
is read: each in one line naming the key and what is expected."""

from __future__ import annotations

import pytest
import torch

from nuclei.models.unet import build_unet
from nuclei.training import config_checks
from nuclei.training.config_checks import (
    TrainingConfigError,
    check_training_config,
    training_step_bytes,
)

MiB = 2**20


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("trainer.max_epochs=-1",),  # no limit: early stopping, max_steps or max_time ends it
        ("trainer.max_epochs=null", "+trainer.max_steps=10"),
        ("optimizer=sgd", "optimizer.lr=1e-5"),
        ("data.size.mode=crop", "data.size.crop_size=64"),
    ],
    ids=lambda o: " ".join(o) or "defaults",
)
def test_settings_that_train_are_accepted(train_config, overrides: tuple[str, ...]) -> None:
    check_training_config(train_config(*overrides))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (("trainer.max_epochs=-5",), r"^trainer\.max_epochs must be an integer >= 1.* -1 .*-5"),
        (("trainer.max_epochs=0",), r"^trainer\.max_epochs must be .*got 0"),
        (("optimizer.lr=-1",), r"^optimizer\.lr must be a number > 0.*-1"),
        (("optimizer.lr=0",), r"^optimizer\.lr must be a number > 0"),
        (("optimizer.lr=nan",), r"^optimizer\.lr must be a number > 0"),
        (("model.base_channels=0",), r"^model\.base_channels must be an integer >= 1, got 0"),
        (("model.depth=0",), r"^model\.depth must be an integer >= 1, got 0"),
        (
            ("model.depth=12",),
            r"^data\.size\.image_size=64 is smaller than the network's stride, 4096 px "
            r"\(model\.depth=12\)",
        ),
        (
            ("data.size.mode=crop", "data.size.crop_size=7"),
            r"^data\.size\.crop_size=7 is smaller than the network's stride, 8 px "
            r"\(model\.depth=3\).*data\.size\.crop_size >= 8",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_a_value_that_cannot_train_is_refused_naming_its_key(
    train_config, overrides: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(TrainingConfigError, match=expected) as refused:
        check_training_config(train_config(*overrides))
    assert "\n" not in str(refused.value)


def test_an_smp_network_is_measured_by_its_encoder_depth(train_config) -> None:
    check_training_config(train_config("model=smp_unet", small_unet=False))
    too_small = train_config("model=smp_unet", "data.size.image_size=16", small_unet=False)
    expected = r"^data\.size\.image_size=16 .* stride, 32 px \(model\.encoder_depth=5\)"
    with pytest.raises(TrainingConfigError, match=expected):
        check_training_config(too_small)


def test_a_step_larger_than_the_memory_available_is_refused_with_both_figures(
    train_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = train_config(small_unet=False)
    check_training_config(cfg)
    monkeypatch.setattr(config_checks, "available_memory", lambda: 64 * MiB)
    with pytest.raises(TrainingConfigError) as refused:
        check_training_config(cfg)
    message = str(refused.value)
    assert message.startswith("a training step needs about ") and "\n" not in message
    assert "more than the 0.06 GiB of memory available" in message
    for key in ("data.loader.batch_size=4", "data.size.image_size=64", "model.base_channels"):
        assert key in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_a_gpu_trainer_without_a_gpu_is_refused(train_config) -> None:
    with pytest.raises(TrainingConfigError, match=r"^trainer\.accelerator=gpu, .*no GPU"):
        check_training_config(train_config("trainer=gpu"))


def test_a_batch_no_machine_holds_is_refused_here(train_config) -> None:
    with pytest.raises(TrainingConfigError, match=r"needs about [\d.]+ GiB .* available"):
        check_training_config(train_config("data.loader.batch_size=10000000"))


def test_the_step_estimate_is_near_what_a_step_takes() -> None:
    """The default U-Net, 8 images of 128^2 px: a CPU step with Adam grew the peak resident
    memory by 313 MiB (968 MiB at 256^2)."""
    with torch.device("meta"):
        net = build_unet(in_channels=3, out_channels=1, depth=4, base_channels=16)
    small = training_step_bytes(net, batch=8, channels=3, side=128)
    large = training_step_bytes(net, batch=8, channels=3, side=256)
    assert 250 * MiB < small < 500 * MiB
    assert 800 * MiB < large < 1500 * MiB
    assert training_step_bytes(net, batch=16, channels=3, side=128) > 1.8 * small - 50 * MiB
