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

log = logging.getLogger(__name__)

#: Where Hydra keeps the config of a resumed job, so the run's own ``.hydra`` stays intact.
RESUME_SUBDIR = ".hydra-resume"


def if_resume(resume: str | None, then: Any, otherwise: Any) -> Any:
    """Resolver ``nuclei.if_resume``: ``then`` when ``resume`` is set, else ``otherwise``."""
    return otherwise if resume in (None, "") else then


if not OmegaConf.has_resolver("nuclei.if_resume"):
    OmegaConf.register_new_resolver("nuclei.if_resume", if_resume)


def last_checkpoint(run_dir: str | Path) -> Path:
    """``<run_dir>/checkpoints/last.ckpt``; raises FileNotFoundError naming what is missing."""
    path = Path(run_dir) / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(
            f"resume={run_dir}: no {path}; a run can be resumed once it has finished its "
            "first epoch (last.ckpt is written after every epoch)"
        )
    return path


def resume_config(run_dir: str | Path) -> DictConfig:
    """The config of the run in ``run_dir``, set to continue from its ``last.ckpt``."""
    run_dir = Path(run_dir).expanduser().resolve()
    config_path = run_dir / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"resume={run_dir}: no {config_path}; is it a nuclei-train run?")
    checkpoint = last_checkpoint(run_dir)
    cfg = OmegaConf.load(config_path)
    assert isinstance(cfg, DictConfig)
    cfg.paths.output_dir = str(run_dir)  # was ${hydra:runtime.output_dir}
    cfg.ckpt_path = str(checkpoint)
    cfg.resume = str(run_dir)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
