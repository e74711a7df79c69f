"""Kaggle run-length encoding: a hand-checked example, round trips, malformed input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from nuclei.data.sources.rle import RLEError, parse_rle, rle_decode, rle_encode

masks = arrays(bool, array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12))


def test_hand_checked_example() -> None:
    # 3x4 mask; pixels are numbered down the columns:  1  4  7 10
    #                                                  2  5  8 11
    #                                                  3  6  9 12
    # Foreground: 1 2 | 6 | 8 9 | 10 -- and 8, 9, 10 touch across the column break.
    mask = np.array(
        [
            [1, 0, 0, 1],
            [1, 0, 1, 0],
            [0, 1, 1, 0],
        ],
        dtype=np.uint8,
    )
    assert rle_encode(mask) == "1 2 6 1 8 3"
    np.testing.assert_array_equal(rle_decode("1 2 6 1 8 3", (3, 4)), mask.astype(bool))


def test_runs_cross_column_boundaries_and_empty_masks_encode_to_nothing() -> None:
    mask = np.zeros((2, 3), bool)
    mask[1, 0] = mask[0, 1] = mask[1, 1] = True  # pixels 2, 3, 4: one run over two columns
    assert rle_encode(mask) == "2 3"
    assert rle_encode(np.zeros((4, 5), np.uint8)) == ""
    assert not rle_decode("", (4, 5)).any()
    assert rle_decode("1 20", (4, 5)).all()


@given(masks)
@settings(max_examples=200, deadline=None)
def test_decode_inverts_encode(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    decoded = rle_decode(rle, mask.shape)
    assert decoded.dtype == bool and decoded.shape == mask.shape
    np.testing.assert_array_equal(decoded, mask)
    assert rle_encode(decoded) == rle  # encoding is canonical


@given(masks)
@settings(max_examples=100, deadline=None)
def test_encoding_is_sorted_disjoint_one_indexed_pairs(mask: np.ndarray) -> None:
    values = [int(v) for v in rle_encode(mask).split()]
    starts, lengths = values[0::2], values[1::2]
    assert len(starts) == len(lengths)
    assert all(length >= 1 for length in lengths)
    assert all(a + la < b for a, la, b in zip(starts, lengths, starts[1:], strict=False))
    assert sum(lengths) == int(mask.sum())
    if starts:
        assert starts[0] >= 1 and starts[-1] + lengths[-1] - 1 <= mask.size


@given(st.integers(1, 9), st.integers(1, 9), st.data())
@settings(max_examples=100, deadline=None)
def test_column_major_order_matches_transposed_flatten(height: int, width: int, data) -> None:
    index = data.draw(st.integers(0, height * width - 1))
    mask = np.zeros((height, width), bool)
    mask[index % height, index // height] = True  # the index-th pixel, counted down columns
    assert rle_encode(mask) == f"{index + 1} 1"


def test_label_images_encode_their_foreground_and_3d_input_is_refused() -> None:
    labels = np.array([[0, 2], [7, 0]])
    assert rle_encode(labels) == "2 2"
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 2, 3)))


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 2 3", "odd number of values"),
        ("1 x", "integers"),
        ("0 3", "starts at 0"),
        ("3 0", "length 0"),
        ("11 3", "ends at pixel 13, past the image's 12 pixels"),
        ("5 1 1 2", "not in ascending order"),
        ("1 3 3 2", "overlapping runs: run 2 starts at 3 inside run 1"),
    ],
)
def test_malformed_encodings_are_refused(rle: str, message: str) -> None:
    with pytest.raises(RLEError, match=message):
        rle_decode(rle, (3, 4))


def test_parse_returns_zero_based_runs() -> None:
    np.testing.assert_array_equal(parse_rle("1 2 6 1", 12), [[0, 2], [5, 1]])
    assert parse_rle("", 12).shape == (0, 2)
