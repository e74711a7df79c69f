"""Prediction throughput: planned windows vs whole-image forwards, postprocessing, nuclei-predict.

python scripts/benchmark_predict.py --out predict.json            # 64 x 1024^2 + one 4096^2
python scripts/benchmark_predict.py --count 4 --large-size 2048   # a quick run
python scripts/benchmark_predict.py --device cuda --out gpu.json
python scripts/benchmark_predict.py --ckpt outputs/train/<run>/checkpoints/<best>.ckpt  # trained

On a folder of ``--count`` synthetic ``--size`` images (written as PNG) and one
``--large-size`` image, with the default U-Net in crop mode (a checkpoint with random weights
unless ``--ckpt``: the network's time does not depend on the weights, finishing's does, and
random weights find one or two image-sized objects; a trained checkpoint gives realistic
postprocessing and measuring), it measures:
(a) one whole-image forward per image (the baseline) and (b) the network on the windows
planned from the memory budget (``predict_probabilities`` in crop mode), alternated chunk by
chunk, as seconds per image, their ratio and Mpx/s, with the largest difference of their maps;
(c) postprocessing alone (Mpx/s), and the CPU seconds per image of the network, of decoding
and of finishing (postprocessing, measurements, files), with the bound they set on the whole
prediction's throughput against the network on these cores; (d) the whole ``nuclei-predict``
on the folder, in its own process (Mpx/s, and its ratio to the network alone, timed again on
``--baseline-images`` of the folder just before and just after it, and to min(network,
postprocessing)), whole and from its first image done to its last;
(e) peak memory of each: resident set size, and GPU memory with ``--device cuda``.
Figures are printed and, with ``--out``, written as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's benchmarks/

from benchmarks.memory import completion_times, run_predict
from benchmarks.predict import (
    benchmark_images,
    cpu_bound_ratio,
    significant,
    time_finishing,
    time_network,
    time_postprocess,
    write_folder,
    write_random_checkpoint,
)
from nuclei.inference.output_files import ImageFileWriter
from nuclei.inference.postprocess_pool import Finishing
from nuclei.runs.checkpoint import CONFIG_KEY, load_run, postprocess_of, restore_task
from nuclei.runtime import available_cores, keep_freed_memory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--count", type=int, default=64, help="images in the folder")
    parser.add_argument("--size", type=int, default=1024, help="side of the folder's images")
    parser.add_argument("--large-size", type=int, default=4096, help="0: no large image")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8, help="images/windows per pass")
    parser.add_argument("--budget-gib", type=float, default=None, help="default: the device's")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the large image")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--ckpt", type=Path, default=None, help="default: random weights")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--skip-predict", action="store_true", help="no nuclei-predict run")
    parser.add_argument(
        "--baseline-images",
        type=int,
        default=8,
        help="images of the folder timed again just before and after nuclei-predict",
    )
    parser.add_argument(
        "--predict-arg", action="append", default=[], help="extra nuclei-predict KEY=VALUE"
    )
    return parser.parse_args(argv)


def predict_overrides(folder_plan: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """nuclei-predict options giving it the folder's planned windows (its tile and overlap
    options take one side), the batch size and crop mode, then ``--predict-arg``."""
    height, width = folder_plan["tile"]
    overrides = [f"batch_size={args.batch_size}", "size_mode=crop"]
    if height == width:
        overrides += [f"tile={height}", f"overlap={folder_plan['overlap']}"]
    return overrides + list(args.predict_arg)


def progress(message: str) -> None:
    """Say on stderr which phase runs (the figures come at the end, on stdout)."""
    print(message, file=sys.stderr, flush=True)


def budget_of(args: argparse.Namespace) -> float | None:
    """``--budget-gib`` in bytes per forward pass; None: the device's default."""
    return args.budget_gib * 2**30 if args.budget_gib else None


def network_figures(
    net: Any,
    images: list,
    device: torch.device,
    args: argparse.Namespace,
    run: Any,
    repeats: int,
    files: list[Path] | None = None,
    finished: Path | None = None,
) -> dict[str, Any]:
    """(a), (b), (c) and (e) for some images of one size; with their ``files``, also the CPU
    cost of decoding and finishing them (written into ``finished``) and the throughput
    bound it sets on these cores."""
    figures, maps = time_network(net, images, device, args.batch_size, budget_of(args), repeats)
    figures.update(time_postprocess(maps, postprocess_of(run), run.target))
    if files is not None and finished is not None:
        finished.mkdir(parents=True, exist_ok=True)
        finishing = Finishing(postprocess_of(run), run.target, ImageFileWriter(finished))
        figures.update(time_finishing(files, maps, finishing))
        figures["cores"] = available_cores()
        figures["cpu_bound_vs_network"] = cpu_bound_ratio(figures, figures["cores"])
    return {"size": images[0].shape[0], **figures}


def network_around(net: Any, images: list, device: torch.device, args: argparse.Namespace) -> float:
    """Mpx/s of the network alone on ``images`` (planned windows, as in (b)), measured now:
    the baseline of (d), taken just before and just after it, as the machine may have sped up
    or slowed down since (b) (shared machines do)."""
    figures, _ = time_network(net, images, device, args.batch_size, budget_of(args), 1)
    return figures["network_mpx_s"]


