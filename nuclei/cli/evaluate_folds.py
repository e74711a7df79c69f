"""Out-of-fold evaluation of a cross-validation sweep: ``nuclei-eval SWEEP out_of_fold=true``.

Every image is scored once, with the fold model that did not train on it (its own
postprocessing: the run's, tuned, or given), and the scores are pooled over all images
(``cv/map``, ``cv/iou``...) and kept per fold. A sweep of several configurations (e.g.
``experiment=binary_unet,instance_unet``) gives one cross-validation each.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.table import Table

from nuclei.cli.console import print_table
from nuclei.cli.eval_settings import postprocess_source, run_postprocessing
from nuclei.instances.map_scores import MapScores, postprocess_maps
from nuclei.metrics.image_rows import write_image_scores
from nuclei.runs.cross_validation import CrossValidation, cross_validations, out_of_fold_predictions
from nuclei.runs.run_dir import RunDir

log = logging.getLogger(__name__)

#: Metrics shown in the console table.
SHOWN = ("map", "ap50", "ap75", "iou", "dice", "acc")
#: File name of the out-of-fold record, in the evaluation's folder and in the sweep folder.
CV_METRICS_FILE = "cv_metrics.json"
CV_IMAGES_FILE = "cv_images.csv"


def evaluate_cross_validation(cv: CrossValidation, cfg: DictConfig) -> tuple[dict[str, Any], list]:
    """Score one cross-validation out of fold: its record (pooled ``cv/*`` metrics, one entry
    per fold) and its per-image rows (with their fold)."""
    pooled = MapScores()
    folds: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    tta = str(cfg.get("tta") or "none")
    predictions = out_of_fold_predictions(
        cv,
        str(cfg.device),
        cfg.get("batch_size"),
        bool(cfg.trust_checkpoint),
        cfg.progress_bar,
        tta,
    )
    for fold_run, (run, predicted) in zip(cv.runs, predictions, strict=True):
        postprocess, _ = run_postprocessing(run, cfg)
        labels = postprocess_maps(predicted.maps, postprocess, run.target)
        own = MapScores(float(run.config.task.get("threshold", 0.5)))
        own.update(predicted.maps, predicted.labels, labels, predicted.ids)
        pooled.merge(own)
        rows += [{**row, "fold": fold_run.fold} for row in own.rows]
        folds.append(
            {
                "fold": fold_run.fold,
                **own.compute(),
                "checkpoint": str(run.checkpoint_path.resolve()),
                "postprocess": asdict(postprocess),
                "postprocess_source": postprocess_source(run, cfg),
            }
        )
    record = {f"cv/{name}": value for name, value in pooled.compute().items()}
    record.update(
        configuration=cv.label, folds=folds, n_folds=len(folds), tta=tta, target=run.target
    )
    return record, rows


def fold_table(record: dict[str, Any]) -> Table:
    """Per-fold and pooled scores of one cross-validation."""
    table = Table(title=f"Out-of-fold scores: {record['configuration']}")
    table.add_column("fold")
    table.add_column("images", justify="right")
    for name in SHOWN:
        table.add_column(name, justify="right")
    for fold in record["folds"]:
        values = [f"{fold[name]:.4f}" for name in SHOWN]
        table.add_row(str(fold["fold"]), str(fold["n_images"]), *values)
    pooled = [f"{record[f'cv/{name}']:.4f}" for name in SHOWN]
    table.add_row("all", str(record["cv/n_images"]), *pooled, style="bold")
    return table


def evaluate_out_of_fold(cfg: DictConfig) -> dict[str, Any]:
    """Score every cross-validation of the sweep ``cfg.ckpt_path`` out of fold; print and
    write ``cv_metrics.json`` and ``cv_images.csv`` to the evaluation's folder and the sweep."""
    started = time.perf_counter()
    sweep = Path(str(cfg.ckpt_path)).expanduser()
    records, rows = [], []
    for cv in cross_validations(sweep):
        record, cv_rows = evaluate_cross_validation(cv, cfg)
        records.append(record)
        rows += [{**row, "configuration": cv.label} for row in cv_rows]
        print_table(fold_table(record))
    result = {
        "sweep": str(sweep.resolve()),
        "cross_validations": records,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    out_dir = RunDir(cfg.output) if cfg.get("output") else RunDir.current(cfg)
    for folder in (out_dir, RunDir(sweep)):
        written = folder.write_json(folder.path / CV_METRICS_FILE, result)
        write_image_scores(folder.path / CV_IMAGES_FILE, rows, ("configuration", "fold"))
        log.info("Out-of-fold metrics written to %s", written)
    return result
