"""Per-image rows of the DSB metric: the same scores as image_scores, whole under DDP, as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nuclei.metrics.dsb import DSBInstanceMetric, image_scores
from nuclei.metrics.image_rows import (
    IMAGE_ROW_COLUMNS,
    IMAGE_SCORE_COLUMNS,
    foreground_iou,
    gather_rows,
    image_scores_csv,
    interleave,
    scores_by_kind,
    write_image_scores,
)


def squares(shape: tuple[int, int], boxes: list[tuple[int, int, int]]) -> np.ndarray:
    """Label image with square k (row, col, side) labelled k + 1."""
    out = np.zeros(shape, dtype=np.int32)
    for k, (row, col, side) in enumerate(boxes):
        out[row : row + side, col : col + side] = k + 1
    return out


def hand_made_batch() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Four images of different sizes: perfect, a missed nucleus, a merge, both empty."""
    truth = [
        squares((32, 40), [(2, 2, 8), (20, 20, 6)]),
        squares((24, 24), [(2, 2, 6), (12, 12, 6), (2, 14, 5)]),
        squares((32, 32), [(4, 4, 8), (4, 13, 8)]),
        np.zeros((16, 20), dtype=np.int32),
    ]
    merged = truth[2].copy()
    merged[4:12, 4:21] = 1
    shifted = np.roll(truth[0], 2, axis=1)
    pred = [shifted, squares((24, 24), [(2, 2, 6), (12, 12, 6)]), merged, truth[3].copy()]
    return truth, pred, ["a", "b", "c", "d"]


def recording_metric() -> DSBInstanceMetric:
    metric = DSBInstanceMetric()
    metric.record_images = True
    return metric


def test_rows_equal_image_scores_of_each_image_and_average_to_map() -> None:
    truth, pred, ids = hand_made_batch()
    metric = recording_metric()
    metric.update(pred[:2], truth[:2], ids=ids[:2])
    metric.update(pred[2:], truth[2:], ids=ids[2:])
    rows = metric.take_image_rows()

    assert [row["id"] for row in rows] == ids
    for row, true, predicted in zip(rows, truth, pred, strict=True):
        expected = image_scores(true, predicted)
        assert list(row) == list(IMAGE_ROW_COLUMNS)
        assert (row["height"], row["width"]) == true.shape
        for name in ("n_true", "n_pred", "tp", "fp", "fn", "n_split", "n_merged", "map"):
            assert row[name] == expected[name], name
        assert row["ap50"] == expected["scores"][0] and row["ap75"] == expected["scores"][5]
        assert row["iou"] == foreground_iou(true, predicted)
    assert len({row["map"] for row in rows}) > 2  # the images really score differently
    assert rows[2]["n_merged"] == 1 and rows[1]["fn"] == 1 and rows[3]["map"] == 1.0

    aggregate = metric.compute()
    assert np.mean([row["map"] for row in rows]) == pytest.approx(float(aggregate["map"]))
    assert np.mean([row["ap50"] for row in rows]) == pytest.approx(float(aggregate["ap50"]))


def test_rows_are_kept_only_when_asked_survive_reset_and_are_taken_once() -> None:
    truth, pred, ids = hand_made_batch()
    metric = DSBInstanceMetric()
    metric.update(pred, truth, ids=ids)
    assert metric.take_image_rows() == []  # not recording: nothing kept, nothing extra done

    metric.record_images = True
    metric.update(torch.from_numpy(np.stack([pred[2]])), torch.from_numpy(np.stack([truth[2]])))
    metric.reset()  # an epoch's end resets the sums, not the rows waiting to be taken
    rows = metric.take_image_rows()
    assert len(rows) == 1 and rows[0]["id"] is None and rows[0]["n_merged"] == 1
    assert metric.take_image_rows() == []


def test_foreground_iou() -> None:
    a = squares((10, 10), [(0, 0, 4)])
    b = squares((10, 10), [(0, 2, 4)])  # overlaps 8 of 24 pixels
    assert foreground_iou(a, b) == pytest.approx(8 / 24)
    assert foreground_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_interleave_restores_the_order_of_samples_taken_in_turn() -> None:
    order = list(range(7))
    parts = [order[rank::3] for rank in range(3)]  # the evaluation sampler's shares
    assert interleave(parts) == order
    assert gather_rows([{"id": "x"}]) == [{"id": "x"}]  # one process: as they are


def _gather_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        truth, pred, ids = hand_made_batch()
        metric = recording_metric()
        mine = list(range(rank, len(ids), world))  # what the evaluation sampler gives a rank
        metric.update([pred[k] for k in mine], [truth[k] for k in mine], ids=[ids[k] for k in mine])
        rows = metric.take_image_rows()
        Path(out_dir, f"{rank}.csv").write_text(image_scores_csv(rows))
    finally:
        dist.destroy_process_group()


def test_rows_from_every_ddp_process_each_image_once(tmp_path: Path) -> None:
    truth, pred, ids = hand_made_batch()
    single = recording_metric()
    single.update(pred, truth, ids=ids)
    expected = image_scores_csv(single.take_image_rows())

    world = 3  # 4 images over 3 processes: one of them scores two
    # fork: the processes start at once, without importing torch and nuclei again
    mp.start_processes(
        _gather_worker,
        args=(world, str(tmp_path / "init"), str(tmp_path)),
        nprocs=world,
        start_method="fork",
    )
    for rank in range(world):
        assert (tmp_path / f"{rank}.csv").read_text() == expected


def test_csv_file_has_a_header_a_source_column_and_one_line_per_image(tmp_path: Path) -> None:
    truth, pred, ids = hand_made_batch()
    metric = recording_metric()
    metric.update(pred, truth, ids=ids)
    rows = [{**row, "source": "tissue"} for row in metric.take_image_rows()]
    rows[3].pop("source")  # unknown: left empty

    path = write_image_scores(tmp_path / "deep" / "eval_images.csv", rows)
    read = list(csv.DictReader(io.StringIO(path.read_text())))
    assert tuple(read[0]) == IMAGE_SCORE_COLUMNS
    assert [r["id"] for r in read] == ids
    assert [r["source"] for r in read] == ["tissue"] * 3 + [""]
    assert [float(r["map"]) for r in read] == [row["map"] for row in rows]
    assert [int(r["width"]) for r in read] == [40, 24, 32, 20]
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_scores_by_kind_averages_each_kinds_images_apart() -> None:
    rows = [
        {"id": "a", "kind": "fluorescence", "map": 0.8, "ap50": 1.0, "iou": 0.9},
        {"id": "b", "kind": "fluorescence", "map": 0.4, "ap50": 0.5, "iou": 0.7},
        {"id": "c", "kind": "tissue", "map": 0.1, "ap50": 0.2, "iou": 0.3},
        {"id": "d", "kind": None, "map": 0.0, "ap50": 0.0, "iou": 0.0},
    ]
    got = scores_by_kind(rows, "val")
    assert got == pytest.approx(
        {
            "val/map_fluorescence": 0.6,
            "val/ap50_fluorescence": 0.75,
            "val/iou_fluorescence": 0.8,
            "val/images_fluorescence": 2.0,
            "val/map_tissue": 0.1,
            "val/ap50_tissue": 0.2,
            "val/iou_tissue": 0.3,
            "val/images_tissue": 1.0,
        }
    )
    assert list(got)[:4] == [f"val/{n}_fluorescence" for n in ("map", "ap50", "iou", "images")]
    assert scores_by_kind(rows[3:], "test") == {}
