"""How long each command's ``--help`` takes, beside the time Python takes to import torch.

python scripts/benchmark_help.py              # median of 3 runs each
python scripts/benchmark_help.py --repeats 5

Each console script of this environment (beside the Python running this script) is run as a
user runs it, ``nuclei-train --help`` and so on, in its own process; so is
``python -c "import torch"``, the reference: a machine that is busy or has a cold file cache
is slower at both. Prints the median wall time of each and exits non-zero if a command's
help fails.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("nuclei-train", "nuclei-eval", "nuclei-predict", "nuclei-tune", "nuclei-summarize")


def wall_time(command: list[str]) -> float:
    """Seconds one run of ``command`` takes; raises CalledProcessError if it fails."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def median_time(command: list[str], repeats: int) -> float:
    """The median of ``repeats`` runs of ``command``."""
    return statistics.median(wall_time(command) for _ in range(repeats))


def main() -> None:
    """Print the median wall time of each command's ``--help`` and of importing torch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (median shown)")
    args = parser.parse_args()
    scripts = Path(sys.executable).parent
    rows = [(f"{name} --help", [str(scripts / name), "--help"]) for name in COMMANDS]
    rows.append(('python -c "import torch"', [sys.executable, "-c", "import torch"]))
    width = max(len(label) for label, _ in rows)
    print(f"median of {args.repeats} runs, wall time")
    for label, command in rows:
        print(f"{label:<{width}}  {median_time(command, args.repeats):6.2f} s", flush=True)


if __name__ == "__main__":
    main()
