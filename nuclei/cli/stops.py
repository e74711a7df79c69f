"""SIGTERM stops a command as Ctrl-C does; the exit status names the signal.

``timeout``, ``kill``, systemd, docker and SLURM stop a program with SIGTERM. Inside
:func:`stop_on_signals` SIGTERM raises ``KeyboardInterrupt`` where the command stands, as
Ctrl-C (SIGINT) does, so both take the same way out: Lightning stops its Trainer through its
``on_exception`` hooks (training saves ``on_exception.ckpt`` and ``resume=`` continues from
its checkpoints; a prediction's workers finish the images they hold, and a rerun skips them),
and files are only ever replaced whole. The command then ends with one line on stderr
(``nuclei-predict: stopped by SIGTERM``) and exit status 128 + the signal's number, as a
shell reports a process the signal killed: 143 for SIGTERM, 130 for Ctrl-C; also where the
code below turned the interrupt into an exit of its own (Lightning's ``sys.exit(1)``).

A second signal while the command stops is ignored, so its clean-up finishes; SIGKILL (or
SIGQUIT, Ctrl-\\) ends it at once. While a Trainer runs, Lightning's SIGTERM handler calls
this one after its own, so its SLURM requeue (on SIGUSR1) works as before.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that stop a command: Ctrl-C, and what ``kill`` and schedulers send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stopped_status(signum: int) -> int:
    """The exit status of a command stopped by ``signum``: 128 + its number."""
    return 128 + signum


def _to_stderr(app_name: str, message: str) -> None:
    print(f"{app_name}: {message}", file=sys.stderr)


@contextmanager
def stop_on_signals(
    app_name: str, report: Callable[[str, str], None] = _to_stderr
) -> Iterator[None]:
    """Run the block so that SIGTERM or SIGINT stops it as Ctrl-C does (see the module), and
    end with ``report(app_name, "stopped by SIGTERM")`` and status 128 + the signal.

    Handlers can be set in the main thread only: elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:  # the first signal stops; later ones let the stop finish
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    except KeyboardInterrupt:
        received.append(signal.SIGINT)  # an interrupt without a signal reads as Ctrl-C
        _stopped(app_name, report, received[0])
    except SystemExit:
        if not received:
            raise
        _stopped(app_name, report, received[0])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stopped(app_name: str, report: Callable[[str, str], None], signum: int) -> None:
    report(app_name, f"stopped by {signal.Signals(signum).name}")
    raise SystemExit(stopped_status(signum)) from None
