"""Runs grouped by their overrides but seed and fold, paired comparisons of two groups, and the
nuclei-eval results of a run's best checkpoint read into its summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nuclei.runs.sweep import RunSummary, summarize
from nuclei.runs.sweep_groups import GroupError, compare, find_group, group_runs, replicate_of
from nuclei.training.objective import Objective


def run(name: str, overrides: list[str], **metrics: float) -> RunSummary:
    """A run summary with ``val_iou=0.7`` written as ``val/iou``."""
    values = {key.replace("_", "/", 1): value for key, value in metrics.items()}
    return RunSummary(name, overrides, values, Objective())


def cross_validation() -> list[RunSummary]:
    """Two models over three folds; the instance model's runs listed in another fold order."""
    shared = ["trainer.max_epochs=2", "data.split.folds=3"]
    binary = [
        run(str(i), ["model=binary", f"data.split.fold={fold}", *shared], val_iou=iou)
        for i, (fold, iou) in enumerate([(0, 0.70), (1, 0.72), (2, 0.68)])
    ]
    instance = [
        run(str(3 + i), ["model=instance", f"data.split.fold={fold}", *shared], val_iou=iou)
        for i, (fold, iou) in enumerate([(2, 0.73), (0, 0.74), (1, 0.75)])
    ]
    return [*binary, *instance]


def test_runs_differing_in_fold_only_form_a_group_labelled_by_what_differs() -> None:
    groups = group_runs(cross_validation())
    assert [group.label for group in groups] == ["model=instance", "model=binary"]  # best first
    instance, binary = groups
    assert [r.name for r in binary.runs] == ["0", "1", "2"]
    assert sorted(instance.values("val/iou")) == [0.73, 0.74, 0.75]
    # binary: mean 0.70, std 0.02, t(0.975, 2) = 4.3026527: 0.70 -+ 4.3026527 * 0.02 / sqrt(3)
    interval = binary.interval("val/iou")
    assert (interval.n, interval.mean, interval.std) == pytest.approx((3, 0.70, 0.02))
    assert (interval.low, interval.high) == pytest.approx((0.6503173, 0.7496827), abs=1e-6)
    assert binary.interval("val/map") is None  # no run recorded it


def test_seeds_group_too_and_one_configuration_is_all() -> None:
    runs = [
        run(str(s), [f"+seed={s}", "optimizer.lr=0.001"], val_iou=0.5 + s / 100) for s in (1, 2)
    ]
    (group,) = group_runs(runs)
    assert group.label == "all" and len(group.runs) == 2
    assert replicate_of(runs[0]) == ("1", None)
    # A group that overrides nothing the others do not is the defaults.
    runs.append(run("x", ["optimizer.lr=0.001", "model=smp", "seed=1"], val_iou=0.9))
    assert {group.label for group in group_runs(runs)} == {"defaults", "model=smp"}


def test_compare_pairs_runs_by_fold() -> None:
    groups = group_runs(cross_validation())
    result = compare(groups, "binary", "model=instance", "val/iou")
    # pairs by fold: 0.74-0.70, 0.75-0.72, 0.73-0.68 = 0.04, 0.03, 0.05
    assert (result.a, result.b) == ("model=binary", "model=instance")
    assert result.difference.n == 3 and result.unmatched == []
    assert result.difference.mean == pytest.approx(0.04)
    assert result.difference.std == pytest.approx(0.01)
    assert (result.difference.low, result.difference.high) == pytest.approx(
        (0.0151586, 0.0648414), abs=1e-6
    )
    assert result.pairs == ["data.split.fold=0", "data.split.fold=1", "data.split.fold=2"]
    record = result.as_dict()
    assert record["n_pairs"] == 3 and record["mean"] == pytest.approx(0.04)
    json.dumps(record, allow_nan=False)


