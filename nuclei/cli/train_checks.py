"""What ``nuclei-train`` checks before Hydra writes anything: the run folder and the settings.

Hydra makes a job's folder and saves its configuration and log there before the training
function starts. :class:`TrainChecks`, a Hydra callback (``hydra.callbacks`` in
``conf/train.yaml``), runs earlier: it refuses a run folder that is the filesystem root, a
file or another run's (:mod:`nuclei.runs.run_folder`), a sweep folder holding runs, and
settings that cannot train (:mod:`nuclei.training.config_checks`), each in one line with
exit status 2, so a refused command leaves nothing behind. ``nuclei-train`` checks the same
again from its training function for a config run without Hydra (``main(cfg)``) or read
from a run being resumed.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from nuclei.cli.app import user_errors
from nuclei.runs.run_folder import (
    OVERWRITE_KEY,
    RunFolderError,
    check_run_folder,
    check_sweep_folder,
    extra_rank,
    started_with_other_ranks,
)
from nuclei.training.config_checks import TrainingConfigError, check_training_config

#: The errors these checks end a command with (exit status 2).
REFUSALS = (RunFolderError, TrainingConfigError)


def _app_name(config: DictConfig) -> str:
    return str(OmegaConf.select(config, "hydra.help.app_name", default="nuclei-train"))


def _output_dir_given(config: DictConfig) -> str | None:
    """``paths.output_dir`` when set apart from Hydra's run dir, else None."""
    value = OmegaConf.to_container(config.paths, resolve=False).get("output_dir")
    if value is None or "hydra:runtime.output_dir" in str(value):
        return None
    return str(config.paths.output_dir)


class TrainChecks(Callback):
    """Refuses a run or sweep folder holding another run, and settings that cannot train,
    before Hydra makes the job's folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check a single run's folder (``hydra.run.dir``, ``paths.output_dir``) and settings;
        a resumed run's are checked once read from its folder."""
        if config.get("resume"):
            return
        with user_errors(_app_name(config), *REFUSALS):
            if not extra_rank():  # the extra DDP ranks share the folder rank 0 checked
                overwrite = bool(config.get(OVERWRITE_KEY))
                # ranks started beside this one may have saved their configuration already
                configs = not started_with_other_ranks()
                check_run_folder(config.hydra.run.dir, overwrite=overwrite, configs=configs)
                output_dir = _output_dir_given(config)
                if output_dir is not None:
                    check_run_folder(
                        output_dir, overwrite=overwrite, key="paths.output_dir", configs=configs
                    )
            check_training_config(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check a sweep's folder (its jobs' settings are checked as each starts)."""
        with user_errors(_app_name(config), *REFUSALS):
            check_sweep_folder(config.hydra.sweep.dir, overwrite=bool(config.get(OVERWRITE_KEY)))
