"""Training, data-loading and prediction throughput of nuclei, and what Lightning costs.

    python scripts/benchmark.py --out benchmark.json            # U-Net 32/4, 128 px, batch 16
    python scripts/benchmark.py --base 16 --batch 8              # the default training config
    python scripts/benchmark.py --device cuda --variants lightning_vs_plain lightning_bf16

Each variant runs in its own subprocess; what each measures, and how: :mod:`benchmarks`.
Prints a table; ``--out FILE`` writes it all as JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's benchmarks/

from benchmarks.common import DEFAULT_VARIANTS, VARIANTS, Settings, add_setting_arguments
from benchmarks.runner import run_benchmark, write_result
from nuclei.runtime import keep_freed_memory


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    """The measured settings, and every command-line option (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(parser)
    parser.add_argument("--worker-timeout", type=int, default=1800, help="seconds per measurement")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(DEFAULT_VARIANTS),
        help="what to measure",
    )
    parser.add_argument(
        "--warm-cache",
        action="store_true",
        help="compile with the existing inductor cache (default: an empty one, as a first run)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    parser.add_argument("--worker", choices=VARIANTS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return Settings.from_namespace(args), args
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> None:
    """Run every measurement, each in its own subprocess, and report (``--worker``: one, here)."""
    settings, args = parse_args(argv)
    if args.worker is not None:
        keep_freed_memory()  # as nuclei-train does
        write_result(args.worker, settings, args.result)
        return
    run_benchmark(settings, args.variants, args.warm_cache, args.worker_timeout, args.out)


if __name__ == "__main__":
    main()
