"""A real 2-run multirun, then nuclei-summarize: both runs listed with metrics, files written."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from support.tensorboard_server import SESSION_GROUPS_QUERY, get, tensorboard_server
from support.training import (
    run_multirun,
)

from nuclei.runs.sweep import find_runs, summarize

SUMMARIZE = Path(sys.executable).parent / "nuclei-summarize"


def test_two_run_sweep_is_summarized(synthetic_root: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = run_multirun(sweep, synthetic_root, tmp_path, "optimizer.lr=1e-3,3e-3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [run.path.name for run in find_runs(sweep)] == ["0", "1"]

    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    shown = subprocess.run(  # stdout into a pipe, as `nuclei-summarize SWEEP > file` does
        [str(SUMMARIZE), str(sweep)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert shown.returncode == 0, shown.stderr
    assert "optimizer.lr=0.001" in shown.stdout and "optimizer.lr=0.003" in shown.stdout
    for header in ("overrides", "val/iou", "val/loss", "val/map", "wall_time_s"):
        assert header in shown.stdout, header  # every header whole, none cut to '…'
    assert "…" not in shown.stdout
    assert "trainer.max_epochs=2" not in shown.stdout  # shared overrides are left out

    runs = summarize(sweep)
    ious = [run.value("val/iou") for run in runs]
    assert ious == sorted(ious, reverse=True)
    for run in runs:
        recorded = json.loads((sweep / run.name / "metrics.json").read_text())
        assert run.value("val/iou") == recorded["val/iou"]
        assert len(run.curve) == 2  # one val/iou point per epoch, from TensorBoard

    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["run"] for row in rows} == {"0", "1"}
    assert {row["overrides"] for row in rows} == {"optimizer.lr=0.001", "optimizer.lr=0.003"}
    assert [row["val/iou"] for row in rows] == [f"{iou:.4f}" for iou in ious]
    markdown = (sweep / "summary.md").read_text().splitlines()
    assert len(markdown) == 4 and "val/iou" in markdown[0]
    with Image.open(sweep / "val_iou.png") as plot:
        assert plot.size == (900, 560)
        assert len(plot.getcolors(maxcolors=10_000) or []) > 3  # lines drawn, not blank

    # TensorBoard on the sweep folder: one HPARAMS row per run, with that run's final val/iou.
    with tensorboard_server(sweep, expected_runs=2) as url:
        groups = get(f"{url}/data/plugin/hparams/session_groups", SESSION_GROUPS_QUERY)
    rows = {}
    for group in groups["sessionGroups"]:
        metrics = {v["name"]["tag"]: v["value"] for v in group["metricValues"]}
        rows[group["hparams"]["optimizer/lr"]] = metrics["hp/val_iou"]
    by_lr = {float(run.overrides[0].split("=")[1]): run.value("val/iou") for run in runs}
    assert rows.keys() == by_lr.keys()
    for lr, iou in by_lr.items():
        assert rows[lr] == pytest.approx(iou, abs=1e-6)


@pytest.mark.parametrize("spelling", ["sweep={}", "{}"])
def test_summarize_of_an_empty_folder_fails_cleanly(tmp_path: Path, spelling: str) -> None:
    """One line on stderr naming the folder, exit status 2, and nothing written: not into
    the empty folder (no summary of nothing), not into the working directory."""
    empty, work = tmp_path / "empty_sweep", tmp_path / "work"
    empty.mkdir()
    work.mkdir()
    done = subprocess.run(
        [str(SUMMARIZE), spelling.format(empty)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=work,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"nuclei-summarize: {empty}: no runs found"), line
    assert "hydra.sweep.dir" in line  # what to give instead
    assert done.stdout == ""
    assert list(empty.iterdir()) == []
    assert list(work.iterdir()) == []  # no folder of its own (no outputs/, no .hydra/)


def test_summarize_of_a_missing_folder_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_sweep"
    done = subprocess.run(
        [str(SUMMARIZE), str(missing)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == f"nuclei-summarize: {missing}: no such folder", line
    assert list(tmp_path.iterdir()) == []
