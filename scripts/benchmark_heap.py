"""CPU forward passes with and without freed memory kept in the heap (nuclei.runtime).

python scripts/benchmark_heap.py                       # default U-Net (base 16), 1024x1024
python scripts/benchmark_heap.py --ckpt <run>/checkpoints/<best>.ckpt --size 2048

Each setting runs in its own process (malloc's thresholds are set once per process), the two
alternated ``--rounds`` times: a warm-up forward, then ``--passes`` timed forwards of one
random ``--size`` image. Prints per setting the median seconds per forward, system CPU
seconds and minor page faults per forward and the peak resident memory, then the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

#: The checkout, which holds ``benchmarks/``: on the path of each measuring process.
ROOT = Path(__file__).resolve().parents[1]

#: One process's measurement: its forwards' wall and CPU times, faults and peak memory.
PROBE = """
import json, resource, sys, time
import torch
from nuclei.runtime import keep_freed_memory
from benchmarks.common import random_unet
from nuclei.runs.checkpoint import load_run, restore_task
ckpt, size, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kept = keep_freed_memory()
net = (random_unet() if ckpt == "-" else restore_task(load_run(ckpt)).net).eval()
x = torch.rand(1, 3, size, size)
with torch.inference_mode():
    net(x)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(passes):
        net(x)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "kept": kept,
    "s_per_forward": seconds / passes,
    "system_s_per_forward": (after.ru_stime - before.ru_stime) / passes,
    "faults_per_forward": (after.ru_minflt - before.ru_minflt) / passes,
    "peak_rss_mib": after.ru_maxrss / 1024,
}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="-", help="a checkpoint (default: random U-Net)")
    parser.add_argument("--size", type=int, default=1024, help="side of the image")
    parser.add_argument("--passes", type=int, default=4, help="timed forwards per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, keep: bool) -> dict:
    """One process's figures, freed memory kept or not."""
    env = {**os.environ, "NUCLEI_KEEP_FREED_MEMORY": "1" if keep else "0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", PROBE, args.ckpt, str(args.size), str(args.passes)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> dict:
    """Measure both settings alternately, print and return the medians and their ratio."""
    args = parse_args(argv)
    runs: dict[str, list[dict]] = {"returned": [], "kept": []}
    for _ in range(args.rounds):
        runs["returned"].append(measure(args, keep=False))
        runs["kept"].append(measure(args, keep=True))
    figures: dict = {"size": args.size, "checkpoint": args.ckpt}
    for name, results in runs.items():
        figures[name] = {
            key: round(statistics.median(r[key] for r in results), 3)
            for key in ("s_per_forward", "system_s_per_forward", "faults_per_forward")
        }
        figures[name]["peak_rss_mib"] = round(max(r["peak_rss_mib"] for r in results))
        figures[name]["applied"] = all(r["kept"] for r in results)
    speedup = figures["returned"]["s_per_forward"] / figures["kept"]["s_per_forward"]
    figures["speedup"] = round(speedup, 2)
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
