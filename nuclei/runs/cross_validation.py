"""A cross-validation sweep (``nuclei-train -m data.split.folds=K 'data.split.fold=range(K)'``):
its fold runs, grouped by configuration and checked to validate every image exactly once,
and their out-of-fold predictions (each image predicted by the one fold model that did not
train on it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from nuclei.inference.averaging import TestTimeAugmented
from nuclei.inference.probabilities import OnDevice, resolve_device
from nuclei.instances.tuning import PredictedSplit, predict_split
from nuclei.runs.checkpoint import Run, load_run, restore_task
from nuclei.runs.members import best_checkpoint
from nuclei.runs.run_data import build_run_datamodule, run_data_config
from nuclei.runs.run_dir import RunDir

#: The override that differs between the runs of one cross-validation.
FOLD_OVERRIDE = "data.split.fold"


class CrossValidationError(ValueError):
    """A folder is not a complete cross-validation sweep; says which run or fold is wrong."""


@dataclass(frozen=True)
class FoldRun:
    """One run of a cross-validation: its folder, fold and the ids its split.json holds."""

    run_dir: RunDir
    fold: int
    folds: int
    train_ids: tuple[str, ...]
    val_ids: tuple[str, ...]

    @property
    def checkpoint(self) -> Path:
        """The fold model's best checkpoint."""
        return best_checkpoint(self.run_dir)


@dataclass(frozen=True)
class CrossValidation:
    """The K fold runs of one configuration, fold 0 first; ``label`` names the configuration
    by the overrides that set it apart from the sweep's other ones (``all`` when alone)."""

    label: str
    runs: tuple[FoldRun, ...]

    @property
    def n_images(self) -> int:
        """Images validated over all folds (each exactly once)."""
        return sum(len(run.val_ids) for run in self.runs)


def read_fold_run(run_dir: RunDir) -> FoldRun | None:
    """The fold run of a run folder, or None when its split.json records no folds."""
    if not run_dir.split_file.is_file():
        return None
    try:
        record = json.loads(run_dir.split_file.read_text())
    except ValueError as exc:
        raise CrossValidationError(f"{run_dir.split_file}: not a JSON file ({exc})") from exc
    if record.get("folds") is None:
        return None
    return FoldRun(
        run_dir,
        int(record["fold"]),
        int(record["folds"]),
        tuple(record["train"]),
        tuple(record["val"]),
    )


def _configuration(run_dir: RunDir) -> tuple[str, ...]:
    """The run's overrides other than its fold."""
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir.overrides_file)) or []
    return tuple(str(o) for o in overrides if not str(o).startswith(FOLD_OVERRIDE + "="))


def check_complete(label: str, runs: Sequence[FoldRun]) -> None:
    """Raise :class:`CrossValidationError` unless the runs are folds 0..K-1 of one K, once
    each, whose validation folds are disjoint and together hold every image exactly once."""
    folds = {run.folds for run in runs}
    if len(folds) != 1:
        raise CrossValidationError(f"{label}: runs of different fold counts {sorted(folds)}")
    k = folds.pop()
    seen = sorted(run.fold for run in runs)
    if seen != list(range(k)):
        missing = sorted(set(range(k)) - set(seen))
        repeated = sorted({f for f in seen if seen.count(f) > 1})
        raise CrossValidationError(
            f"{label}: a {k}-fold cross-validation needs folds 0..{k - 1} once each; "
            f"missing {missing}, repeated {repeated} (runs: "
            + ", ".join(str(run.run_dir.path) for run in runs)
            + ")"
        )
    images = set(runs[0].train_ids) | set(runs[0].val_ids)
    validated: set[str] = set()
    for run in runs:
        if set(run.train_ids) | set(run.val_ids) != images:
            raise CrossValidationError(f"{run.run_dir.path}: its split holds other images")
        twice = validated & set(run.val_ids)
        if twice:
            raise CrossValidationError(
                f"{run.run_dir.path}: {len(twice)} image(s) validated by another fold too"
            )
        validated |= set(run.val_ids)
    if validated != images:
        raise CrossValidationError(f"{label}: {len(images - validated)} image(s) in no fold")


def cross_validations(sweep: str | Path) -> list[CrossValidation]:
    """Every cross-validation of a sweep folder, one per configuration, each checked complete
    (:func:`check_complete`). Raises :class:`CrossValidationError` when there is none."""
    sweep = Path(sweep).expanduser()
    groups: dict[tuple[str, ...], list[FoldRun]] = {}
    for run_dir in RunDir.find_in(sweep):
        fold_run = read_fold_run(run_dir)
        if fold_run is not None:
            groups.setdefault(_configuration(run_dir), []).append(fold_run)
    if not groups:
        raise CrossValidationError(
            f"{sweep}: no cross-validation runs (no run below it recorded folds in its "
            "split.json; train them with nuclei-train -m data.split.folds=5 "
            "'data.split.fold=range(5)')"
        )
    shared = set.intersection(*(set(key) for key in groups))
    found = []
    for key, runs in groups.items():
        label = " ".join(o for o in key if o not in shared) or "all"
        runs.sort(key=lambda run: run.fold)
        check_complete(label, runs)
        found.append(CrossValidation(label, tuple(runs)))
    return found


def out_of_fold_predictions(
    cv: CrossValidation,
    device: str = "auto",
    batch_size: int | None = None,
    trust: bool = False,
    progress: bool = True,
    tta: str = "none",
) -> Iterator[tuple[Run, PredictedSplit]]:
    """For each fold in turn: the fold model's run and its predictions of its own validation
    fold (the images it did not train on), at each image's own size; ``tta`` as
    :class:`nuclei.inference.averaging.TestTimeAugmented`."""
    for fold_run in cv.runs:
        run = load_run(fold_run.checkpoint, trust=trust)
        data_cfg = run_data_config(run, eval_batch_size=batch_size)
        task = restore_task(run)
        net = OnDevice(
            TestTimeAugmented(task, tta) if tta != "none" else task, resolve_device(device)
        )
        predicted = predict_split(net, build_run_datamodule(data_cfg), progress)
        if sorted(predicted.ids) != sorted(fold_run.val_ids):
            raise CrossValidationError(
                f"{fold_run.run_dir.path}: predicted {len(predicted)} images, but its "
                f"split.json validates {len(fold_run.val_ids)} others"
            )
        yield run, predicted
