"""nuclei-summarize on a hand-written 2 models x 3 folds sweep: groups with their intervals,
a paired comparison (``--compare A B``), the nuclei-eval tags and the error-bar plot."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SUMMARIZE = Path(sys.executable).parent / "nuclei-summarize"
BEST = "epoch003-iou0.7000"
#: (model, fold, val/iou, test.abcd1234/map); the instance runs are written in another order.
RUNS = [
    ("binary_unet", 0, 0.70, 0.30),
    ("binary_unet", 1, 0.72, 0.32),
    ("binary_unet", 2, 0.68, 0.34),
    ("instance_unet", 2, 0.73, 0.45),
    ("instance_unet", 0, 0.74, 0.40),
    ("instance_unet", 1, 0.75, 0.41),
]


def write_sweep(sweep: Path) -> None:
    """Run folders as nuclei-train and nuclei-eval leave them, minus checkpoints and events."""
    for number, (model, fold, iou, test_map) in enumerate(RUNS):
        run = sweep / str(number)
        (run / ".hydra").mkdir(parents=True)
        overrides = [f"experiment={model}", f"data.split.fold={fold}", "data.split.folds=3"]
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        best = str(run / "checkpoints" / f"{BEST}.ckpt")
        metrics = {"val/iou": iou, "val/loss": 0.1, "best_checkpoint": best, "epochs": 3}
        (run / "metrics.json").write_text(json.dumps(metrics))
        (run / "checkpoints").mkdir()
        record = {
            "test/map": test_map,
            "test/iou": iou - 0.1,
            "split": "test",
            "tta": "d4",
            "test_root": "/data/shifted_test",
            "postprocess": {"threshold": 0.5, "min_area": 10},
            "n_images": 50,
            "checkpoint": best,
        }
        (run / "checkpoints" / f"{BEST}.test.abcd1234.eval.json").write_text(json.dumps(record))


def summarize(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [str(SUMMARIZE), *arguments], capture_output=True, text=True, timeout=120, env=environment
    )


def test_groups_intervals_and_paired_comparison(tmp_path: Path) -> None:
    sweep = tmp_path / "cv"
    write_sweep(sweep)
    done = summarize(str(sweep), "--compare", "binary", "experiment=instance_unet")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # Groups, best first: instance 0.74 +- 0.01 in [0.7152, 0.7648] (t(0.975, 2) = 4.3026527,
    # half width 4.3026527 * 0.01 / sqrt(3) = 0.0248), binary 0.70 +- 0.02 in [0.6503, 0.7497].
    assert "2 groups" in out
    assert "0.7400 ± 0.0100 [0.7152, 0.7648]" in out
    assert "0.7000 ± 0.0200 [0.6503, 0.7497]" in out
    # test map: instance 0.40, 0.41, 0.45: mean 0.42, std sqrt(0.0014 / 2) = 0.0265
    assert "0.4200 ± 0.0265" in out and "0.3200 ± 0.0200" in out
    assert "val/acc" not in out.split("2 groups")[1]  # no run recorded it
    assert "test.abcd1234: split=test, test_root=shifted_test, tta=d4" in out  # the legend

    with (sweep / "groups.csv").open() as handle:
        rows = {row["group"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"experiment=binary_unet", "experiment=instance_unet"}
    binary = rows["experiment=binary_unet"]
    assert binary["runs"] == "3" and binary["val/iou n"] == "3"
    assert float(binary["val/iou mean"]) == pytest.approx(0.70)
    assert float(binary["val/iou low"]) == pytest.approx(0.6503173, abs=1e-6)
    assert float(rows["experiment=instance_unet"]["test.abcd1234/map high"]) == pytest.approx(
        0.42 + 4.3026527 * 0.0264575 / 3**0.5, abs=1e-5
    )
    groups_md = (sweep / "groups.md").read_text()
    assert "| experiment=instance_unet | 3 | 0.7400 ± 0.0100 [0.7152, 0.7648] |" in groups_md
    assert "`test.abcd1234: split=test" in groups_md

    # Paired by fold: val/iou differences 0.04, 0.03, 0.05 -> 0.04 +- 0.01 in [0.0152, 0.0648];
    # test map 0.10, 0.09, 0.11 -> 0.10 +- 0.01 in [0.0752, 0.1248].
    compared = json.loads((sweep / "compare.json").read_text())
    assert (compared["a"], compared["b"]) == ("experiment=binary_unet", "experiment=instance_unet")
    iou = compared["metrics"]["val/iou"]
    assert iou["n_pairs"] == 3 and iou["unmatched"] == []
    assert (iou["mean"], iou["std"]) == pytest.approx((0.04, 0.01))
    assert (iou["low"], iou["high"]) == pytest.approx((0.0151586, 0.0648414), abs=1e-6)
    test_map = compared["metrics"]["test.abcd1234/map"]
    assert (test_map["mean"], test_map["low"]) == pytest.approx((0.10, 0.0751586), abs=1e-6)
    assert "val/acc" not in compared["metrics"]  # no run recorded it
    assert (
        "| val/iou | 3 | 0.0400 | 0.0100 | [0.0152, 0.0648] |" in (sweep / "compare.md").read_text()
    )
    assert "[0.0752, 0.1248]" in out

    for name in ("val_iou_groups.png", "test.abcd1234_map_groups.png"):
        with Image.open(sweep / name) as plot:
            assert plot.size == (900, 560)
            assert len(plot.getcolors(maxcolors=100_000) or []) > 3, name  # drawn, not blank
    assert not (sweep / "val_acc_groups.png").exists()
    assert (sweep / "summary.csv").is_file() and (sweep / "val_iou.png").is_file()


def test_chosen_metrics_and_comparison_errors(tmp_path: Path) -> None:
    sweep = tmp_path / "cv"
    write_sweep(sweep)
    done = summarize(f"sweep={sweep}", "metrics=[test.abcd1234/iou]", "compare=[binary,instance]")
    assert done.returncode == 0, done.stderr
    header = (sweep / "summary.csv").read_text().splitlines()[0]
    assert header == "run,overrides,test.abcd1234/iou,epochs,wall_time_s"
    compared = json.loads((sweep / "compare.json").read_text())
    assert list(compared["metrics"]) == ["test.abcd1234/iou"]
    assert compared["metrics"]["test.abcd1234/iou"]["mean"] == pytest.approx(0.04)

    failed = summarize(str(sweep), "--compare", "unet", "binary")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "matches several groups" in failed.stderr


def test_compare_flag_becomes_a_list_of_two_strings() -> None:
    from hydra import compose, initialize_config_module

    from nuclei.cli.overrides import translate_arguments
    from nuclei.cli.summarize import APP

    arguments, notes = translate_arguments(
        ["runs", "--compare", "model=a b", "1e-3", "output=x"], APP.words
    )
    assert arguments == ["sweep='runs'", r"compare=['model=a b','1e-3']", "output=x"]
    assert len(notes) == 1
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose("summarize", overrides=arguments)
    assert list(cfg.compare) == ["model=a b", "1e-3"]  # strings, as typed
