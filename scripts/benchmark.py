"""Training, data-loading and prediction throughput of nuclei, and what Lightning costs.

    python scripts/benchmark.py --out benchmark.json            # U-Net 32/4, 128 px, batch 16
    python scripts/benchmark.py --base 16 --batch 8              # the default training config
    python scripts/benchmark.py --device cuda --variants lightning_vs_plain lightning_bf16

On one network (``build_unet(depth, base)``), input size and batch it measures:

* ``lightning_vs_plain``: train images/s of the Lightning path (``SegmentationTask`` under a
  ``Trainer`` as ``nuclei-train`` runs it: its training step with train metrics,
  ``train/loss`` logged to TensorBoard every 10 steps, the Rich progress bar) and of a plain
  PyTorch loop written below (same network, Adam, loss and in-memory batches, nothing
  else), interleaved in one process: ``--chunk`` Lightning steps, then as many plain steps,
  ``--repeats`` times. ``train_ratio`` is the median of the chunk ratios, so that both sides
  see the same machine state and a busy neighbour on a shared machine hurts them alike;
* ``plain`` and ``lightning`` alone, each in its own process: their peak memory;
* ``lightning_compiled`` (``speed.compile``), ``lightning_channels_last``
  (``speed.channels_last``), ``lightning_bf16`` (``precision=bf16-mixed``): train images/s,
  and the first step's time (compilation, from an empty inductor cache);
* ``loader``: images/s of the real ``NucleiDataModule`` train loader (its defaults, the
  synthetic set), without a model; ``loader_ratio`` = loader / Lightning train images/s;
* ``predict_eager`` / ``predict_compiled``: megapixels/s of
  :func:`nuclei.inference.tiled_predict` on a ``--predict-size`` square image (after a
  warm-up call, which compiles).

Every measurement runs in its own subprocess (peak resident memory is per process). Timing
starts after ``--warmup`` steps. Prints a table; ``--out FILE`` writes it all as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nuclei.models.unet import build_unet
from nuclei.training.speed import SpeedOptions, apply_speed_options, memory_format

LR = 2e-3  # conf/optimizer/adam.yaml
DISTINCT_BATCHES = 4
TRAIN_VARIANTS = {
    "lightning_vs_plain": {},
    "plain": {},
    "lightning": {},
    "lightning_compiled": {"compile": True},
    "lightning_channels_last": {"channels_last": True},
    "lightning_compiled_channels_last": {"compile": True, "channels_last": True},
    "lightning_bf16": {"precision": "bf16-mixed"},
}
VARIANTS = [
    *TRAIN_VARIANTS,
    "speed_options",
    "loader",
    "predict_eager",
    "predict_compiled",
]
VARIANTS += ["predict_eager_vs_compiled"]
DEFAULT_VARIANTS = [v for v in VARIANTS if v != "lightning_compiled_channels_last"]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times are the work's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batches(args: argparse.Namespace) -> list[dict[str, torch.Tensor]]:
    """A few distinct in-memory batches like the data module's: images in [0, 1], 0/1 masks."""
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, 3, args.size, args.size)
    batches = []
    for _ in range(DISTINCT_BATCHES):
        image = torch.rand(shape, generator=generator)
        mask = (
            torch.rand((args.batch, 1, args.size, args.size), generator=generator) > 0.8
        ).float()
        batches.append({"image": image, "mask": mask})
    return batches


def build_net(args: argparse.Namespace) -> torch.nn.Module:
    """The benchmarked network, with the same initial weights in every measurement."""
    torch.manual_seed(0)
    return build_unet(depth=args.depth, base_channels=args.base)


class PlainLoop:
    """A hand-written training loop: forward, BCE loss, backward, Adam step; nothing else."""

    def __init__(self, args: argparse.Namespace, options: SpeedOptions | None = None) -> None:
        options = options or SpeedOptions()
        self.device = torch.device(args.device)
        self.net = build_net(args).to(self.device).train()
        apply_speed_options(self.net, options)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LR)
        self.batches = make_batches(args)
        self.memory_format = memory_format(options.channels_last)
        self.done = 0

    def run(self, steps: int) -> float:
        """Run ``steps`` training steps; return their wall-clock seconds."""
        started = time.perf_counter()
        for _ in range(steps):
            batch = self.batches[self.done % len(self.batches)]
            image = batch["image"].to(self.device, non_blocking=True)
            mask = batch["mask"].to(self.device, non_blocking=True)
            image = image.contiguous(memory_format=self.memory_format)
            loss = F.binary_cross_entropy_with_logits(self.net(image), mask)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.done += 1
        synchronize(self.device)
        return time.perf_counter() - started


