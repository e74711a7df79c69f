"""One prediction at a time per output folder: a held lock names its holder, a dead holder's
lock is taken over, a released one is free again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nuclei.inference.image_records import records_dir
from nuclei.inference.output_folder import OutputFolderError
from nuclei.inference.output_lock import LOCK_FILE, held_here, output_lock

HOLD = """
import sys, time
from pathlib import Path
from nuclei.inference.output_lock import output_lock
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
