"""MLflow tracking of a run (``logger=mlflow``): Lightning's ``MLFlowLogger`` on a local store.

The runs of every command go into one file store (``outputs/mlruns`` by default), one MLflow
experiment per task (``train``), one MLflow run per run folder, named after that folder
and tagged with its path, so that ``mlflow ui --backend-store-uri outputs/mlruns`` lists and
compares them and each leads back to its checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger

#: The variable by which MLflow 3 accepts a file store (it refuses one without it).
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
#: The tag holding the absolute path of the run folder an MLflow run belongs to.
RUN_DIR_TAG = "nuclei.run_dir"
#: What to install when MLflow is missing.
INSTALL_HINT = "pip install 'nuclei[mlflow]' (or mlflow-skinny)"


class MissingOptionalDependencyError(ImportError):
    """An option needs a package of one of nuclei's optional extras that is not installed."""


def require_mlflow() -> None:
    """Raise :class:`MissingOptionalDependencyError` in one line if MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise MissingOptionalDependencyError(
            f"logger=mlflow needs the MLflow client, which is not installed: {INSTALL_HINT}"
        ) from None


def run_name(run_dir: str | Path, root_dir: str | Path) -> str:
    """The MLflow run name of a run folder: its path under ``root_dir`` (``train/<time>``,
    ``train-multirun/<time>/3``), or its own absolute path when it lies elsewhere."""
    run, root = Path(run_dir).resolve(), Path(root_dir).resolve()
    return run.relative_to(root).as_posix() if run.is_relative_to(root) else str(run)


def mlflow_logger(
    save_dir: str,
    experiment_name: str,
    run_dir: str,
    root_dir: str,
    tracking_uri: str | None = None,
    tags: dict[str, Any] | None = None,
) -> MLFlowLogger:
    """An ``MLFlowLogger`` of the run folder ``run_dir`` into the file store ``save_dir``
    (made absolute), or to ``tracking_uri`` (e.g. an MLflow server) when one is given."""
    require_mlflow()
    if tracking_uri is None:
        tracking_uri = Path(save_dir).resolve().as_uri()
    if tracking_uri.startswith("file:"):
        os.environ.setdefault(ALLOW_FILE_STORE, "true")
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name(run_dir, root_dir),
        tracking_uri=tracking_uri,
        tags={RUN_DIR_TAG: str(Path(run_dir).resolve()), **(tags or {})},
    )
