"""``instance_rles`` (one pass over the whole label image) encodes each nucleus exactly as
``rle_encode`` does its mask, and each encoding decodes back to that nucleus."""

import numpy as np
import pytest

from nuclei.data.sources.rle import instance_rles, rle_decode, rle_encode


def reference_rles(labels: np.ndarray) -> list[tuple[int, str]]:
    """Each present nucleus' mask encoded on its own, in ascending label order."""
    present = np.unique(labels)
    return [(int(k), rle_encode(labels == k)) for k in present[present > 0]]


def blocky_labels(seed: int, shape: tuple[int, int], n_labels: int = 6) -> np.ndarray:
    """Random blocks of labels 0..n_labels-1: touching nuclei, nuclei on every border."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_labels, size=(shape[0] // 4 + 1, shape[1] // 4 + 1))
    labels = np.kron(coarse, np.ones((4, 4), dtype=np.int64))[: shape[0], : shape[1]]
    labels[rng.random(shape) < 0.05] = 0  # single-pixel holes
    return labels


def full_columns_labels() -> np.ndarray:
    """Nuclei spanning whole columns, so runs carry on from one column's bottom to the
    next column's top; plus a different label on each side of such a column break."""
    labels = np.zeros((6, 9), dtype=np.int64)
    labels[3:, 1] = 7  # one run from the bottom half of column 1,
    labels[:, 2:5] = 7  # through three whole columns,
    labels[:3, 5] = 7  # into the top half of column 5
    labels[4:, 6] = 2  # bottom of column 6 ...
    labels[:2, 7] = 3  # ... then a different label at the top of column 7
    labels[:, 8] = 9  # the last column, ending at the last pixel
    labels[0, 0] = 4  # the first pixel
    return labels


def sparse_numbers(labels: np.ndarray) -> np.ndarray:
    """The same nuclei renumbered with gaps (and out of their original order)."""
    numbers = np.array([0, 60_000, 3, 17, 250, 1_000, 42, 8])
    return numbers[labels]


CASES = {
    **{f"blocky-{seed}": blocky_labels(seed, (37, 53)) for seed in range(4)},
    "blocky-tall": blocky_labels(4, (61, 7)),
    "blocky-many": blocky_labels(5, (40, 40), n_labels=200),
    "sparse-numbers": sparse_numbers(blocky_labels(6, (29, 31), n_labels=8)),
    "full-columns": full_columns_labels(),
    "all-nucleus": np.full((5, 4), 12),
    "one-row": blocky_labels(7, (1, 23)),
    "one-column": blocky_labels(8, (23, 1)),
    "1x1-nucleus": np.array([[5]]),
}


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.uint32, np.int64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_instance_rles_equal_each_masks_rle(name: str, dtype: type) -> None:
    labels = CASES[name].astype(dtype)
    encoded = instance_rles(labels)
    assert encoded == reference_rles(labels)
    assert encoded  # every case has nuclei
    for k, rle in encoded:
        np.testing.assert_array_equal(rle_decode(rle, labels.shape), labels == k)


def test_instance_rles_by_hand() -> None:
    labels = full_columns_labels()
    assert instance_rles(labels) == [
        (2, "41 2"),
        (3, "43 2"),
        (4, "1 1"),
        (7, "10 24"),
        (9, "49 6"),
    ]
    assert instance_rles(np.array([[5]], dtype=np.uint16)) == [(5, "1 1")]


@pytest.mark.parametrize("shape", [(1, 1), (8, 13), (0, 0), (0, 5)])
def test_instance_rles_without_nuclei_is_empty(shape: tuple[int, int]) -> None:
    assert instance_rles(np.zeros(shape, dtype=np.uint32)) == []
