"""The folder a training run writes into: a new run's own, checked; a killed run's, continued.

A run writes its checkpoints, records and configuration into its folder (Hydra's run dir,
or ``paths.output_dir`` outside Hydra), replacing files of the same names. Before anything
is written, :func:`check_run_folder` refuses the filesystem root, a file, and a folder that
holds another run's files (:meth:`RunDir.run_files`) unless ``overwrite_run=true`` says to
replace them; :func:`check_sweep_folder` does the same for the folder of a sweep's jobs.
Continuing a run in its own folder is ``resume=``, which needs neither.

``nuclei-train resume=RUN_DIR`` continues a killed training run in its own directory
(:func:`resume_config`). The run's own ``.hydra/config.yaml`` is reused, training restarts
from ``RUN_DIR/checkpoints/last.ckpt`` (written after every epoch) and TensorBoard events go
on in the same folder, with the events a killed process wrote past its last checkpoint
hidden (TensorBoard's ``purge_step``). The random states stored in every checkpoint
(:class:`nuclei.training.callbacks.RandomStateCheckpoint`) make the resumed run end with the
same metrics as one that was never stopped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from nuclei.runs.checkpoint import checked_run_config, read_checkpoint, read_run_config
from nuclei.runs.run_dir import RunDir

#: The config key that lets a new run write into a folder holding another run.
OVERWRITE_KEY = "overwrite_run"
#: Environment variables that give a process's rank in a multi-process (DDP) run. Ranks
#: above 0 write into the folder of rank 0, which checked it.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")
#: Environment variables that give how many processes a launcher started at once (srun's
#: tasks, torchrun's workers): each saves its own copy of the job's configuration.
WORLD_VARIABLES = ("SLURM_NTASKS", "WORLD_SIZE")


class RunFolderError(ValueError):
    """A folder a new training run must not write into; the message says why and what to do."""


def extra_rank() -> bool:
    """Whether this process is a rank above 0 of a multi-process run."""
    return any(os.environ.get(name, "0") not in ("", "0") for name in RANK_VARIABLES)


def started_with_other_ranks() -> bool:
    """Whether a launcher (srun, torchrun) started this process at the same time as the other
    ranks of its run, so that the configuration Hydra saves in the run's folder may already be
    one of theirs."""
    for name in WORLD_VARIABLES:
        value = os.environ.get(name, "1")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def _listed(found: list[Path], folder: Path) -> str:
    return ", ".join(
        str(path.relative_to(folder)) + ("/" if path.is_dir() else "") for path in found
    )


def _refuse_unusable(path: Path, key: str) -> None:
    """Refuse the filesystem root and a file, whatever else is said."""
    resolved = path.resolve()
    if resolved == Path(resolved.anchor):
        raise RunFolderError(
            f"{key}={path}: the filesystem root cannot hold a run's files; give a folder of "
            f"its own, e.g. {key}=outputs/train/my_run"
        )
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{key}={path}: is a file, not a folder; give a folder for the run")


def check_run_folder(
    folder: str | Path, overwrite: bool = False, key: str = "hydra.run.dir", configs: bool = True
) -> None:
    """Refuse ``folder`` (given as ``key``) as a new run's folder when it is the filesystem
    root, a file, or (unless ``overwrite``) a folder holding another run's files;
    ``configs=False`` does not count the configurations Hydra saved for this job."""
    path = Path(folder).expanduser()
    _refuse_unusable(path, key)
    found = RunDir(path).run_files(configs=configs) if path.is_dir() else []
    if found and not overwrite:
        raise RunFolderError(
            f"{key}={path}: already holds a run ({_listed(found, path)}); give a new folder, "
            f"continue that run with resume={path}, or replace its files with "
            f"{OVERWRITE_KEY}=true"
        )


def check_sweep_folder(
    folder: str | Path, overwrite: bool = False, key: str = "hydra.sweep.dir"
) -> None:
    """Refuse ``folder`` as a new sweep's folder when it is the filesystem root, a file, or
    (unless ``overwrite``) holds runs in its job folders."""
    path = Path(folder).expanduser()
    _refuse_unusable(path, key)
    jobs = sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    taken = [job for job in jobs if RunDir(job).run_files()]
    if taken and not overwrite:
        raise RunFolderError(
            f"{key}={path}: already holds the runs of a sweep ({_listed(taken, path)}); give a "
            f"new folder, or replace their files with {OVERWRITE_KEY}=true"
        )


def check_job_folder(cfg: Mapping[str, Any]) -> None:
    """Refuse this job's folder (:meth:`RunDir.current`) if it holds another run, unless the
    job resumes that run or ``cfg`` says to overwrite it. Under Hydra, the configuration
    Hydra saved for this job is not counted (``nuclei-train`` looked before it was saved)."""
    if cfg.get("resume") or extra_rank():
        return
    key = "paths.output_dir"
    if HydraConfig.initialized():
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        key = "hydra.sweep.dir/hydra.sweep.subdir" if multirun else "hydra.run.dir"
    check_run_folder(
        RunDir.current(cfg).path,
        overwrite=bool(cfg.get(OVERWRITE_KEY)),
        key=key,
        configs=not HydraConfig.initialized(),
    )


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
