"""Continue a killed training run in its own directory: ``nuclei-train resume=RUN_DIR``.

The run's own ``.hydra/config.yaml`` is reused, training restarts from
``RUN_DIR/checkpoints/last.ckpt`` (written after every epoch) and TensorBoard events go on
in the same folder, with the events a killed process wrote past its last checkpoint hidden
(TensorBoard's ``purge_step``). The random states stored in every checkpoint
(:mod:`nuclei.training.callbacks.random_state`) make the resumed run end with the same
metrics as one that was never stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from nuclei.runs.checkpoint import checked_run_config, read_checkpoint, read_run_config
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


def resume_config(run_dir: str | Path, trust: bool = False) -> DictConfig:
    """The config of the run in ``run_dir``, set to continue from its latest checkpoint.

    Like any stored configuration it may build only what the package's configs name, and
    the checkpoint is read with ``weights_only``, unless ``trust``
    (:func:`nuclei.runs.checkpoint.checked_run_config`).
    """
    run = RunDir(Path(run_dir).expanduser().resolve())
    cfg = read_run_config(run)
    if cfg is None:
        raise FileNotFoundError(
            f"resume={run.path}: no {run.config_file}; is it a nuclei-train run?"
        )
    cfg = checked_run_config(cfg, run.config_file, trust)
    checkpoint = last_checkpoint(run)
    cfg.ckpt_path = str(checkpoint)
    cfg.resume = str(run.path)
    cfg.trust_checkpoint = trust
    hide_events_after_checkpoint(cfg, logging_step_of(checkpoint, trust))
    return cfg


def logging_step_of(checkpoint: Path, trust: bool = False) -> int:
    """The step the run's loggers write next when training continues from ``checkpoint``."""
    # Mapped, so its weights are not read here as well.
    state = read_checkpoint(checkpoint, trust=trust, mmap=True)
    loop = state.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    return int(loop.get("_batches_that_stepped", state.get("global_step", 0)))


def hide_events_after_checkpoint(cfg: DictConfig, step: int) -> None:
    """Make the TensorBoard logger hide the events a killed process wrote at ``step`` or later.

    A process killed between logging an epoch and saving its checkpoint leaves that epoch's
    events behind; the resumed run logs the epoch again. TensorBoard's ``purge_step`` hides
    the first copy so every step appears once.
    """
    tensorboard = (cfg.get("logger") or {}).get("tensorboard")
    if tensorboard is not None:
        with open_dict(tensorboard):
            tensorboard.purge_step = step
