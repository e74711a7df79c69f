"""The objective: the one metric (and direction) that says which run or checkpoint is best.

``conf/train.yaml`` takes it from here (``objective: default``); the best-checkpoint and
early-stopping callbacks monitor ``${objective.metric}``, ``nuclei-train`` returns its final
value to sweepers, and ``nuclei-summarize`` sorts runs by it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

MODES = ("min", "max")


@dataclass
class Objective:
    """A logged metric and whether lower (``min``) or higher (``max``) is better."""

    metric: str = "val/iou"
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"objective.mode must be one of {MODES}, got {self.mode!r}")

    @classmethod
    def of(cls, config: Mapping[str, Any] | None) -> Objective:
        """The objective of a run config (its ``objective`` section), else the default one."""
        section = (config or {}).get("objective")
        return cls(**dict(section)) if section else cls()

    @property
    def label(self) -> str:
        """The metric's short name (``iou`` for ``val/iou``), for file names."""
        return self.metric.rsplit("/", 1)[-1]

    def sort_key(self, value: float | None) -> float:
        """A key that sorts the best value first and missing or NaN values last."""
        if value is None or math.isnan(value):
            return math.inf
        return -value if self.mode == "max" else value


def register_objective() -> None:
    """Store :class:`Objective` (its defaults) as the config ``objective/default``."""
    ConfigStore.instance().store(group="objective", name="default", node=Objective)


# ``${nuclei.metric_label:${objective.metric}}`` in checkpoint file names. Registered on
# import, so that a saved run config resolves wherever this module is loaded.
if not OmegaConf.has_resolver("nuclei.metric_label"):
    OmegaConf.register_new_resolver("nuclei.metric_label", lambda metric: Objective(metric).label)
