"""Every named experiment and debug preset composes and runs (debug=fdr) on the CPU."""

import json
from pathlib import Path

import nuclei.conf
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from nuclei.cli.train import train

CONF_DIR = Path(nuclei.conf.__file__).parent
EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
DEBUG_PRESETS = sorted(path.stem for path in (CONF_DIR / "debug").glob("*.yaml"))


def compose_train(*overrides: str):
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose("train", overrides=list(overrides))


def test_the_issue_experiments_and_debug_presets_exist() -> None:
    assert {
        "unet_128_hflip",
        "unet_transposed",
        "mobilenetv2_unet_frozen",
        "adam_bce_10ep",
        "default",
    } <= set(EXPERIMENTS)
    assert {"fdr", "overfit", "limit", "profiler"} <= set(DEBUG_PRESETS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_under_fast_dev_run(experiment: str, train_config) -> None:
    cfg = train_config(f"experiment={experiment}", "debug=fdr", small_unet=False)
    assert cfg.trainer.fast_dev_run is True
    summary = train(cfg)
    assert summary["global_step"] == 1  # one training batch, then stop
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert 0.0 <= metrics["val/iou"] <= 1.0 and metrics["val/loss"] > 0.0


def test_experiments_set_what_their_names_say() -> None:
    hflip = compose_train("experiment=unet_128_hflip")
    assert (
        hflip.data.size.image_size == 128
        and hflip.data.augmentation.hflip
        and hflip.model.upsampling == "bilinear"
    )
    assert hflip.task.loss.pos_weight is None and "scheduler" not in hflip
    assert hflip.task.scheduler is None  # the task follows the scheduler group
    transposed = compose_train("experiment=unet_transposed")
    assert transposed.model.upsampling == "transposed" and transposed.data.size.image_size == 128
    frozen = compose_train("experiment=mobilenetv2_unet_frozen")
    assert frozen.model.encoder_name == "mobilenet_v2" and frozen.model.freeze_encoder
    assert frozen.model.encoder_weights is None  # offline: no download
    assert frozen.data.loader.batch_size == 10 and frozen.trainer.max_epochs == 100
    assert frozen.data.split.val_fraction == 0.2
    assert frozen.callbacks.early_stopping.monitor == "val/loss"
    ten = compose_train("experiment=adam_bce_10ep")
    assert ten.trainer.max_epochs == 10 and ten.optimizer._target_ == "torch.optim.Adam"
    assert compose_train("experiment=default") == compose_train()


@pytest.mark.parametrize("preset", DEBUG_PRESETS)
def test_debug_preset_composes_over_an_experiment(preset: str) -> None:
    cfg = compose_train("experiment=unet_128_hflip", f"debug={preset}")
    trainer = cfg.trainer
    assert any(
        key in trainer
        for key in ("fast_dev_run", "overfit_batches", "limit_train_batches", "profiler")
    )
    assert cfg.model.upsampling == "bilinear"  # the experiment is kept


def test_limit_preset_really_runs_few_batches(train_config) -> None:
    cfg = train_config("debug=limit", "data.loader.batch_size=2", "task.map_every_n_epochs=0")
    summary = train(cfg)
    assert summary["epochs"] == 2 and summary["global_step"] == 8  # 2 epochs x 4 batches


def flat_keys(tree: object, prefix: str = "") -> dict[str, object]:
    """A config, as a plain container, flattened to ``{"dotted.key": leaf}``."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat.update(flat_keys(value, f"{prefix}{key}."))
    return flat


def leaves(experiment: str) -> dict[str, object]:
    """Leaves of ``experiment=NAME``, interpolations left as written."""
    return flat_keys(OmegaConf.to_container(compose_train(f"experiment={experiment}")))


def test_instance_and_binary_twins_differ_only_in_target_and_postprocessing() -> None:
    binary = leaves("binary_unet")
    instance = leaves("instance_unet")
    differing = {
        key for key in binary.keys() | instance.keys() if binary.get(key) != instance.get(key)
    }
    assert differing, "the twins must differ somewhere"
    assert all(
        key.startswith(("data.target.kind", "data.target.border_width", "postprocess."))
        for key in differing
    ), differing
    assert binary["data.target.kind"] == "binary" and instance["data.target.kind"] == "border"
    assert binary["postprocess.split"] == "none" and instance["postprocess.split"] == "markers"
    assert binary["trainer.max_epochs"] == instance["trainer.max_epochs"] == 20
