"""The processes a process started, read from ``/proc`` (Linux; no psutil needed).

A process is named by its pid and its start time (field 22 of ``/proc/<pid>/stat``), so a
pid the system gives to a new process later is not taken for the old one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    """One process: pid, start time (clock ticks after boot) and command line."""

    pid: int
    started: int
    command: str


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses


def _command(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def process(pid: int) -> Process | None:
    """The process ``pid`` now, or None when there is none (or only a zombie)."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return Process(pid, int(fields[19]), _command(pid))


def descendants(pid: int) -> list[Process]:
    """Every living process below ``pid``: children, their children, and so on."""
    parent_of: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parent_of[int(entry.name)] = int(fields[1])
    below: list[int] = []
    level = [pid]
    while level:
        level = [child for child, parent in parent_of.items() if parent in level]
        below += level
    return [found for child in below if (found := process(child)) is not None]


def still_alive(processes: list[Process]) -> list[Process]:
    """Those of ``processes`` still running (the same process: same pid and start time)."""
    return [
        p for p in processes if (now := process(p.pid)) is not None and now.started == p.started
    ]


def wait_until_gone(processes: list[Process], seconds: float) -> list[Process]:
    """Wait up to ``seconds`` for ``processes`` to end; those still alive after."""
    deadline = time.monotonic() + seconds
    while (alive := still_alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def kill(processes: list[Process]) -> None:
    """SIGKILL those of ``processes`` still alive (a test's clean-up)."""
    for p in still_alive(processes):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
