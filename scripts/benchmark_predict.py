"""Prediction throughput (megapixels/s) and peak memory of tiled inference on a large image.

python scripts/benchmark_predict.py                       # 4096x4096, default U-Net, tiled
python scripts/benchmark_predict.py --size 2048 --tile 256 --batch-size 8 --device cuda
python scripts/benchmark_predict.py --ckpt outputs/train/<run>/checkpoints/last.ckpt

Times the network part (:func:`nuclei.inference.tiling.tiled_predict`) and, separately, the
postprocessing into instances, after one warm-up window (see
:func:`nuclei.benchmarks.large_image.time_large_image`). Weights are random unless ``--ckpt``
is given: throughput does not depend on them.
"""

from __future__ import annotations

import argparse
import json

import torch

from nuclei.benchmarks.large_image import random_unet, time_large_image
from nuclei.runs.checkpoint import load_run, restore_task


def main() -> None:
    """Parse arguments, run the benchmark, print a JSON line of results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ckpt", default=None, help="a nuclei checkpoint (default: random U-Net)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    net = restore_task(load_run(args.ckpt)) if args.ckpt else random_unet()
    device = torch.device(args.device)
    print(
        json.dumps(
            time_large_image(net, args.size, args.tile, args.overlap, args.batch_size, device)
        )
    )


if __name__ == "__main__":
    main()
