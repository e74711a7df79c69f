"""Continue a killed training run in its own directory: ``nuclei-train resume=RUN_DIR``.

The run's own ``.hydra/config.yaml`` is reused, training restarts from
``RUN_DIR/checkpoints/last.ckpt`` (written after every epoch) and TensorBoard events go on
in the same folder. The random states stored in every checkpoint
(:mod:`nuclei.training.callbacks.random_state`) make the resumed run end with the same
metrics as one that was never stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nuclei.runs.checkpoint import read_run_config
from nuclei.runs.run_dir import RunDir

log = logging.getLogger(__name__)


def if_resume(resume: str | None, then: Any, otherwise: Any) -> Any:
    """Resolver ``nuclei.if_resume``: ``then`` when ``resume`` is set, else ``otherwise``."""
    return otherwise if resume in (None, "") else then


if not OmegaConf.has_resolver("nuclei.if_resume"):
    OmegaConf.register_new_resolver("nuclei.if_resume", if_resume)


def last_checkpoint(run_dir: RunDir) -> Path:
    """The run's checkpoint of its latest epoch; FileNotFoundError naming what is missing."""
    path = run_dir.last_checkpoint
    if not path.is_file():
        raise FileNotFoundError(
            f"resume={run_dir.path}: no {path}; a run can be resumed once it has finished its "
            f"first epoch ({path.name} is written after every epoch)"
        )
    return path


def resume_config(run_dir: str | Path) -> DictConfig:
    """The config of the run in ``run_dir``, set to continue from its latest checkpoint."""
    run = RunDir(Path(run_dir).expanduser().resolve())
    cfg = read_run_config(run)
    if cfg is None:
        raise FileNotFoundError(
            f"resume={run.path}: no {run.config_file}; is it a nuclei-train run?"
        )
    cfg.ckpt_path = str(last_checkpoint(run))
    cfg.resume = str(run.path)
    return cfg
