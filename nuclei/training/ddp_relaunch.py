"""DDP under a Hydra multirun: each job's extra ranks re-run that job alone.

Lightning starts DDP rank k > 0 by re-running the script with ``sys.argv``; under ``-m`` that
argv is the whole sweep. :func:`ddp_launch_of_this_job` narrows argv (and Hydra's run dir) to
the current job while it runs, and tidies the launch environment afterwards. It relies on
Lightning's private ``_SubprocessScriptLauncher`` (checked against lightning 2.6).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import OmegaConf, read_write

log = logging.getLogger(__name__)


# What Lightning's script launcher leaves in the launching process's environment (and
# torch.distributed's process group): a later job of the same sweep would otherwise take
# LOCAL_RANK as a sign that its processes exist already and wait for them forever.
_LAUNCH_ENVIRONMENT = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)
# Overrides that belong to the sweep, not to one of its jobs (Lightning adds its own
# hydra.run.dir, hydra.job.name and hydra.output_subdir to the command of each extra rank).
_SWEEP_OVERRIDES = (
    "hydra.mode",
    "hydra.sweep",  # also hydra.sweeper.*
    "hydra/sweeper",
    "hydra.launcher",
    "hydra/launcher",
    "hydra.run.dir",
    "hydra.job.name",
    "hydra.output_subdir",
)
# How long a finished job waits for its extra ranks to exit before it kills them.
_RANK_EXIT_TIMEOUT_S = 120


def relaunches_script(trainer: L.Trainer) -> bool:
    """Whether Lightning will start the trainer's extra processes by re-running the script."""
    launcher = trainer.strategy.launcher
    return (
        isinstance(launcher, _SubprocessScriptLauncher)
        and launcher.num_processes > 1
        and not launcher.cluster_environment.creates_processes_externally
    )


def job_command_line() -> list[str]:
    """Overrides that repeat the current Hydra multirun job as a single run (``hydra.mode=RUN``)."""
    overrides = HydraConfig.get().overrides
    hydra_overrides = [
        o for o in overrides.hydra if not o.lstrip("~+").startswith(_SWEEP_OVERRIDES)
    ]
    return [*hydra_overrides, *overrides.task, "hydra.mode=RUN"]


@contextmanager
def ddp_launch_of_this_job(trainer: L.Trainer) -> Iterator[None]:
    """Let a DDP job of a multirun (``-m``) start its extra ranks as this job alone.

    Lightning starts rank k > 0 by re-running the script with ``sys.argv`` plus
    ``hydra.run.dir=<HydraConfig run.dir>``. Under ``-m`` that argv is the whole sweep, and
    run.dir is not the job's folder, so every extra rank would run every job of the sweep. While
    this job runs, argv holds just its overrides (``hydra.mode=RUN``, so an hparams_search that
    implies ``-m`` is not restarted either) and run.dir its output folder: each extra rank runs
    exactly the job that rank 0 runs, in the same folder, as a single DDP run does. When the job
    ends, it waits for those ranks, closes the process group and restores the environment, so
    that the next job starts its own.

    Why not ``ddp_spawn`` under ``-m``: it pickles the task, datamodule and callbacks into every
    fit, validate and test call (each decoding the data again, ruling out torch.compile'd
    networks), and hands back only rank 0's weights, best path and callback metrics: the main
    process's datamodule, epoch and step counters never see the run. The relaunch keeps the code
    path of a single DDP run, the one tested against a one-process run.
    """
    if (
        not HydraConfig.initialized()
        or HydraConfig.get().mode != RunMode.MULTIRUN
        or not relaunches_script(trainer)
    ):
        yield
        return
    hydra_config = HydraConfig.get()
    saved_argv = sys.argv
    saved_run_dir = OmegaConf.to_container(hydra_config.run)["dir"]  # unresolved
    saved_environment = {key: os.environ.get(key) for key in _LAUNCH_ENVIRONMENT}
    saved_threads = torch.get_num_threads()
    sys.argv = [sys.argv[0], *job_command_line()]
    with read_write(hydra_config.run):
        hydra_config.run.dir = hydra_config.runtime.output_dir
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        sys.argv = saved_argv
        with read_write(hydra_config.run):
            hydra_config.run.dir = saved_run_dir
        # After a failure Lightning (or its child-process observer) ends the extra ranks.
        if succeeded:
            for process in trainer.strategy.launcher.procs:
                try:
                    process.wait(timeout=_RANK_EXIT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log.warning("Rank process %d did not exit; killing it", process.pid)
                    process.kill()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.set_num_threads(saved_threads)
