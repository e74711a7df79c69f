"""A prediction's output never overlaps its input; nuclei-predict's Hydra folder is its output
unless the run will be refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from nuclei.inference.output_folder import OutputFolderError, can_be_made, refuse_overlap
from nuclei.inference.output_lock import output_lock
from nuclei.inference.predict_run_dir import predict_run_dir


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
