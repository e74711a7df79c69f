"""A prediction's output never overlaps its input; nuclei-predict's Hydra folder is its output
unless the run will be refused.

One prediction at a time per output folder: a held lock names its holder, a dead holder's
lock is taken over, a released one is free again.

Per-image records of a prediction: exact round trip, completeness, settings, leftovers,
and the tables assembled from them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nuclei.files import atomic_path
from nuclei.inference.output_files import ImageFileWriter, write_tables
from nuclei.inference.output_folder import (
    LOCK_FILE,
    ImageRecord,
    OutputFolderError,
    can_be_made,
    check_settings,
    complete_images,
    held_here,
    load_failure,
    load_record,
    output_lock,
    predict_run_dir,
    record_path,
    records_dir,
    refuse_overlap,
    remove_leftovers,
    save_failure,
    save_record,
    save_settings,
)
from nuclei.inference.segment import images_to_do


@pytest.mark.parametrize(
    ("source", "output", "why"),
    [
        ("in", "in", "is the input"),
        ("in", "in/../in/", "is the input"),
        ("in", "in/out", "inside the input folder"),
        ("in/a.png", "in/a.png", "is the input"),
        ("in", ".", "the input in is inside output=."),
        ("in/a.png", "in", "the input in/a.png is inside output=in"),
        ("in", "link", "is the input"),
    ],
)
def test_overlapping_folders_are_refused(
    source: str, output: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "in", target_is_directory=True)
    with pytest.raises(OutputFolderError, match=why):
        refuse_overlap(source, output)


def test_folders_apart_or_side_by_side_are_accepted(tmp_path: Path) -> None:
    refuse_overlap(tmp_path / "in", tmp_path / "out")
    refuse_overlap(tmp_path / "in", tmp_path / "in-segmented")  # a prefix is no parent
    refuse_overlap(tmp_path / "in" / "a.png", tmp_path / "in" / "segmented")


def test_a_folder_that_cannot_be_made_is_told(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert can_be_made(tmp_path / "new" / "deeper")
    assert not can_be_made(tmp_path / "file" / "out")


def test_the_hydra_folder_is_the_output_unless_the_run_will_be_refused(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    assert predict_run_dir(str(source), str(out), "default") == str(out)
    assert predict_run_dir(str(source), None, "default") == "default"
    assert predict_run_dir(None, str(out), "default") == "default"
    assert predict_run_dir(str(source), str(source / "out"), 3) == "3"
    (tmp_path / "file").write_text("")
    assert predict_run_dir(str(source), str(tmp_path / "file"), "default") == "default"
    with output_lock(out):  # held by this very process: still its folder
        assert predict_run_dir(str(source), str(out), "default") == str(out)


HOLD = """
import sys, time
from pathlib import Path
from nuclei.inference.output_folder import output_lock
with output_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def holder(out: Path) -> subprocess.Popen[str]:
    """Another process holding ``out``'s lock (it says so once it does)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_folder_held_by_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    process = holder(tmp_path)
    try:
        assert held_here(tmp_path)
        with pytest.raises(OutputFolderError) as refused, output_lock(tmp_path):
            pass
    finally:
        process.kill()
        process.wait()
    message = str(refused.value)
    assert f"pid {process.pid}" in message and socket.gethostname() in message
    assert str(tmp_path) in message


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    process = holder(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stale = json.loads((records_dir(tmp_path) / LOCK_FILE).read_text())
    assert stale["pid"] == process.pid  # its record is still there, its lock is not
    assert not held_here(tmp_path)
    with output_lock(tmp_path):
        assert not held_here(tmp_path)  # by this process, not by another run
        held = json.loads((records_dir(tmp_path) / LOCK_FILE).read_text())
        assert (held["pid"], held["host"]) == (os.getpid(), socket.gethostname())
        assert held["started"]
    assert (records_dir(tmp_path) / LOCK_FILE).read_text() == ""  # released: names no one


def test_one_process_cannot_hold_a_folder_twice_and_frees_it_on_exit(tmp_path: Path) -> None:
    with (
        output_lock(tmp_path),
        pytest.raises(OutputFolderError, match=f"pid {os.getpid()}"),
        output_lock(tmp_path),
    ):
        pass
    with pytest.raises(KeyboardInterrupt), output_lock(tmp_path):
        raise KeyboardInterrupt
    with output_lock(tmp_path):  # free again after an error inside
        pass


def test_an_output_that_cannot_be_made_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    with (
        pytest.raises(OutputFolderError, match="cannot be written") as refused,
        output_lock(tmp_path / "file" / "out"),
    ):
        pass
    assert "\n" not in str(refused.value)


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
