"""Prediction throughput (megapixels/s) and peak memory of tiled inference on a large image.

python scripts/benchmark_predict.py                       # 4096x4096, default U-Net, tiled
python scripts/benchmark_predict.py --size 2048 --tile 256 --batch-size 8 --device cuda
python scripts/benchmark_predict.py --ckpt outputs/train/<run>/checkpoints/last.ckpt

Times the network part (:func:`nuclei.inference.tiled_predict`) and, separately, the
postprocessing into instances, after one warm-up window. Peak memory is the process's peak
resident set size on the CPU (it includes Python, torch and the image itself) and
``torch.cuda.max_memory_allocated`` on a GPU. Weights are random unless ``--ckpt`` is given:
throughput does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nuclei.inference.tiling import tile_starts, tiled_predict
from nuclei.instances.postprocess import PostprocessConfig, instances_from_probability
from nuclei.models.unet import build_unet
from nuclei.runs.checkpoint import load_run, restore_task


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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

    device = torch.device(args.device)
    if args.ckpt:
        net: torch.nn.Module = restore_task(load_run(args.ckpt))
    else:
        torch.manual_seed(0)
        net = build_unet().eval()  # the default model: depth 4, 32 base channels
    net = net.to(device)
    image = torch.rand(3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    windows = len(tile_starts(args.size, args.tile, args.overlap)) ** 2

    tiled_predict(net, image[:, : args.tile, : args.tile], args.tile, args.overlap, 1)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = peak_rss_mib()
    started = time.perf_counter()
    prob = tiled_predict(net, image, args.tile, args.overlap, args.batch_size, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    network_s = time.perf_counter() - started
    started = time.perf_counter()
    labels = instances_from_probability(prob[0].numpy(), PostprocessConfig())
    postprocess_s = time.perf_counter() - started

    megapixels = args.size * args.size / 1e6
    result = {
        "size": args.size,
        "tile": args.tile,
        "overlap": args.overlap,
        "batch_size": args.batch_size,
        "windows": windows,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "network_s": round(network_s, 2),
        "network_mpx_per_s": round(megapixels / network_s, 3),
        "postprocess_s": round(postprocess_s, 2),
        "end_to_end_mpx_per_s": round(megapixels / (network_s + postprocess_s), 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_before_mib": round(baseline, 1),
        "instances": int(labels.max()),
    }
    if device.type == "cuda":
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
