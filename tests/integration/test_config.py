"""Every config group option composes, and what it names can be instantiated."""

from pathlib import Path

import nuclei.conf
import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

CONF_DIR = Path(nuclei.conf.__file__).parent
GROUPS = ["data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger"]
# Options for nuclei-eval only (they inherit the run's data): tested in test_evaluate.py.
EVAL_ONLY = {("data", "shifted"), ("data", "heldout")}
OPTIONS = [
    (group, path.stem)
    for group in GROUPS
    for path in sorted((CONF_DIR / group).glob("*.yaml"))
    if (group, path.stem) not in EVAL_ONLY
]


def compose_train(*overrides: str):
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose("train", overrides=list(overrides), return_hydra_config=False)


def test_every_group_has_options() -> None:
    assert {group for group, _ in OPTIONS} == set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group: str, option: str, tmp_path: Path) -> None:
    cfg = compose_train(f"{group}={option}", f"paths.output_dir={tmp_path}")
    node = cfg[group]
    OmegaConf.resolve(cfg)
    if group in ("callbacks", "logger"):
        objects = [instantiate(entry) for entry in node.values() if entry]
        assert objects
    elif group == "trainer":
        assert node._target_ == "lightning.pytorch.Trainer"  # GPU presets cannot start here
    elif group in ("optimizer", "scheduler"):
        assert callable(instantiate(node))
    elif group == "model":
        assert sum(p.numel() for p in instantiate(node).parameters()) > 0
    else:
        assert instantiate(node).loader.batch_size > 0


def test_defaults_are_offline_and_sensible() -> None:
    cfg = compose_train()
    assert cfg.data.source.root is None  # synthetic set, no download
    assert cfg.data.size.image_size == 128 and cfg.data.split.val_fraction == 0.2
    assert compose_train("model=smp_unet").model.encoder_weights is None
    assert cfg.callbacks.model_checkpoint.monitor == "val/iou"
