"""Score a trained checkpoint: ``nuclei-eval ckpt_path=PATH`` / ``python -m nuclei.cli.evaluate``.

The data module, model and postprocessing are rebuilt from the configuration stored in the
checkpoint, on the run's recorded split; ``conf/eval.yaml`` (``nuclei-eval --help``) lists
what may be overridden.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig, ListConfig, open_dict

from nuclei.cli.app import App, command, user_errors
from nuclei.cli.eval_settings import postprocess_source, run_postprocessing, settings_digest
from nuclei.cli.evaluate_folds import evaluate_out_of_fold
from nuclei.cli.metrics_table import print_kinds, print_metrics
from nuclei.cli.overrides import Vocabulary
from nuclei.inference.averaging import TTA_MODES, TestTimeAugmented
from nuclei.inference.probabilities import trainer_device
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.metrics.image_rows import rows_by_kind, scores_by_kind, write_image_scores
from nuclei.metrics.intervals import bootstrap_interval
from nuclei.runs.checkpoint import Run
from nuclei.runs.cross_validation import CrossValidationError
from nuclei.runs.inherit import given_values
from nuclei.runs.members import ensemble_task, load_members
from nuclei.runs.run_data import build_run_datamodule, run_data_config
from nuclei.runs.run_dir import RunDir
from nuclei.training.callbacks import ImageScores

log = logging.getLogger(__name__)

SPLITS = ("val", "test")
#: What ``label=`` may be: it becomes part of file names (``<stem>.<split>.<label>.eval.json``).
LABEL = re.compile(r"[A-Za-z0-9_-]+")
APP = App(
    name="nuclei-eval",
    config_name="eval",
    words=Vocabulary(main_key="ckpt_path"),
)


class EvaluationError(ValueError):
    """The evaluation cannot run as asked (bad split, no test data...); says why."""


def provides_test_loader(datamodule: L.LightningDataModule) -> bool:
    """Whether the data module class provides a test loader at all."""
    return type(datamodule).test_dataloader is not L.LightningDataModule.test_dataloader


def _dataset_size(loaders: Any) -> int:
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    return sum(len(loader.dataset) for loader in loaders)


def evaluation_trainer(cfg: DictConfig, run: Run) -> L.Trainer:
    """A Trainer for scoring: on ``cfg.device``, at the run's precision unless given."""
    precision = cfg.precision or run.config.get("trainer", {}).get("precision", "32-true")
    return L.Trainer(
        **trainer_device(str(cfg.device)),
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
        callbacks=[ImageScores(), *([RichProgressBar()] if cfg.progress_bar else [])],
    )


def score(
    trainer: L.Trainer, task: L.LightningModule, datamodule: Any, split: str
) -> tuple[dict[str, float], int]:
    """Validate or test ``task`` on ``split``: its metrics and its number of images."""
    if split == "val":
        results = trainer.validate(task, datamodule=datamodule, verbose=False)
        n_images = _dataset_size(trainer.val_dataloaders)
    else:
        results = trainer.test(task, datamodule=datamodule, verbose=False)
        n_images = _dataset_size(trainer.test_dataloaders)
    return {key: float(value) for key, value in results[0].items()}, n_images


def chosen_split(cfg: DictConfig) -> str:
    """``cfg.split``; when null, ``test`` if a test folder is given (``data=shifted`` gives
    one), else ``val``."""
    if cfg.get("split") is not None:
        return str(cfg.split)
    return "test" if given_values(cfg.get("data")).get("source", {}).get("test_root") else "val"


