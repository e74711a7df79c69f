"""Variables set for the processes a block starts, and the parent's own restored after."""

import json
import os
import subprocess
import sys

import pytest

from nuclei.runtime import child_environment


def seen_by_a_child(*names: str) -> list[str | None]:
    code = "import json, os, sys; print(json.dumps([os.environ.get(n) for n in sys.argv[1:]]))"
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    return json.loads(out.stdout)


def test_a_child_started_in_the_block_sees_them_and_the_parent_gets_its_own_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NUCLEI_TEST_SET", "parent")
    monkeypatch.delenv("NUCLEI_TEST_UNSET", raising=False)
    with child_environment({"NUCLEI_TEST_SET": "1", "NUCLEI_TEST_UNSET": "2"}):
        assert seen_by_a_child("NUCLEI_TEST_SET", "NUCLEI_TEST_UNSET") == ["1", "2"]
    assert os.environ["NUCLEI_TEST_SET"] == "parent"
    assert "NUCLEI_TEST_UNSET" not in os.environ


def test_an_error_in_the_block_restores_them_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUCLEI_TEST_UNSET", raising=False)
    with pytest.raises(RuntimeError), child_environment({"NUCLEI_TEST_UNSET": "2"}):
        raise RuntimeError("a worker failed to start")
    assert "NUCLEI_TEST_UNSET" not in os.environ
