"""MapScores: pooled pixel metrics of probability maps and the DSB metric of their instances,
against hand-counted values and against the scores of label images."""

import numpy as np
import pytest

from nuclei.instances.map_scores import MapScores, postprocess_maps
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.metrics.label_images import label_image_scores


def square_labels(shape: tuple[int, int], corners: list[tuple[int, int]], side: int) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int32)
    for i, (r, c) in enumerate(corners, start=1):
        labels[r : r + side, c : c + side] = i
    return labels


def test_pooled_pixel_iou_and_map_match_hand_counts() -> None:
    truth_a = square_labels((20, 20), [(2, 2), (10, 10)], 5)  # 50 foreground pixels
    truth_b = square_labels((16, 24), [(4, 4)], 6)  # 36 foreground pixels
    map_a = (truth_a > 0).astype(np.float32)[None] * 0.9  # exact
    map_b = np.zeros((1, 16, 24), dtype=np.float32)
    map_b[0, 4:10, 4:13] = 0.8  # 54 pixels predicted: 36 right, 18 extra
    maps, labels = [map_a, map_b], [truth_a, truth_b]
    config = PostprocessConfig(threshold=0.5, min_area=0)
    predicted = postprocess_maps(maps, config, "binary")
    scores = MapScores(pixel_threshold=0.5)
    scores.update(maps, labels, predicted, ["a", "b"])
    result = scores.compute()
    # foreground: intersection 50 + 36, union 50 + 54
    assert result["iou"] == pytest.approx(86 / 104, abs=1e-6)
    assert result["n_images"] == 2
    expected = label_image_scores(zip(labels, predicted, strict=True))
    assert result["map"] == pytest.approx(expected["map"], abs=1e-6)
    assert result["ap50"] == pytest.approx(expected["ap50"], abs=1e-6)
    assert [row["id"] for row in scores.rows] == ["a", "b"]
    assert scores.rows[0]["map"] == pytest.approx(1.0)


def test_scores_pool_over_updates() -> None:
    truth = square_labels((12, 12), [(1, 1), (6, 6)], 4)
    prob = (truth > 0).astype(np.float32)[None]
    prob[0, 1:5, 1:5] = 0.2  # the first nucleus is missed
    config = PostprocessConfig(threshold=0.5, min_area=0)
    predicted = postprocess_maps([prob], config, "binary")
    once, twice = MapScores(), MapScores()
    once.update([prob, prob], [truth, truth], predicted * 2, ["x", "y"])
    twice.update([prob], [truth], predicted, ["x"])
    twice.update([prob], [truth], predicted, ["y"])
    assert once.compute() == pytest.approx(twice.compute())
    assert once.compute()["iou"] == pytest.approx(16 / 32)


def test_merged_scores_equal_scores_of_all_images_at_once() -> None:
    truth = square_labels((12, 12), [(1, 1), (6, 6)], 4)
    good = (truth > 0).astype(np.float32)[None]
    poor = good.copy()
    poor[0, 1:5, 1:5] = 0.2  # the first nucleus is missed
    poor[0, 0, :] = 0.9  # and a stripe of background is taken for foreground
    config = PostprocessConfig(threshold=0.5, min_area=0)
    maps = [good, poor, poor]
    predicted = postprocess_maps(maps, config, "binary")
    together = MapScores()
    together.update(maps, [truth] * 3, predicted, ["a", "b", "c"])
    first, second = MapScores(), MapScores()
    first.update(maps[:1], [truth], predicted[:1], ["a"])
    second.update(maps[1:], [truth] * 2, predicted[1:], ["b", "c"])
    first.merge(second)
    assert first.compute() == pytest.approx(together.compute())
    assert [row["id"] for row in first.rows] == ["a", "b", "c"]
    assert second.compute()["n_images"] == 2  # the merged-in scores are left as they were