def map_interval(rows: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """A percentile-bootstrap interval of ``map`` (the mean of the images' scores) over the
    scored images: how much the figure would move on another draw of as many images."""
    interval = bootstrap_interval([float(row["map"]) for row in rows], confidence)
    return {
        "low": interval.low,
        "high": interval.high,
        "confidence": confidence,
        "method": "percentile bootstrap over images (2000 resamples, seed 0)",
    }


def kind_intervals(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """:func:`map_interval` over each image kind's rows (rows without a ``kind`` left out);
    None for a kind of one image, which has no interval."""
    return {
        kind: map_interval(kept) if len(kept) > 1 else None
        for kind, kept in rows_by_kind(rows).items()
    }


def checkpoint_spec(cfg: DictConfig) -> str | list[str]:
    """``cfg.ckpt_path`` as given: one path, or a list of them (an ensemble)."""
    spec = cfg.ckpt_path
    return [str(p) for p in spec] if isinstance(spec, ListConfig) else str(spec)


def check_ensemble_split(runs: Sequence[Run], split: str) -> None:
    """Refuse to score an ensemble on a validation split that some member trained on."""
    splits = {str(run.split_file and run.split_file.read_text()) for run in runs}
    if split == "val" and len(runs) > 1 and len(splits) > 1:
        raise EvaluationError(
            f"the {len(runs)} checkpoints were trained on different splits, so each one's "
            "validation images are training images of another: score the ensemble on a test "
            "split (data=heldout, data=shifted or data.source.test_root=...)"
        )


def scoring_task(runs: Sequence[Run], postprocess: PostprocessConfig, tta: str) -> Any:
    """The task that scores: the first run's, with every run's network averaged (an
    ensemble) and test-time augmentation around them."""
    if tta not in TTA_MODES:
        raise EvaluationError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    task = ensemble_task(runs, postprocess=asdict(postprocess))
    if tta != "none":  # the task's forward goes through the averaged network
        task.net = TestTimeAugmented(task.net, tta)
    return task


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Rebuild a checkpoint's run (or several: an ensemble), score it on ``cfg.split``,
    print and write the metrics."""
    started = time.perf_counter()
    with open_dict(cfg):
        cfg.split = chosen_split(cfg)
    if cfg.split not in SPLITS:
        raise EvaluationError(f"split must be one of {SPLITS}, got {cfg.split!r}")
    if cfg.get("label") and not LABEL.fullmatch(str(cfg.label)):
        raise EvaluationError(f"label may hold letters, digits, _ and - only, got {cfg.label!r}")
    runs = load_members(checkpoint_spec(cfg), trust=cfg.trust_checkpoint)
    check_ensemble_split(runs, cfg.split)
    run = runs[0]
    postprocess, own_postprocess = run_postprocessing(run, cfg)
    tta = str(cfg.get("tta") or "none")
    task = scoring_task(runs, postprocess, tta)
    data_cfg = run_data_config(run, cfg.get("data"), cfg.get("batch_size"))
    datamodule = build_run_datamodule(data_cfg)
    if cfg.split == "test" and not provides_test_loader(datamodule):
        raise EvaluationError(
            f"{type(datamodule).__name__} has no test split in this version; "
            "evaluate split=val, or give data.source.test_root/test_labels once it has one"
        )
    trainer = evaluation_trainer(cfg, run)
    metrics, n_images = score(trainer, task, datamodule, cfg.split)
    rows = ImageScores.rows_of(trainer)
    metrics.update(scores_by_kind(rows, cfg.split))
    record: dict[str, Any] = {
        **metrics,
        "split": cfg.split,
        "n_images": n_images,
        "checkpoint": str(run.checkpoint_path.resolve()),
        **({"checkpoints": [str(r.checkpoint_path.resolve()) for r in runs]} if runs[1:] else {}),
        "ensemble": len(runs),
        "data_root": str(getattr(datamodule, "data_root", data_cfg.source.get("root"))),
        "split_file": data_cfg.split.get("file") if cfg.split == "val" else None,
        "test_root": data_cfg.source.get("test_root") if cfg.split == "test" else None,
        "target": run.target,
        "postprocess": asdict(postprocess),
        "postprocess_source": postprocess_source(run, cfg),
        "tta": tta,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    if rows:
        record["map_interval"] = map_interval(rows)
        record["map_interval_by_kind"] = kind_intervals(rows)
    if trainer.is_global_zero:
        write_results(cfg, run, record, postprocess, own_postprocess, rows)
        name = run.checkpoint_path.name if len(runs) == 1 else f"ensemble of {len(runs)}"
        print_metrics(metrics, title=f"{name}: {cfg.split} split, {n_images} images")
        print_kinds(metrics, cfg.split, title=f"{cfg.split} split by image kind")
        if "map_interval" in record:
            low, high = record["map_interval"]["low"], record["map_interval"]["high"]
            print(f"map 95% interval over the images (bootstrap): [{low:.4f}, {high:.4f}]")
    return record


def write_results(
    cfg: DictConfig,
    run: Run,
    record: dict[str, Any],
    postprocess: PostprocessConfig,
    own_postprocess: bool,
    image_rows: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Write the record to this evaluation's folder (``cfg.output``, else the Hydra run
    folder) and beside the checkpoint; the one place nuclei-eval writes files.

    Beside the checkpoint it is ``<stem>.<split>.eval.json`` for the run's own data and
    postprocessing; other settings add a digest of them (or ``cfg.label``), so that
    evaluating one checkpoint several ways keeps every result. An ensemble's record goes to
    its own folder only.
    """
    out_dir = RunDir(cfg.output) if cfg.get("output") else RunDir.current(cfg)
    written = [out_dir.write_json(out_dir.eval_metrics_file, record)]
    written.append(write_image_scores(out_dir.eval_images_file, image_rows))
    if record.get("ensemble", 1) == 1:
        data_given = given_values(cfg.get("data"))
        own = own_postprocess and not data_given and record["tta"] == "none"
        digest = None if own else settings_digest(data_given, postprocess, record["tta"])
        digest = cfg.get("label") or digest
        beside = RunDir.checkpoint_eval_file(run.checkpoint_path, cfg.split, digest)
        try:
            written.append(out_dir.write_json(beside, record))
            images = RunDir.checkpoint_images_file(run.checkpoint_path, cfg.split, digest)
            written.append(write_image_scores(images, image_rows))
        except OSError as exc:
            log.warning("Could not write %s beside the checkpoint: %s", beside, exc)
    for path in written:
        log.info("Metrics written to %s", path)


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors(APP.name, EvaluationError, CrossValidationError, ValueError):
        if cfg.get("out_of_fold"):
            evaluate_out_of_fold(cfg)
        else:
            evaluate(cfg)


main = command(APP, _hydra_main, "exits with status 2 and a one-line reason on bad input.")


if __name__ == "__main__":
    main()
