"""Reading a Kaggle solution CSV into label images, with every bad row named."""

from pathlib import Path

import numpy as np
import pytest
from support.samples import write_solution

from nuclei.data.sources.solution import (
    SolutionError,
    parse_solution,
    read_solution,
    solution_labels,
)

HEADER = "ImageId,EncodedPixels,Height,Width,Usage\n"


def test_own_encoder_round_trip_through_the_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    expected = {}
    for image_id in ("a", "b"):
        labels = np.zeros((9, 7), np.int32)
        for k in range(1, 4):
            row, col = rng.integers(0, 6), rng.integers(0, 5)
            labels[row : row + 3, col : col + 2][labels[row : row + 3, col : col + 2] == 0] = k
        expected[image_id] = labels
    images = read_solution(write_solution(tmp_path / "s.csv", expected))
    assert set(images) == {"a", "b"}
    for image_id, labels in expected.items():
        assert images[image_id].shape == (9, 7)
        np.testing.assert_array_equal(solution_labels(images[image_id]), labels)


def test_hand_written_csv(tmp_path: Path) -> None:
    # A 3x4 image, pixels numbered down the columns: 1 4 7 10 / 2 5 8 11 / 3 6 9 12.
    path = tmp_path / "hand.csv"
    path.write_text(
        "\ufeffImageId,EncodedPixels,Height,Width,Usage\n"  # with a byte-order mark
        "img,1 2,3,4,Public\n"  # pixels 1, 2: top two of column 0
        "img,9 2,3,4,Public\n"  # pixels 9, 10: bottom of column 2, top of column 3
        "\n"
        "empty,,3,4,Private\n"  # an image without nuclei
    )
    images = read_solution(path)
    expected = np.array([[1, 0, 0, 2], [1, 0, 0, 0], [0, 0, 2, 0]], np.int32)
    np.testing.assert_array_equal(solution_labels(images["img"]), expected)
    assert not solution_labels(images["empty"]).any()


def test_submission_style_csv_without_sizes_takes_the_image_shape(tmp_path: Path) -> None:
    path = tmp_path / "sub.csv"
    path.write_text("ImageId,EncodedPixels\nimg,2 3\n")
    image = read_solution(path)["img"]
    assert image.shape is None
    labels = solution_labels(image, (2, 3))
    np.testing.assert_array_equal(labels, [[0, 1, 0], [1, 1, 0]])
    with pytest.raises(SolutionError, match="runs end at pixel 4, past the image's 3 pixels"):
        solution_labels(image, (1, 3))
    with pytest.raises(ValueError, match="no Height/Width"):
        solution_labels(image)


def test_every_malformed_row_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "ok,1 2,3,4,Public\n"  # line 2
        "odd,1 2 3,3,4,Public\n"  # line 3
        "range,11 5,3,4,Public\n"  # line 4
        "overlap,1 4 3 2,3,4,Public\n"  # line 5
        "size,1 1,x,4,Public\n"  # line 6
        "size2,1 1,3,4,Public\n"  # line 7
        "size2,5 1,4,4,Public\n"  # line 8: the image changes size
    )
    solution = parse_solution(path)
    assert set(solution.problems) == {"odd", "range", "overlap", "size", "size2"}
    with pytest.raises(SolutionError) as raised:
        read_solution(path)
    message = str(raised.value)
    assert "5 malformed row(s)" in message
    for expected in (
        "line 3 (image odd): odd number of values",
        "line 4 (image range): run 1 (11 5) ends at pixel 15, past the image's 12 pixels",
        "line 5 (image overlap): overlapping runs",
        "line 6 (image size): Height 'x' is not an integer",
        "line 8 (image size2): size 4x4 differs",
    ):
        assert expected in message
    assert "line 2" not in message


def test_overlapping_nuclei_name_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "img,1 3,3,4,Public\nimg,5 1,3,4,Public\nimg,3 2,3,4,Public\n")
    with pytest.raises(
        SolutionError, match=r"line 4 \(image img\): nucleus overlaps the one on line 2"
    ):
        solution_labels(read_solution(path)["img"])


def test_file_level_problems(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("Id,Pixels\na,1 1\n")
    with pytest.raises(SolutionError, match=r"cols\.csv: expected a CSV with columns.*ImageId"):
        parse_solution(path)
    with pytest.raises(SolutionError, match=r"missing\.csv: cannot be read"):
        parse_solution(tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x89PNG\xff\xfe\x00")
    with pytest.raises(SolutionError, match=r"binary\.csv"):
        parse_solution(binary)
