"""SIGTERM stops a command as Ctrl-C does: an interrupt where the command is, its clean-up
done, one line on stderr, and exit status 128 + the signal (143 for SIGTERM, 130 for SIGINT),
also when the code below turns the interrupt into ``sys.exit(1)`` as Lightning does."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

#: A command: runs ``work`` inside the command wrapper's stop handling.
COMMAND = textwrap.dedent(
    """
    import sys, time
    from nuclei.cli.stops import stop_on_signals

    def work():
        try:
            print("ready", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            if sys.argv[1] == "exit-1":
                sys.exit(1)  # what Lightning does with an interrupt
            raise
        finally:
            print("cleaning up", flush=True)
            time.sleep(1)  # a second signal here must not cut the clean-up short
            print("cleaned up", flush=True)

    with stop_on_signals("nuclei-test"):
        work()
    """
)


def stopped(how: str, *signals: signal.Signals) -> subprocess.CompletedProcess:
    """Run the command, send it ``signals`` once it works, and wait for its end."""
    process = subprocess.Popen(
        [sys.executable, "-c", COMMAND, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for signum in signals:
        process.send_signal(signum)
        time.sleep(0.3)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("how", ["raise", "exit-1"])
def test_sigterm_stops_with_status_143_after_the_clean_up(how: str) -> None:
    done = stopped(how, signal.SIGTERM)
    assert done.returncode == 143
    assert done.stdout == "cleaning up\ncleaned up\n"
    assert done.stderr == "nuclei-test: stopped by SIGTERM\n"


def test_ctrl_c_stops_with_status_130() -> None:
    done = stopped("raise", signal.SIGINT)
    assert done.returncode == 130
    assert done.stderr == "nuclei-test: stopped by SIGINT\n"


def test_a_second_signal_lets_the_clean_up_finish() -> None:
    done = stopped("raise", signal.SIGTERM, signal.SIGTERM, signal.SIGINT)
    assert done.returncode == 143
    assert done.stdout == "cleaning up\ncleaned up\n"


def test_without_a_signal_the_command_ends_as_it_would() -> None:
    code = "from nuclei.cli.stops import stop_on_signals as s\nwith s('x'): raise SystemExit(2)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 2
