"""A run folder as an object: the one place that names the files in it.

A training run writes, under its folder (Hydra's run dir)::

    .hydra/config.yaml, overrides.yaml   the composed configuration (Hydra)
    .hydra-resume/                       the configuration of a resuming job
    checkpoints/<best>.ckpt, last.ckpt   best by the objective; the latest epoch
    checkpoints/on_exception.ckpt        the weights when a stage failed (removed after)
    checkpoints/<stem>.<split>[.<digest>].eval.json   nuclei-eval results of a checkpoint
    run_info.json                        versions, git commit, machine
    split.json, data_report.json         the train/val ids; what the data check found
    metrics.json                         final metrics of the best checkpoint
    postprocess.json                     tuned postprocessing (nuclei-tune)
    eval_metrics.json                    (in an evaluation's own folder) its metrics

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

from nuclei.runs.atomic import atomic_write_json, atomic_write_text

CONFIG_SUBDIR = ".hydra"
RESUME_CONFIG_SUBDIR = ".hydra-resume"


@dataclass(frozen=True, order=True)
class RunDir:
    """The files of one run folder (none need exist)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """The run of a checkpoint: the folder holding ``checkpoints/``, else its own folder."""
        parent = Path(checkpoint).expanduser().parent
        return cls(parent.parent if parent.name == cls.checkpoint_dir_name() else parent)

    @classmethod
    def current(cls, cfg: Mapping[str, Any]) -> RunDir:
        """This job's folder: Hydra's run dir, or ``cfg.paths.output_dir`` outside Hydra."""
        if HydraConfig.initialized():
            return cls(HydraConfig.get().runtime.output_dir)
        return cls(cfg["paths"]["output_dir"])

    @staticmethod
    def checkpoint_dir_name() -> str:
        """Name of the checkpoint folder inside a run."""
        return "checkpoints"

    @property
    def checkpoint_dir(self) -> Path:
        """Where the run's checkpoints are."""
        return self.path / self.checkpoint_dir_name()

    @property
    def last_checkpoint_stem(self) -> str:
        """File stem of the checkpoint rewritten after every epoch (for resuming)."""
        return "last"

    @property
    def last_checkpoint(self) -> Path:
        """The checkpoint of the latest finished epoch."""
        return self.checkpoint_dir / f"{self.last_checkpoint_stem}.ckpt"

    @property
    def exception_checkpoint(self) -> Path:
        """The weights saved when a stage failed."""
        return self.checkpoint_dir / "on_exception.ckpt"

    @property
    def config_file(self) -> Path:
        """The run's composed configuration, as Hydra saved it."""
        return self.path / CONFIG_SUBDIR / "config.yaml"

    @property
    def overrides_file(self) -> Path:
        """The command-line overrides of the run, as Hydra saved them."""
        return self.path / CONFIG_SUBDIR / "overrides.yaml"

    @property
    def run_info_file(self) -> Path:
        """Versions, git commit and machine of the run."""
        return self.path / "run_info.json"

    @property
    def split_file(self) -> Path:
        """The recorded train/val split."""
        return self.path / "split.json"

    @property
    def data_report_file(self) -> Path:
        """What the data check found, used and dropped."""
        return self.path / "data_report.json"

    @property
    def metrics_file(self) -> Path:
        """Final metrics of the run's best checkpoint."""
        return self.path / "metrics.json"

    @property
    def tuned_postprocess_file(self) -> Path:
        """Postprocessing settings tuned on the run's validation split."""
        return self.path / "postprocess.json"

    @property
    def eval_metrics_file(self) -> Path:
        """Metrics of an evaluation, in the evaluation's own folder."""
        return self.path / "eval_metrics.json"

    @staticmethod
    def checkpoint_eval_file(checkpoint: Path, split: str, digest: str | None = None) -> Path:
        """``<stem>.<split>[.<digest>].eval.json`` beside ``checkpoint``."""
        parts = [checkpoint.stem, split, *([digest] if digest else []), "eval.json"]
        return checkpoint.with_name(".".join(parts))

    @staticmethod
    def find_in(folder: str | Path) -> list[RunDir]:
        """Every run below ``folder`` (those holding a saved overrides file), sorted."""
        pattern = str(RunDir(Path()).overrides_file)
        return sorted(RunDir(p.parent.parent) for p in Path(folder).expanduser().rglob(pattern))

    def write_json(self, path: Path, record: Mapping[str, Any]) -> Path:
        """Write a JSON record (indented, keys sorted) atomically, creating folders."""
        return atomic_write_json(path, record)

    def write_split(self, record: Mapping[str, Any]) -> Path:
        """Write the train/val split record (kept in the order given)."""
        return atomic_write_text(self.split_file, json.dumps(dict(record), indent=2))

    def write_data_report(self, report: Mapping[str, Any]) -> Path:
        """Write the data check's report."""
        return atomic_write_text(self.data_report_file, json.dumps(dict(report), indent=2) + "\n")


def _run_dir_resolver(path: str, attribute: str) -> str:
    """``${nuclei.run_dir:DIR,ATTRIBUTE}``: a :class:`RunDir` path or name, as a string."""
    return str(getattr(RunDir(path), attribute))


def _config_subdir_resolver(resume: Any) -> str:
    """``${nuclei.config_subdir:${resume}}``: where Hydra saves this job's configuration."""
    return CONFIG_SUBDIR if resume in (None, "") else RESUME_CONFIG_SUBDIR


def register_resolvers() -> None:
    """Register the ``nuclei.run_dir`` and ``nuclei.config_subdir`` config resolvers."""
    if not OmegaConf.has_resolver("nuclei.run_dir"):
        OmegaConf.register_new_resolver("nuclei.run_dir", _run_dir_resolver)
    if not OmegaConf.has_resolver("nuclei.config_subdir"):
        OmegaConf.register_new_resolver("nuclei.config_subdir", _config_subdir_resolver)


register_resolvers()