def time_plain(args: argparse.Namespace) -> dict[str, Any]:
    """Train images/s of the plain loop alone (``--steps`` after ``--warmup``)."""
    loop = PlainLoop(args)
    first = loop.run(1)
    loop.run(args.warmup - 1)
    elapsed = loop.run(args.steps)
    return {"img_s": args.steps * args.batch / elapsed, "first_step_s": first}


def time_lightning(
    args: argparse.Namespace, options: dict[str, Any], interleave: bool = False
) -> dict[str, Any]:
    """Train images/s of ``SegmentationTask`` under a ``Trainer``, as ``nuclei-train`` runs it.

    With ``interleave``, every ``--chunk`` Lightning steps are followed by as many steps of
    a :class:`PlainLoop` in the same process, ``--repeats`` times: both see the same machine
    state, and ``ratio`` is the median of the per-chunk ratios (plain time / Lightning time).
    Otherwise ``--steps`` Lightning steps are timed after the warm-up.
    """
    import lightning as L
    from lightning.pytorch.callbacks import Callback, RichProgressBar
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader

    from nuclei.training.speed import speed_up_task
    from nuclei.training.task import SegmentationTask

    device = torch.device(args.device)
    if options.get("precision", "").startswith("bf16") and device.type == "cpu":
        # CPUs without native bf16 (AVX2 only) run bf16 convolutions many times slower.
        args.warmup, args.steps = 1, min(args.steps, args.slow_steps)
    timed = args.chunk * args.repeats if interleave else args.steps
    total = args.warmup + timed
    plain = PlainLoop(args) if interleave else None

    class StepClock(Callback):
        """Stamps the end of step 1, of the warm-up and of the last step; runs plain chunks."""

        def __init__(self) -> None:
            self.stamps: dict[str, float] = {}
            self.lightning_s: list[float] = []
            self.plain_s: list[float] = []
            self.since = 0.0

        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if plain is not None:
                plain.run(args.warmup)
            self.stamps["start"] = time.perf_counter()

        def on_train_batch_end(
            self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any
        ) -> None:
            step = trainer.global_step  # already counts this step
            synchronize(device)
            now = time.perf_counter()
            if step == 1:
                self.stamps["first"] = now
            if step == args.warmup:
                self.stamps["warm"] = self.since = now
            if step == total:
                self.stamps["end"] = now
            if plain is not None and step > args.warmup and (step - args.warmup) % args.chunk == 0:
                self.lightning_s.append(now - self.since)
                self.plain_s.append(plain.run(args.chunk))
                self.since = time.perf_counter()

    batches = make_batches(args)
    loader = DataLoader([batches[i % len(batches)] for i in range(total)], batch_size=None)
    task = SegmentationTask(build_net(args), optimizer=partial(torch.optim.Adam, lr=LR))
    speed_up_task(task, SpeedOptions(**{k: v for k, v in options.items() if k != "precision"}))
    clock = StepClock()
    with tempfile.TemporaryDirectory() as logs:
        trainer = L.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            precision=options.get("precision", "32-true"),
            max_steps=total,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=TensorBoardLogger(logs, name="", version="", default_hp_metric=False),
            log_every_n_steps=10,  # as conf/trainer/default.yaml
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=[clock, RichProgressBar()],
        )
        trainer.fit(task, train_dataloaders=loader)
    stamps = clock.stamps
    result = {"first_step_s": stamps["first"] - stamps["start"], "timed_steps": timed}
    if plain is None:
        result["img_s"] = timed * args.batch / (stamps["end"] - stamps["warm"])
        return result
    images = args.chunk * args.batch
    ratios = [p / lt for p, lt in zip(clock.plain_s, clock.lightning_s, strict=True)]
    return result | {
        "img_s": images / statistics.median(clock.lightning_s),
        "plain_img_s": images / statistics.median(clock.plain_s),
        "ratio": statistics.median(ratios),
        "chunk_ratios": [round(r, 3) for r in ratios],
    }


SPEED_OPTIONS = {
    "eager": SpeedOptions(),
    "channels_last": SpeedOptions(channels_last=True),
    "compiled": SpeedOptions(compile=True),
    "compiled_channels_last": SpeedOptions(compile=True, channels_last=True),
}


