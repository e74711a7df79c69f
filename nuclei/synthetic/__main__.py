"""Synthetic DSB2018-like training set written in the exact Kaggle ``stage1_train`` layout.

``python -m nuclei.synthetic OUT --n 670 --seed 0`` writes ``OUT/stage1_train`` and prints the
families and nuclei counts of the set. ``--profile shifted`` draws it under imaging conditions
no training uses (a domain-shift test set): for example
``python -m nuclei.synthetic /data/shifted --n 134 --seed 1000 --profile shifted``, then
``data.source.test_root=/data/shifted/stage1_train``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from nuclei.synthetic.cache import write_dataset
from nuclei.synthetic.profiles import PROFILES
from nuclei.synthetic.render import FAMILIES

PROFILE_HELP = (
    "imaging conditions: 'default' is the training set's range; 'shifted' is dimmer and "
    "lower-contrast fluorescence, smaller and denser nuclei, more blur and noise, paler "
    "and re-hued tissue stains (a domain-shift test set, usually drawn with --seed 1000)"
)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m nuclei.synthetic OUT --n 670 --seed 0``."""
    parser = argparse.ArgumentParser(
        prog="python -m nuclei.synthetic", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="folder that will hold stage1_train/")
    parser.add_argument("--n", type=int, default=670, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the set (default: 0)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default", help=PROFILE_HELP)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    stage_dir, results = write_dataset(
        args.out, args.n, args.seed, args.workers, not args.no_progress, args.profile
    )
    elapsed = time.perf_counter() - start
    counts = np.array([r.n_nuclei for r in results])
    families = Counter(r.family for r in results)
    print(
        f"wrote {len(results)} images to {stage_dir} in {elapsed:.1f} s "
        f"(profile {args.profile}, seed {args.seed})"
    )
    print("families: " + ", ".join(f"{f}={families.get(f, 0)}" for f in FAMILIES))
    if counts.size:
        print(
            f"nuclei: total={counts.sum()} min={counts.min()} median={np.median(counts):g} "
            f"mean={counts.mean():.1f} max={counts.max()}"
        )


if __name__ == "__main__":
    main()
