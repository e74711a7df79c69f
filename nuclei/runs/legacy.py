"""Read runs written before the package was layered (checkpoints and ``.hydra`` configs).

Their configurations name the old module paths (``nuclei.task.SegmentationTask``), keep the
data settings flat (``data.image_size``) and build the task from top-level ``model``,
``optimizer`` and ``scheduler`` sections. :func:`upgrade_run_config` rewrites such a config
into today's shape; a current config passes through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nuclei.data.legacy_keys import upgrade_data_section

log = logging.getLogger(__name__)

#: Old ``_target_`` paths and where the same object lives now.
MOVED_TARGETS = {
    "nuclei.task.SegmentationTask": "nuclei.training.task.SegmentationTask",
    "nuclei.data.datamodule.NucleiDataModule": "nuclei.data.datamodule.NucleiDataModule",
    "nuclei.safeguards.CheckpointOnException": (
        "nuclei.training.callbacks.safety.CheckpointOnException"
    ),
    "nuclei.safeguards.StopOnNonFiniteLoss": "nuclei.training.callbacks.safety.StopOnNonFiniteLoss",
    "nuclei.safeguards.AtomicCheckpointIO": "nuclei.runs.atomic.AtomicCheckpointIO",
}
#: Old flat task keys that are now settings of the loss (``task.loss``).
LOSS_KEYS = ("pos_weight", "channel_weights", "dice_weight")
#: Old task keys that no longer configure the task.
DROPPED_TASK_KEYS = ("num_logged_images",)


def _retarget(node: Any) -> Any:
    """``node`` with every moved ``_target_`` replaced, recursively."""
    if isinstance(node, Mapping):
        out = {key: _retarget(value) for key, value in node.items()}
        if out.get("_target_") in MOVED_TARGETS:
            out["_target_"] = MOVED_TARGETS[out["_target_"]]
        return out
    if isinstance(node, list):
        return [_retarget(item) for item in node]
    return node


def _upgrade_task(config: dict[str, Any]) -> dict[str, Any]:
    """An old flat task section, with its network, optimizer and scheduler nested in it."""
    task = dict(config["task"])
    if "net" in task:
        return task
    task["_recursive_"] = False
    task["net"] = config.get("model")
    task["optimizer"] = config.get("optimizer")
    task["scheduler"] = config.get("scheduler")
    task["loss"] = {key: task.pop(key) for key in LOSS_KEYS if key in task}
    for key in DROPPED_TASK_KEYS:
        task.pop(key, None)
    return task


def upgrade_run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved run config (plain containers) in today's shape."""
    upgraded = _retarget(dict(config))
    if "task" in upgraded and "net" not in upgraded["task"]:
        log.info("Reading a run config written before nuclei 0.2's layout; upgrading it")
        upgraded["task"] = _upgrade_task(upgraded)
    if "data" in upgraded:
        data = dict(upgraded["data"])
        target = data.pop("_target_", None)
        upgraded["data"] = (
            {"_target_": target, **upgrade_data_section(data)}
            if target
            else (upgrade_data_section(data))
        )
    return upgraded