def time_speed_options(args: argparse.Namespace) -> dict[str, Any]:
    """Speed-ups of compile / channels_last on the train step, interleaved in one process.

    One :class:`PlainLoop` per option (the options change only the network, so Lightning
    gains the same); after their warm-ups (which compile), ``--repeats`` rounds run one step
    of each in turn. Speed-ups are medians of the per-round ratios to eager.
    """
    loops = {name: PlainLoop(args, options) for name, options in SPEED_OPTIONS.items()}
    first = {name: loop.run(1) for name, loop in loops.items()}
    for loop in loops.values():
        loop.run(args.warmup - 1)
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            times[name].append(loop.run(1))
    images = args.batch
    result: dict[str, Any] = {}
    for name in loops:
        result[f"{name}_img_s"] = images / statistics.median(times[name])
        result[f"{name}_first_step_s"] = first[name]
        ratios = [e / t for e, t in zip(times["eager"], times[name], strict=True)]
        result[f"{name}_speedup"] = statistics.median(ratios)
    return result


def time_predict_pair(args: argparse.Namespace) -> dict[str, Any]:
    """Eager and compiled tiled prediction, alternated call by call in one process."""
    from nuclei.inference.tiling import tiled_predict

    device = torch.device(args.device)
    image = torch.rand(3, args.predict_size, args.predict_size, generator=torch.Generator())
    runs = {}
    for compiled in (False, True):
        net = build_net(args).to(device).eval()
        apply_speed_options(net, SpeedOptions(compile=compiled))
        runs[compiled] = partial(
            tiled_predict,
            net,
            image,
            tile=args.tile,
            overlap=args.overlap,
            batch_size=8,
        )
        runs[compiled]()  # warm-up; compiles every window batch shape
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.predict_repeats):
        for compiled, run in runs.items():
            started = time.perf_counter()
            run()
            synchronize(device)
            times[compiled].append(time.perf_counter() - started)
    megapixels = args.predict_size**2 / 1e6
    ratios = [e / c for e, c in zip(times[False], times[True], strict=True)]
    return {
        "eager_mpx_s": megapixels / statistics.median(times[False]),
        "compiled_mpx_s": megapixels / statistics.median(times[True]),
        "speedup": statistics.median(ratios),
    }


def time_loader(args: argparse.Namespace) -> dict[str, Any]:
    """Images/s of the real ``NucleiDataModule`` train loader (defaults, synthetic set)."""
    from nuclei.data.datamodule import NucleiDataModule

    datamodule = NucleiDataModule(image_size=args.size, batch_size=args.batch)
    started = time.perf_counter()
    datamodule.prepare_data()
    datamodule.setup("fit")
    setup_s = time.perf_counter() - started
    device = torch.device(args.device)
    images, elapsed = 0, 0.0
    for _ in range(args.loader_epochs):
        batches = iter(datamodule.train_dataloader())
        next(batches)  # first batch: iterator start-up (workers, if any)
        started = time.perf_counter()
        for batch in batches:
            batch["image"].to(device, non_blocking=True)
            batch["mask"].to(device, non_blocking=True)
            images += len(batch["image"])
        synchronize(device)
        elapsed += time.perf_counter() - started
    return {"img_s": images / elapsed, "setup_s": setup_s, "images": images}


def time_predict(args: argparse.Namespace, compiled: bool) -> dict[str, Any]:
    """Megapixels/s of tiled prediction on one large image, after a warm-up call."""
    from nuclei.inference.tiling import tiled_predict

    device = torch.device(args.device)
    net = build_net(args).to(device).eval()
    apply_speed_options(net, SpeedOptions(compile=compiled))
    image = torch.rand(3, args.predict_size, args.predict_size, generator=torch.Generator())
    run = partial(tiled_predict, net, image, tile=args.tile, overlap=args.overlap, batch_size=8)
    started = time.perf_counter()
    run()  # compiles every window batch shape when compiled
    warmup_s = time.perf_counter() - started
    times = []
    for _ in range(args.predict_repeats):
        started = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - started)
    megapixels = args.predict_size**2 / 1e6
    return {"mpx_s": megapixels / statistics.median(times), "first_call_s": warmup_s}


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in this process."""
    torch.backends.cudnn.benchmark = True
    name = args.worker
    if name == "plain":
        result = time_plain(args)
    elif name in TRAIN_VARIANTS:
        result = time_lightning(args, TRAIN_VARIANTS[name], interleave=name == "lightning_vs_plain")
    elif name == "speed_options":
        result = time_speed_options(args)
    elif name == "predict_eager_vs_compiled":
        result = time_predict_pair(args)
    elif name == "loader":
        result = time_loader(args)
    else:
        result = time_predict(args, compiled=name == "predict_compiled")
    result["peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


SETTINGS = (
    "base",
    "depth",
    "size",
    "batch",
    "steps",
    "warmup",
    "chunk",
    "repeats",
    "device",
)
SETTINGS += (
    "predict_size",
    "tile",
    "overlap",
    "predict_repeats",
    "loader_epochs",
    "slow_steps",
)


def measure(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Run one measurement in a fresh subprocess (its own peak memory); return its result.

    Compiled measurements start from an empty inductor cache unless ``--warm-cache``: the
    compilation time reported is then what a first run pays (later runs of the same
    network and shapes reuse the on-disk cache and start faster).
    """
    with (
        tempfile.NamedTemporaryFile(suffix=".json") as out,
        tempfile.TemporaryDirectory() as cache,
    ):
        command = [sys.executable, __file__, "--worker", name, "--result", out.name]
        for key in SETTINGS:
            command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        env = dict(os.environ)
        if ("compiled" in name or name == "speed_options") and not args.warm_cache:
            env["TORCHINDUCTOR_CACHE_DIR"] = cache
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                env=env,
                timeout=args.worker_timeout,
            )
        except subprocess.TimeoutExpired:
            result = {"error": f"no result within --worker-timeout {args.worker_timeout} s"}
        else:
            if done.returncode == 0:
                result = json.loads(Path(out.name).read_text())
            else:
                result = {"error": done.stderr.strip().splitlines()[-1:] or "failed"}
    result["wall_s"] = time.perf_counter() - started
    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    print(f"  {name:<20} {json.dumps(shown)}", flush=True)
    return result


