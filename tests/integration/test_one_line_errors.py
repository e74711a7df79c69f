"""A mistake on the command line ends in one line on stderr and exit status 2: what was
wrong, the key or file, and what to do. Each case runs the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def run_command(module: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"nuclei.cli.{module}", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def one_line(done: subprocess.CompletedProcess) -> str:
    """The single line a refused command printed on stderr (asserts exit status 2)."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def best_of(run_dir: Path) -> Path:
    named = Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])
    return run_dir / "checkpoints" / named.name


@pytest.mark.parametrize(
    ("module", "arguments"),
    [
        ("predict", ["input=in", "output=out"]),
        ("evaluate", []),
        ("tune", []),
    ],
)
def test_a_missing_checkpoint_key_is_named(
    module: str, arguments: list[str], tmp_path: Path
) -> None:
    line = one_line(run_command(module, *arguments, cwd=tmp_path))
    assert "ckpt_path" in line and "must be given" in line
    assert not (tmp_path / "outputs").exists()  # refused before a run folder is made


def test_predict_without_input_names_the_key(tmp_path: Path) -> None:
    line = one_line(run_command("predict", "ckpt_path=x.ckpt", "output=out", cwd=tmp_path))
    assert "input" in line and "must be given" in line


@pytest.mark.parametrize("module", ["predict", "evaluate", "tune"])
def test_a_gpu_that_is_not_there_is_named(
    module: str, trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    arguments = [f"ckpt_path={best_of(trained_run)}", "device=cuda:99"]
    if module == "predict":
        arguments += [f"input={synthetic_root}", f"output={tmp_path / 'out'}"]
    line = one_line(run_command(module, *arguments, cwd=tmp_path))
    assert "device=cuda:99" in line and "device=cpu" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_says_so(trained_run: Path, tmp_path: Path) -> None:
    line = one_line(
        run_command("evaluate", f"ckpt_path={best_of(trained_run)}", "device=cuda", cwd=tmp_path)
    )
    assert "no CUDA GPU" in line and "device=cpu" in line


def test_a_device_that_does_not_exist_is_named(trained_run: Path, tmp_path: Path) -> None:
    line = one_line(
        run_command("tune", f"ckpt_path={best_of(trained_run)}", "device=tpu7", cwd=tmp_path)
    )
    assert "device=tpu7" in line and "auto, cpu, cuda" in line


def test_an_unquoted_non_ascii_value_gets_a_hint_to_quote(tmp_path: Path) -> None:
    line = one_line(run_command("train", "data.source.root=/data/données", cwd=tmp_path))
    assert "data.source.root" in line and "quote" in line
    assert """'data.source.root="/data/données"'""" in line


@pytest.mark.parametrize("output", ["/proc/nuclei-out", "{tmp}/a-file/out"])
def test_an_output_that_cannot_be_written_is_named(
    output: str, trained_run: Path, tmp_path: Path
) -> None:
    """Also for root, whom permissions do not stop: /proc takes no new folders."""
    (tmp_path / "a-file").write_text("")
    (tmp_path / "in").mkdir()
    output = output.format(tmp=tmp_path)
    line = one_line(
        run_command(
            "predict",
            f"ckpt_path={best_of(trained_run)}",
            f"input={tmp_path / 'in'}",
            f"output={output}",
            cwd=tmp_path,
        )
    )
    assert f"output={output} cannot be written" in line