def predict_figures(
    ckpt: Path,
    folder: Path,
    work: Path,
    folder_figures: dict[str, Any],
    args: argparse.Namespace,
    baseline: tuple[Any, list, torch.device],
) -> dict[str, Any]:
    """(d): nuclei-predict on the folder; besides its whole run, its steady throughput between
    its first and last image completed (their records' times: no start-up in it). Ratios are
    to the network alone on ``baseline``'s images, the mean of its figures just before and
    just after the run."""
    overrides = predict_overrides(folder_figures["plan"], args)
    megapixels = args.count * args.size**2 / 1e6
    output = work / "predicted"
    before = network_around(*baseline, args)
    whole = run_predict(ckpt, folder, output, args.device, overrides, megapixels)
    after = network_around(*baseline, args)
    done = completion_times(output, [path.stem for path in sorted(folder.glob("*.png"))])
    if len(done) >= 2:
        whole["first_image_done_s"] = round(done[0] - whole["started_at"], 2)
        whole["first_to_last_image_s"] = round(done[-1] - done[0], 2)
        steady_megapixels = megapixels * (len(done) - 1) / args.count
        whole["steady_mpx_s"] = significant(steady_megapixels / (done[-1] - done[0]))
    network = significant((before + after) / 2)
    whole["network_mpx_s_before_after"] = [before, after]
    slowest = min(network, folder_figures["postprocess_mpx_s"])
    for key in ("mpx_s", "steady_mpx_s"):
        if whole.get(key):
            whole[f"{key}_vs_network"] = significant(whole[key] / network)
            whole[f"{key}_vs_min_network_postprocess"] = significant(whole[key] / slowest)
    return whole


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every figure of the benchmark, in the folder ``work``."""
    device = torch.device(args.device)
    images = benchmark_images(args.count, args.size)
    folder = write_folder(images, work / "images")
    ckpt = args.ckpt or write_random_checkpoint(work / "run/checkpoints/random.ckpt", CONFIG_KEY)
    run = load_run(ckpt)
    net = restore_task(run).to(device)
    figures: dict[str, Any] = {"settings": settings_of(args, ckpt)}
    progress(f"network and postprocessing on {args.count} images of {args.size}^2")
    files = sorted(folder.glob("*.png"))
    figures["folder"] = network_figures(net, images, device, args, run, 1, files, work / "finished")
    baseline = (net, images[: args.baseline_images], device)
    del images
    if args.large_size:
        large = benchmark_images(1, args.large_size, seed=100)
        progress(f"network and postprocessing on one {args.large_size}^2 image")
        figures["large"] = network_figures(net, large, device, args, run, args.repeats)
        del large
    if not args.skip_predict:
        progress("nuclei-predict on the folder")
        figures["nuclei_predict"] = predict_figures(
            ckpt, folder, work, figures["folder"], args, baseline
        )
    return figures


def settings_of(args: argparse.Namespace, ckpt: Path) -> dict[str, Any]:
    """What the figures were measured with."""
    return {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "freed_memory_kept": getattr(args, "heap_kept", False),
        "count": args.count,
        "size": args.size,
        "large_size": args.large_size,
        "batch_size": args.batch_size,
        "budget_gib": args.budget_gib,
        "checkpoint": str(ckpt) if args.ckpt else "random weights (default recipe, crop mode)",
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
    }


def report(figures: dict[str, Any]) -> str:
    """The headline figures, one line each."""
    lines = []
    for key in ("folder", "large"):
        if key in figures:
            f = figures[key]
            plan = f["plan"]
            lines.append(
                f"{key} {f['images']} x {f['size']}^2: windows {plan['windows']} of "
                f"{plan['tile'][0]}x{plan['tile'][1]} (overlap {plan['overlap']}, batch "
                f"{plan['batch_size']}); network {f['network_s_per_image']} s/image vs whole "
                f"forward {f['whole_s_per_image']} s = {f['network_vs_whole']}x, "
                f"{f['network_mpx_s']} Mpx/s, max |diff| {f['max_abs_difference']:.1e}, "
                f"peak RSS {f['network_peak_rss_mib']:.0f} MiB (whole forward "
                f"{f['whole_peak_rss_mib']:.0f}); postprocessing {f['postprocess_mpx_s']} Mpx/s"
            )
            if "cpu_bound_vs_network" in f:
                lines.append(
                    f"  CPU s/image: network {f['network_cpu_s_per_image']}, decoding "
                    f"{f['decode_cpu_s_per_image']}, finishing {f['finish_cpu_s_per_image']}: "
                    f"on {f['cores']} cores the whole prediction can reach at most "
                    f"{f['cpu_bound_vs_network']}x the network"
                )
    whole = figures.get("nuclei_predict")
    if whole:
        lines.append(
            f"nuclei-predict on the folder: exit {whole['returncode']}, {whole['wall_s']} s, "
            f"{whole.get('mpx_s')} Mpx/s = {whole.get('mpx_s_vs_network')}x the network, "
            f"{whole.get('mpx_s_vs_min_network_postprocess')}x min(network, postprocessing); "
            f"from its first image done (after {whole.get('first_image_done_s')} s) to its "
            f"last: {whole.get('steady_mpx_s')} Mpx/s = {whole.get('steady_mpx_s_vs_network')}x "
            f"the network (network alone just before/after: "
            f"{whole.get('network_mpx_s_before_after')} Mpx/s); "
            f"peak RSS {whole['peak_rss_mib']:.0f} MiB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print its figures, write them to ``--out``."""
    args = parse_args(argv)
    args.heap_kept = keep_freed_memory()  # as nuclei-predict does: the same network speed
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workdir:
        figures = measure(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="nuclei-bench-") as work:
            figures = measure(args, Path(work))
    print(report(figures))
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