def summarise(args: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON record: settings, headline figures, ratios, and every measurement."""

    def figure(name: str, key: str) -> float | None:
        value = runs.get(name, {}).get(key)
        return None if value is None else round(value, 3)

    def ratio(top: float | None, bottom: float | None, digits: int = 3) -> float | None:
        return round(top / bottom, digits) if top and bottom else None

    summary: dict[str, Any] = {
        "settings": {key: getattr(args, key) for key in (*SETTINGS, "warm_cache")}
        | {
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "started": args.started,
        },
        # Headline: Lightning and plain interleaved in one process (lightning_vs_plain).
        "train_img_s_lightning": figure("lightning_vs_plain", "img_s"),
        "train_img_s_plain": figure("lightning_vs_plain", "plain_img_s"),
        "train_ratio": figure("lightning_vs_plain", "ratio"),
        # Each alone in its own process (their peak memory, and a cross-check).
        "train_img_s_lightning_alone": figure("lightning", "img_s"),
        "train_img_s_plain_alone": figure("plain", "img_s"),
        # Lightning + speed.compile where measured, else the compiled plain loop of
        # speed_options (compile changes only the network, so both gain alike).
        "train_img_s_compiled": figure("lightning_compiled", "img_s")
        or figure("speed_options", "compiled_img_s"),
        "train_img_s_channels_last": figure("lightning_channels_last", "img_s"),
        "train_img_s_bf16": figure("lightning_bf16", "img_s"),
        "compile_first_step_s": figure("lightning_compiled", "first_step_s"),
        "eager_first_step_s": figure("lightning", "first_step_s"),
        "loader_img_s": figure("loader", "img_s"),
        # Each alone where measured, else from the interleaved pair.
        "predict_mpx_s_eager": figure("predict_eager", "mpx_s")
        or figure("predict_eager_vs_compiled", "eager_mpx_s"),
        "predict_mpx_s_compiled": figure("predict_compiled", "mpx_s")
        or figure("predict_eager_vs_compiled", "compiled_mpx_s"),
        "predict_compile_first_call_s": figure("predict_compiled", "first_call_s"),
        "peak_rss_mb": {
            name: round(run["peak_rss_mb"], 1) for name, run in runs.items() if "peak_rss_mb" in run
        },
        "train_img_s_compiled_channels_last": figure("lightning_compiled_channels_last", "img_s"),
    }
    summary["train_img_s_compiled_from"] = (
        "lightning_compiled" if figure("lightning_compiled", "img_s") else "speed_options"
    )
    reference = summary["train_img_s_lightning_alone"] or summary["train_img_s_lightning"]
    summary["loader_ratio"] = ratio(summary["loader_img_s"], summary["train_img_s_lightning"], 1)
    # Speed-ups: from the interleaved measurements where run, else across processes.
    for option in ("compiled", "channels_last", "compiled_channels_last"):
        summary[f"{option}_speedup"] = figure("speed_options", f"{option}_speedup") or ratio(
            summary[f"train_img_s_{option}"], reference
        )
    summary["bf16_speedup"] = ratio(summary["train_img_s_bf16"], reference)
    summary["predict_compile_speedup"] = figure("predict_eager_vs_compiled", "speedup") or ratio(
        summary["predict_mpx_s_compiled"], summary["predict_mpx_s_eager"]
    )
    summary["runs"] = runs
    return summary


def print_table(summary: dict[str, Any]) -> None:
    """The headline figures, one per line."""
    rows = [
        ("train img/s, plain PyTorch loop", "train_img_s_plain"),
        ("train img/s, Lightning (nuclei-train path)", "train_img_s_lightning"),
        ("  Lightning / plain (median of chunk pairs)", "train_ratio"),
        ("train img/s, plain loop alone", "train_img_s_plain_alone"),
        ("train img/s, Lightning alone", "train_img_s_lightning_alone"),
        ("train img/s, Lightning + speed.compile", "train_img_s_compiled"),
        ("  first step with compile (s)", "compile_first_step_s"),
        ("  first step eager (s)", "eager_first_step_s"),
        ("train img/s, Lightning + speed.channels_last", "train_img_s_channels_last"),
        ("train img/s, Lightning + compile + channels_last", "train_img_s_compiled_channels_last"),
        ("train img/s, Lightning + bf16-mixed", "train_img_s_bf16"),
        ("train step speed-up over eager: compile", "compiled_speedup"),
        ("  channels_last", "channels_last_speedup"),
        ("  compile + channels_last", "compiled_channels_last_speedup"),
        ("  bf16-mixed (across processes)", "bf16_speedup"),
        ("data loader img/s (NucleiDataModule)", "loader_img_s"),
        ("  loader / Lightning train", "loader_ratio"),
        ("predict Mpx/s, eager", "predict_mpx_s_eager"),
        ("predict Mpx/s, compiled", "predict_mpx_s_compiled"),
        ("  speed-up", "predict_compile_speedup"),
        ("  first compiled predict call (s)", "predict_compile_first_call_s"),
    ]
    settings = summary["settings"]
    print(
        f"\nU-Net base {settings['base']} depth {settings['depth']}, {settings['size']}x"
        f"{settings['size']}, batch {settings['batch']}, {settings['device']}, "
        f"{settings['threads']} threads, torch {settings['torch']}; {settings['warmup']} warm-up "
        f"steps, then {settings['repeats']} x {settings['chunk']} interleaved steps each "
        f"(Lightning vs plain) or {settings['steps']} timed steps (alone)"
    )
    if summary.get("train_img_s_compiled_from") == "speed_options":  # no Lightning run of it
        compiled = "train img/s, plain loop + speed.compile"
        rows = [(compiled if key == "train_img_s_compiled" else text, key) for text, key in rows]
    for label, key in rows:
        if summary.get(key) is not None:
            print(f"{label:<50} {summary[key]:>10}")
    print("peak RSS (MiB): " + ", ".join(f"{k} {v}" for k, v in summary["peak_rss_mb"].items()))
    for name, run in summary["runs"].items():
        if "error" in run:
            print(f"{name}: FAILED: {run['error']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=32, help="U-Net base width")
    parser.add_argument("--depth", type=int, default=4, help="U-Net depth")
    parser.add_argument("--size", type=int, default=128, help="input side (pixels)")
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    parser.add_argument("--steps", type=int, default=8, help="timed steps of a run alone")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--chunk", type=int, default=2, help="steps per interleaved chunk")
    parser.add_argument("--repeats", type=int, default=6, help="Lightning/plain chunk pairs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--predict-size", type=int, default=1024, help="predicted image side")
    parser.add_argument("--tile", type=int, default=512, help="tile side for prediction")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap for prediction")
    parser.add_argument("--predict-repeats", type=int, default=3)
    parser.add_argument("--loader-epochs", type=int, default=2)
    parser.add_argument(
        "--slow-steps",
        type=int,
        default=1,
        help="timed bf16 steps on a CPU (after 1 warm-up)",
    )
    parser.add_argument("--worker-timeout", type=int, default=1800, help="seconds per measurement")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=DEFAULT_VARIANTS,
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
    if min(args.warmup, args.steps, args.chunk, args.repeats) < 1:
        parser.error("--warmup, --steps, --chunk and --repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every measurement, each in its own subprocess, and report."""
    args = parse_args(argv)
    if args.worker is not None:  # one measurement, in this subprocess
        args.result.write_text(json.dumps(run_worker(args)))
        return
    args.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"Measuring {', '.join(args.variants)}", flush=True)
    runs = {name: measure(args, name) for name in args.variants}
    summary = summarise(args, runs)
    print_table(summary)
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
