"""scripts/benchmark_heap.py measures a forward with malloc as it is and with freed memory
kept, each in its own process, and prints both with their ratio."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "benchmark_heap.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_both_settings_are_measured_in_their_own_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("benchmark_heap", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    figures = script.main(["--size", "64", "--passes", "1", "--rounds", "1"])
    assert figures["returned"]["applied"] is False and figures["kept"]["applied"] is True
    for name in ("returned", "kept"):
        assert figures[name]["s_per_forward"] > 0 and figures[name]["peak_rss_mib"] > 0
    ratio = figures["returned"]["s_per_forward"] / figures["kept"]["s_per_forward"]
    assert figures["speedup"] == pytest.approx(ratio, abs=0.01)
    assert json.loads(capsys.readouterr().out) == figures
