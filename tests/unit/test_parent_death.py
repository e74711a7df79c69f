"""A helper process that asked to die with its parent ends within seconds of it, even when
the parent is SIGKILLed; one whose parent ended before it asked ends at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support.processes import Process, kill, process, wait_until_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

#: The helper: asks (or not) to die with its parent, then waits a minute.
HELPER = textwrap.dedent(
    """
    import os, sys, time
    from nuclei.runtime import die_with_parent
    if sys.argv[1] == "ask":
        die_with_parent(int(sys.argv[2]))
    print(os.getpid(), flush=True)
    time.sleep(60)
    """
)
#: The parent: starts the helper and waits.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    helper = [sys.executable, "-c", sys.argv[1], sys.argv[2], str(os.getpid())]
    subprocess.Popen(helper)
    time.sleep(60)
    """
)


def helper_of_a_killed_parent(ask: str) -> Process:
    """Start a parent whose helper asks (``ask``) or not (``no``) to die with it, SIGKILL the
    parent once the helper runs, and return the helper."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, HELPER, ask], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    helper = process(int(parent.stdout.readline()))
    assert helper is not None
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    return helper


def test_a_helper_ends_within_seconds_of_its_killed_parent() -> None:
    helper = helper_of_a_killed_parent("ask")
    try:
        assert wait_until_gone([helper], seconds=5) == []
    finally:
        kill([helper])


def test_a_helper_that_did_not_ask_outlives_its_killed_parent() -> None:
    helper = helper_of_a_killed_parent("no")  # what the test above would see without it
    try:
        time.sleep(1)
        assert wait_until_gone([helper], seconds=0) == [helper]
    finally:
        kill([helper])


def test_a_helper_whose_parent_ended_before_it_asked_ends_at_once() -> None:
    # A pid that is not this helper's parent: the parent it was started by has ended.
    gone = subprocess.run(
        [sys.executable, "-c", HELPER, "ask", str(os.getpid() + 10**6)],
        capture_output=True,
        timeout=60,
    )
    assert gone.returncode == -signal.SIGKILL
    assert gone.stdout == b""


def test_a_helper_that_leaves_stopping_to_its_parent_ignores_sigterm() -> None:
    code = (
        "from nuclei.runtime import leave_stopping_to_parent\n"
        "import time\nleave_stopping_to_parent()\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    helper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout is not None and helper.stdout.readline() == "ready\n"
        helper.send_signal(signal.SIGTERM)  # as a signal to its whole process group would
        with pytest.raises(subprocess.TimeoutExpired):
            helper.wait(timeout=1)
    finally:
        helper.kill()
        helper.wait()
    assert helper.returncode == -signal.SIGKILL
