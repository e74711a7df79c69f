"""Per-image records of a prediction: exact round trip, completeness, settings, leftovers,
and the tables assembled from them."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nuclei.inference.image_records import (
    ImageRecord,
    check_settings,
    complete_images,
    load_failure,
    load_record,
    record_path,
    records_dir,
    remove_leftovers,
    save_failure,
    save_record,
    save_settings,
)
from nuclei.inference.output_files import atomic_path
from nuclei.inference.segment import images_to_do
from nuclei.inference.writers import ImageFileWriter, write_tables


def table() -> pd.DataFrame:
    """Ints, floats that need all 17 digits, a NaN, booleans and the image column."""
    return pd.DataFrame(
        {
            "image": ["a", "a"],
            "label": np.array([1, 7], dtype=np.int64),
            "intensity_mean-1": [0.1 + 0.2, float("nan")],
            "probability_mean": np.array([0.51226232, 1 / 3], dtype=np.float64),
            "touches_border": [True, False],
        }
    )


def record(image_id: str = "a", files: tuple[str, ...] = ()) -> ImageRecord:
    return ImageRecord(
        image_id=image_id,
        source=f"/in/{image_id}.png",
        files=list(files),
        summary={"image": image_id, "nuclei": 2, "mean_area": None},
        submission=["1 3", "9 2"],
        nuclei=table().assign(image=image_id),
    )


def test_a_record_reads_back_exactly(tmp_path: Path) -> None:
    (tmp_path / "a_mask.png").write_bytes(b"png")
    save_record(tmp_path, record(files=("a_mask.png",)))
    back = load_record(tmp_path, "a")
    assert back is not None
    pd.testing.assert_frame_equal(back.nuclei, table(), check_exact=True)
    assert back.nuclei["intensity_mean-1"].iloc[0] == 0.1 + 0.2  # all digits kept
    assert back.summary == {"image": "a", "nuclei": 2, "mean_area": None}
    assert back.submission == ["1 3", "9 2"] and back.count == 2


def test_an_image_is_complete_only_with_its_record_and_every_file(tmp_path: Path) -> None:
    (tmp_path / "a_mask.png").write_bytes(b"png")
    save_record(tmp_path, record("a", ("a_mask.png",)))
    save_record(tmp_path, record("b", ("b_mask.png",)))  # its file is gone
    record_path(tmp_path, "c").write_text('{"image": "c", "files"')  # cut short
    assert complete_images(tmp_path, ["a", "b", "c", "d"]) == {"a"}


def test_a_failure_is_recorded_and_cleared_by_success(tmp_path: Path) -> None:
    save_failure(tmp_path, "a", "/in/a.png", "/in/a.png: cannot be read")
    assert load_failure(tmp_path, "a") == "/in/a.png: cannot be read"
    save_record(tmp_path, record("a"))
    assert load_failure(tmp_path, "a") is None


def test_other_settings_are_refused_unless_overwrite(tmp_path: Path) -> None:
    first, other = {"postprocess": {"threshold": 0.5}, "tile": 512}, {"tile": 512}
    check_settings(tmp_path, first, False)  # an empty folder takes any
    save_settings(tmp_path, first)
    check_settings(tmp_path, first, False)
    stored = (records_dir(tmp_path) / "settings.json").read_bytes()
    other["postprocess"] = {"threshold": 0.4}
    with pytest.raises(ValueError, match=r"other settings \(differing: postprocess\).*overwrite"):
        check_settings(tmp_path, other, False)
    assert (records_dir(tmp_path) / "settings.json").read_bytes() == stored  # untouched
    check_settings(tmp_path, other, True)
    save_settings(tmp_path, other)
    check_settings(tmp_path, other, False)


def test_records_of_images_named_like_the_folder_s_own_records_stay_apart(
    tmp_path: Path,
) -> None:
    save_settings(tmp_path, {"tile": 512})
    for image_id in ("settings", "process-0-of-1", "lock", "a", "a.failed"):
        save_record(tmp_path, record(image_id))
    save_failure(tmp_path, "a", "/in/a.png", "/in/a.png: cannot be read")
    check_settings(tmp_path, {"tile": 512}, False)  # the settings record was not replaced
    assert complete_images(tmp_path, ["settings", "process-0-of-1", "lock", "a.failed"]) == {
        "settings",
        "process-0-of-1",
        "lock",
        "a.failed",
    }
    assert load_failure(tmp_path, "a") == "/in/a.png: cannot be read"
    assert load_failure(tmp_path, "a.failed") is None


def test_overwrite_forgets_the_records_of_the_images_it_redoes(tmp_path: Path) -> None:
    paths = [Path("/in/a.png"), Path("/in/b.png")]
    save_record(tmp_path, record("a"))
    assert images_to_do(tmp_path, paths, overwrite=False) == ([Path("/in/b.png")], 1)
    assert images_to_do(tmp_path, paths, overwrite=True) == (paths, 0)
    assert complete_images(tmp_path, ["a", "b"]) == set()  # a killed redo leaves a incomplete


def test_leftovers_of_a_killed_write_are_removed_and_nothing_else(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "a_mask.png") as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt  # a clean failure removes its own temporary file
    killed = tmp_path / ".a_labels.tif.partial-x1y2.tif"  # what SIGKILL leaves behind
    killed.write_bytes(b"half")
    kept = [tmp_path / ".hidden_by_the_user", tmp_path / "a_mask.png"]
    for path in kept:
        path.write_bytes(b"keep")
    assert remove_leftovers(tmp_path) == [killed]
    assert all(path.exists() for path in kept)


def test_tables_from_records_equal_tables_written_directly(tmp_path: Path) -> None:
    labels = np.zeros((20, 30), np.uint32)
    labels[2:6, 3:9], labels[10:18, 20:30] = 1, 2
    image = np.zeros((20, 30, 3), np.uint8)
    image[labels > 0] = 200
    source = tmp_path / "x.png"
    writer = ImageFileWriter(tmp_path / "out")
    written = writer.write("x", source, image, labels, raw=image[..., 0])
    write_tables(tmp_path / "out", [load_record(tmp_path / "out", "x")])
    direct = tmp_path / "direct"
    write_tables(direct, [written])
    for name in ("nuclei.csv", "summary.csv", "submission.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (direct / name).read_bytes()
    assert pd.read_csv(direct / "summary.csv")["nuclei"].tolist() == [2]
