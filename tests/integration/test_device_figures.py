"""scripts/device/figures.sh, the one call that measures the GPU figures on a GPU machine,
runs its steps end to end
(here small and on the CPU, without installing: FIGURES_QUICK, FIGURES_DEVICE=cpu, NO_INSTALL)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two benchmarks in subprocesses, ~40 s: make test-slow, .ci/run

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_figures_script_writes_both_benchmarks_json(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "TMPDIR": str(tmp_path),
        "PYTHON": sys.executable,
        "FIGURES_DEVICE": "cpu",
        "FIGURES_QUICK": "1",
        "NO_INSTALL": "1",
    }
    script = ROOT / "scripts" / "device" / "figures.sh"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    predict = json.loads((tmp_path / "out" / "predict-gpu.json").read_text())
    train = json.loads((tmp_path / "out" / "train-gpu.json").read_text())
    assert predict["settings"]["device"] == "cpu" and predict["folder"]["network_mpx_s"] > 0
    assert predict["nuclei_predict"]["returncode"] == 0
    assert train["train_img_s_lightning"] > 0
    assert "torch" in (tmp_path / "out" / "figures.log").read_text()
