"""A run folder as an object: the one place that names the files in it.

A training run writes, under its folder (Hydra's run dir)::

    .hydra/config.yaml, overrides.yaml   the composed configuration (Hydra)
    .hydra-resume/                       the configuration of a resuming job
    checkpoints/<best>.ckpt, last.ckpt   best by the objective; the latest epoch
    checkpoints/on_exception.ckpt        the weights when a stage failed (removed after)
    checkpoints/<stem>.<split>[.<digest>].eval.json   nuclei-eval results of a checkpoint
    checkpoints/<stem>.<split>[.<digest>].images.csv  ... and its scores per image
    run_info.json                        versions, git commit, machine
    split.json, data_report.json         the train/val ids; what the data check found
    metrics.json                         final metrics of the best checkpoint
    postprocess.json                     tuned postprocessing (nuclei-tune)
    eval_metrics.json, eval_images.csv   (in an evaluation's own folder) its metrics, and
                                         its scores per image

Every other module asks :class:`RunDir` for these paths. The configs reach the same names
through the ``nuclei.run_dir`` resolver registered here (``${nuclei.run_dir:DIR,ATTRIBUTE}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from nuclei.files import atomic_write_json, atomic_write_text

CONFIG_SUBDIR = ".hydra"
RESUME_CONFIG_SUBDIR = ".hydra-resume"


CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT_STEM = "last"


class InRun:
    """A path inside a run folder, read as an attribute of :class:`RunDir`."""

    def __init__(self, *parts: str, doc: str) -> None:
        self.parts = parts
        self.__doc__ = doc

    def __get__(self, run: RunDir | None, owner: type | None = None) -> Path:
        if run is None:
            return Path(*self.parts)  # the relative path, on the class
        return run.path.joinpath(*self.parts)


@dataclass(frozen=True, order=True)
class RunDir:
    """The files of one run folder (none need exist)."""

    path: Path

    checkpoint_dir = InRun(CHECKPOINT_DIR, doc="Where the run's checkpoints are.")
    last_checkpoint = InRun(
        CHECKPOINT_DIR, f"{LAST_CHECKPOINT_STEM}.ckpt", doc="The latest epoch's checkpoint."
    )
    exception_checkpoint = InRun(
        CHECKPOINT_DIR, "on_exception.ckpt", doc="The weights saved when a stage failed."
    )
    config_file = InRun(CONFIG_SUBDIR, "config.yaml", doc="The composed config (Hydra's).")
    overrides_file = InRun(CONFIG_SUBDIR, "overrides.yaml", doc="The command-line overrides.")
    run_info_file = InRun("run_info.json", doc="Versions, git commit and machine of the run.")
    split_file = InRun("split.json", doc="The recorded train/val split.")
    data_report_file = InRun("data_report.json", doc="What the data check found and dropped.")
    metrics_file = InRun("metrics.json", doc="Final metrics of the run's best checkpoint.")
    tuned_postprocess_file = InRun("postprocess.json", doc="Postprocessing tuned on val.")
    eval_metrics_file = InRun("eval_metrics.json", doc="An evaluation's metrics, in its folder.")
    eval_images_file = InRun("eval_images.csv", doc="An evaluation's scores per image.")
    #: File stem of the checkpoint rewritten after every epoch (for resuming).
    last_checkpoint_stem = LAST_CHECKPOINT_STEM

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """The run of a checkpoint: the folder holding ``checkpoints/``, else its own folder."""
        parent = Path(checkpoint).expanduser().parent
        return cls(parent.parent if parent.name == CHECKPOINT_DIR else parent)

    @classmethod
    def current(cls, cfg: Mapping[str, Any]) -> RunDir:
        """This job's folder: Hydra's run dir, or ``cfg.paths.output_dir`` outside Hydra."""
        if HydraConfig.initialized():
            return cls(HydraConfig.get().runtime.output_dir)
        return cls(cfg["paths"]["output_dir"])

    @staticmethod
    def checkpoint_eval_file(checkpoint: Path, split: str, digest: str | None = None) -> Path:
        """``<stem>.<split>[.<digest>].eval.json`` beside ``checkpoint``."""
        return _beside(checkpoint, split, digest, "eval.json")

    @staticmethod
    def checkpoint_images_file(checkpoint: Path, split: str, digest: str | None = None) -> Path:
        """``<stem>.<split>[.<digest>].images.csv`` beside ``checkpoint``: scores per image."""
        return _beside(checkpoint, split, digest, "images.csv")

    @staticmethod
    def find_in(folder: str | Path) -> list[RunDir]:
        """Every run below ``folder`` (those holding a saved overrides file), sorted."""
        pattern = str(RunDir.overrides_file)
        return sorted(RunDir(p.parent.parent) for p in Path(folder).expanduser().rglob(pattern))

    def run_files(self, configs: bool = True) -> list[Path]:
        """The files and folders of a run that exist here (none: no run has written here).

        ``configs=False`` leaves out the saved configurations (``.hydra/``,
        ``.hydra-resume/``), which Hydra writes for a job before the job starts.
        """
        saved = [self.config_file, self.path / RESUME_CONFIG_SUBDIR] if configs else []
        written = [
            *saved,
            self.checkpoint_dir,
            self.metrics_file,
            self.split_file,
            self.data_report_file,
            self.run_info_file,
            self.tuned_postprocess_file,
            self.eval_metrics_file,
            self.eval_images_file,
        ]
        return [path for path in written if path.exists()]

    def write_json(self, path: Path, record: Mapping[str, Any]) -> Path:
        """Write a JSON record (indented, keys sorted) atomically, creating folders."""
        return atomic_write_json(path, record)

    def write_split(self, record: Mapping[str, Any]) -> Path:
        """Write the train/val split record (kept in the order given)."""
        return atomic_write_text(self.split_file, json.dumps(dict(record), indent=2))

    def write_data_report(self, report: Mapping[str, Any]) -> Path:
        """Write the data check's report."""
        return atomic_write_text(self.data_report_file, json.dumps(dict(report), indent=2) + "\n")