def test_compare_leaves_out_unmatched_runs_and_says_so() -> None:
    runs = cross_validation()
    runs[0].overrides[1] = "data.split.fold=7"  # binary's fold 0 run becomes fold 7
    result = compare(group_runs(runs), "binary", "instance", "val/iou")
    assert result.difference.n == 2
    assert result.difference.mean == pytest.approx((0.03 + 0.05) / 2)
    assert result.unmatched == [
        "model=binary: data.split.fold=7",
        "model=instance: data.split.fold=0",
    ]
    # One pair: a mean difference without an interval.
    runs[1].overrides[1] = "data.split.fold=8"  # binary's folds: 7, 8, 2
    single = compare(group_runs(runs), "binary", "instance", "val/iou").difference
    assert single.n == 1 and single.mean == pytest.approx(0.73 - 0.68)
    assert math.isnan(single.low) and math.isnan(single.std)


def test_compare_errors_name_the_groups_and_runs() -> None:
    runs = cross_validation()
    for binary_run in runs[:3]:
        binary_run.overrides[1] += "0"  # folds 00, 10, 20
    groups = group_runs(runs)
    with pytest.raises(GroupError, match=r"data.split.fold=00.*data.split.fold=2"):
        compare(groups, "binary", "instance", "val/iou")
    with pytest.raises(GroupError, match="matches several groups"):
        find_group(groups, "model=")
    with pytest.raises(GroupError, match="no group matches 'smp'"):
        find_group(groups, "smp")
    with pytest.raises(GroupError, match="same group"):
        compare(groups, "binary", "model=binary", "val/iou")
    with pytest.raises(GroupError, match="recorded val/map"):
        compare(groups, "binary", "instance", "val/map")
    twice = [run("a", ["model=x"], val_iou=0.1), run("b", ["model=x"], val_iou=0.2)]
    twice.append(run("c", ["model=y"], val_iou=0.3))
    with pytest.raises(GroupError, match="several runs with"):
        compare(group_runs(twice), "model=x", "model=y", "val/iou")


def write_run(folder: Path, overrides: list[str], metrics: dict, evaluations: dict) -> None:
    """A run folder as nuclei-train and nuclei-eval leave it (without checkpoints)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "checkpoints").mkdir()
    for name, record in evaluations.items():
        (folder / "checkpoints" / name).write_text(json.dumps(record))


def test_evaluations_of_the_best_checkpoint_join_the_run_metrics(tmp_path: Path) -> None:
    best = "/elsewhere/checkpoints/epoch005-iou0.7676.ckpt"
    shifted = {
        "test/map": 0.31,
        "test/iou": 0.62,
        "split": "test",
        "tta": "flips",
        "test_root": "/data/shifted/test",
        "postprocess": {"threshold": 0.5},
        "n_images": 40,
        "checkpoint": best,
    }
    write_run(
        tmp_path / "0",
        ["seed=1"],
        {"val/iou": 0.7676, "val/map": 0.40, "best_checkpoint": best},
        {
            "epoch005-iou0.7676.test.abcd1234.eval.json": shifted,
            "epoch005-iou0.7676.test.eval.json": {"test/map": 0.35, "split": "test"},
            "epoch005-iou0.7676.val.eval.json": {"val/map": 0.99, "val/dice": 0.8, "split": "val"},
            "last.test.abcd1234.eval.json": {**shifted, "test/map": 0.01},  # not the best
            "epoch005-iou0.7676.test.abcd1234.images.csv": "not json",
        },
    )
    write_run(
        tmp_path / "1", ["seed=2"], {"val/iou": 0.5}, {"last.test.eval.json": {"test/map": 0.2}}
    )
    first, second = summarize(tmp_path)
    assert first.value("test.abcd1234/map") == 0.31 and first.value("test.abcd1234/iou") == 0.62
    assert first.value("test/map") == 0.35
    assert first.value("val/map") == 0.40  # metrics.json wins over an evaluation on val
    assert first.value("val/dice") == 0.8
    assert sorted(first.tags) == ["test", "test.abcd1234", "val"]
    described = first.tags["test.abcd1234"]
    for part in ("split=test", "test_root=test", "tta=flips", "postprocess=", "40 images"):
        assert part in described, part
    assert second.value("test/map") == 0.2  # no best checkpoint recorded: last's evaluations
