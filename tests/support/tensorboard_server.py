"""A real TensorBoard server on 127.0.0.1 for tests, and a JSON client for its HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TENSORBOARD = Path(sys.executable).parent / "tensorboard"
#: Body of ``POST /data/plugin/hparams/session_groups``: every session, any status.
SESSION_GROUPS_QUERY = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [],
    "startIndex": 0,
    "sliceSize": 100,
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, body: dict | None = None) -> object:
    """GET (or POST ``body`` as JSON to) ``url``; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@contextmanager
def tensorboard_server(logdir: Path, expected_runs: int = 1) -> Iterator[str]:
    """Serve ``logdir``; yields the base URL once ``expected_runs`` runs are listed."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(TENSORBOARD),
            *("--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)),
            *("--load_fast", "false", "--reload_interval", "1"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(get(f"{url}/data/runs")) >= expected_runs:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail(f"TensorBoard did not list {expected_runs} run(s) within 60 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