def _beside(checkpoint: Path, split: str, digest: str | None, suffix: str) -> Path:
    """``<stem>.<split>[.<digest>].<suffix>`` beside ``checkpoint``."""
    parts = [checkpoint.stem, split, *([digest] if digest else []), suffix]
    return checkpoint.with_name(".".join(parts))


def _run_dir_resolver(path: str, attribute: str) -> str:
    """``${nuclei.run_dir:DIR,ATTRIBUTE}``: a :class:`RunDir` path or name, as a string."""
    return str(getattr(RunDir(path), attribute))


def _config_subdir_resolver(resume: Any) -> str:
    """``${nuclei.config_subdir:${resume}}``: where Hydra saves this job's configuration."""
    return CONFIG_SUBDIR if resume in (None, "") else RESUME_CONFIG_SUBDIR


def _when_given_resolver(value: Any, then: Any, otherwise: Any) -> Any:
    """``${nuclei.when_given:${oc.select:output,null},A,B}``: ``A`` when the value is set
    (e.g. a command's ``output=`` folder becomes its run folder), else ``B``."""
    return otherwise if value in (None, "") else then


def register_resolvers() -> None:
    """Register the ``nuclei.run_dir``, ``nuclei.config_subdir`` and ``nuclei.when_given``
    config resolvers."""
    if not OmegaConf.has_resolver("nuclei.when_given"):
        OmegaConf.register_new_resolver("nuclei.when_given", _when_given_resolver)
    if not OmegaConf.has_resolver("nuclei.run_dir"):
        OmegaConf.register_new_resolver("nuclei.run_dir", _run_dir_resolver)
    if not OmegaConf.has_resolver("nuclei.config_subdir"):
        OmegaConf.register_new_resolver("nuclei.config_subdir", _config_subdir_resolver)


register_resolvers()
