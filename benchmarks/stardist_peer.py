"""StarDist's stock 2D recipe on DSB2018, on our split, for a wall-time budget: a reference run.

StarDist (https://github.com/stardist/stardist) is the method users most often compare nuclei
with. This script trains it the way its 2D example (``examples/2D/2_training.ipynb``, with
:class:`stardist.models.Config2D`'s defaults) does, changing only the input channels, and
writes its label images for our validation images so that ``scripts/score_predictions.py``
scores it exactly like our own models:

* data: a Kaggle-layout folder (``<id>/images/<id>.png``, ``<id>/masks/*.png``) and a run's
  ``split.json``. Images are read as RGB (the alpha channel dropped) and normalised per
  image and channel to the 1-99.8 percentiles; each mask becomes one label, holes filled;
* StarDist's own validation set: ~15% of the split's *train* ids (seeded), used for the
  training validation loss, best-weights selection and ``optimize_thresholds``; the split's
  *val* ids are only predicted, never seen in training;
* the recipe: 32 rays, grid (2, 2), three input channels, U-Net defaults, patches 256x256,
  batch 4, 100 steps per epoch, Adam 3e-4 with ReduceLROnPlateau, the example's augmenter
  (random rot90/flips, random intensity scale and offset, small Gaussian noise);
* the budget: training stops after ``--minutes`` of wall time (checked after every step),
  then the best weights (lowest validation loss) are kept, the probability and NMS
  thresholds optimised, and every val image predicted at its native size.

Outputs in ``--out``: ``<id>_labels.tif`` per val id (uint16 labels, int32 past 65535
objects) and ``stardist_run.json`` (settings, versions, epochs done, the last of which may be
cut short by the budget, training wall time, thresholds). The model (weights, config,
TensorBoard logs) goes to ``--model-dir``.

It runs in StarDist's own environment (TensorFlow with tf-keras), never the project's:
``scripts/stardist_peer.sh`` creates that environment, runs this script and scores its
output. Directly::

    TF_USE_LEGACY_KERAS=1 python benchmarks/stardist_peer.py --data DATA --split SPLIT \\
        --out OUT --minutes 52
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Before TensorFlow is imported: Keras 2 (tf-keras), at most two threads, quiet C++ logs.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csbdeep
import imageio.v3 as iio
import numpy as np
import stardist
import tensorflow as tf
import tifffile
from csbdeep.utils import normalize
from csbdeep.utils.tf import keras_import
from stardist import calculate_extents, fill_label_holes
from stardist.models import Config2D, StarDist2D

Callback = keras_import("callbacks", "Callback")

# The example's choices (and Config2D's defaults, which it keeps).
N_RAYS = 32
GRID = (2, 2)
N_CHANNEL_IN = 3
STEPS_PER_EPOCH = 100
OWN_VAL_FRACTION = 0.15
PERCENTILES = (1.0, 99.8)


def read_rgb(root: Path, image_id: str) -> np.ndarray:
    """Read ``<id>/images/<id>.png`` as a uint8 (H, W, 3) RGB image (alpha dropped)."""
    image = iio.imread(root / image_id / "images" / f"{image_id}.png")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :N_CHANNEL_IN])


def read_labels(root: Path, image_id: str, shape: tuple[int, int]) -> np.ndarray:
    """Build an int32 label image from ``<id>/masks/*.png`` (one nucleus per file, sorted).

    Where masks overlap, the later file wins; holes inside each label are then filled, as
    the example does.
    """
    labels = np.zeros(shape, np.int32)
    for number, path in enumerate(sorted((root / image_id / "masks").glob("*.png")), start=1):
        mask = iio.imread(path)
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.shape != shape:
            raise SystemExit(f"{path}: mask is {mask.shape}, its image is {shape}")
        labels[mask > 0] = number
    return fill_label_holes(labels)


def normalise(image: np.ndarray) -> np.ndarray:
    """Per-channel percentile normalisation (1 to 99.8) to float32, as in the example."""
    return normalize(image, *PERCENTILES, axis=(0, 1)).astype(np.float32, copy=False)


def random_fliprot(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Randomly transpose the two spatial axes and flip each one (the 8 rot90/flip cases)."""
    order = tuple(np.random.permutation(labels.ndim))
    image = image.transpose(order + tuple(range(labels.ndim, image.ndim)))
    labels = labels.transpose(order)
    for axis in range(labels.ndim):
        if np.random.rand() > 0.5:
            image = np.flip(image, axis=axis)
            labels = np.flip(labels, axis=axis)
    return image, labels


def augment(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The example's augmenter: rot90/flips, intensity scale 0.6-2 and offset +-0.2, noise."""
    image, labels = random_fliprot(image, labels)
    image = image * np.random.uniform(0.6, 2) + np.random.uniform(-0.2, 0.2)
    sigma = 0.02 * np.random.uniform(0, 1)
    return image + sigma * np.random.normal(0, 1, image.shape), labels


class WallClockStop(Callback):  # type: ignore[misc, valid-type]
    """Stop training once ``minutes`` of wall time have passed; print progress per epoch."""

    def __init__(self, minutes: float, steps_per_epoch: int) -> None:
        """Budget in minutes; ``steps_per_epoch`` only to count a last, partial epoch."""
        super().__init__()
        self.budget_s = minutes * 60.0
        self.steps_per_epoch = steps_per_epoch
        self.start = 0.0
        self.epochs_done = 0
        self.steps_done = 0
        self.stopped_early = False
        self.history: list[dict[str, float]] = []

    def elapsed(self) -> float:
        """Seconds since training began."""
        return time.monotonic() - self.start

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Start the clock."""
        self.start = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count the step; ask Keras to stop when the budget is spent."""
        self.steps_done += 1
        if self.elapsed() >= self.budget_s and not self.model.stop_training:
            self.stopped_early = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Print epochs done, minutes elapsed and the losses."""
        self.epochs_done = epoch + 1
        logs = {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v)}
        self.history.append({"epoch": epoch + 1, "minutes": self.elapsed() / 60, **logs})
        partial = self.steps_done - epoch * self.steps_per_epoch
        note = f" (partial: {partial} steps)" if partial < self.steps_per_epoch else ""
        print(
            f"\n[stardist_peer] epoch {epoch + 1} done{note}, {self.elapsed() / 60:.1f} of "
            f"{self.budget_s / 60:g} min, loss {logs.get('loss', float('nan')):.4f}, "
            f"val_loss {logs.get('val_loss', float('nan')):.4f}",
            flush=True,
        )


def split_own_val(ids: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Hold out ~15% of ``ids`` (seeded) as StarDist's validation set: (train, own_val)."""
    ordered = sorted(ids)
    order = np.random.RandomState(seed).permutation(len(ordered))
    n_val = max(1, round(OWN_VAL_FRACTION * len(ordered)))
    return [ordered[i] for i in order[:-n_val]], [ordered[i] for i in order[-n_val:]]


def load(
    root: Path, ids: Sequence[str], with_labels: bool, what: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read and normalise the images of ``ids`` (and their labels when asked)."""
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    start = time.monotonic()
    for image_id in ids:
        rgb = read_rgb(root, image_id)
        images.append(normalise(rgb))
        if with_labels:
            labels.append(read_labels(root, image_id, rgb.shape[:2]))
    print(f"[stardist_peer] {what}: {len(ids)} images in {time.monotonic() - start:.0f} s")
    return images, labels


def limit_threads(threads: int) -> None:
    """Cap TensorFlow's thread pools."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow."""
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def versions() -> dict[str, str]:
    """Versions of the packages that make the result."""
    import tf_keras

    return {
        "python": platform.python_version(),
        "stardist": stardist.__version__,
        "csbdeep": csbdeep.__version__,
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "numpy": np.__version__,
    }


def write_labels(path: Path, labels: np.ndarray) -> None:
    """Write a label image with tifffile: uint16, or int32 past 65535 objects."""
    dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.int32
    tifffile.imwrite(path, labels.astype(dtype, copy=False))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="Kaggle-layout folder")
    parser.add_argument("--split", type=Path, required=True, help="split.json (train/val ids)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the label images")
    parser.add_argument("--minutes", type=float, required=True, help="training wall time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, help="where the model goes (OUT/model)")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=STEPS_PER_EPOCH,
        help=f"training steps per epoch (the example's {STEPS_PER_EPOCH}; fewer for a smoke run)",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=Config2D().train_epochs,
        help="epochs if the time budget is not reached first (Config2D's default)",
    )
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads")
    return parser.parse_args(argv)


def train(
    args: argparse.Namespace,
    data: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]],
    augmenter: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[StarDist2D, WallClockStop, float]:
    """Build the example's model, train it for the budget: (model, clock, wall seconds)."""
    x_trn, y_trn, x_val, y_val = data
    config = Config2D(
        n_rays=N_RAYS,
        grid=GRID,
        n_channel_in=N_CHANNEL_IN,
        use_gpu=False,
        train_steps_per_epoch=args.steps_per_epoch,
        train_epochs=args.max_epochs,
    )
    model_dir: Path = args.model_dir
    model = StarDist2D(config, name=model_dir.name, basedir=str(model_dir.parent))
    clock = WallClockStop(args.minutes, args.steps_per_epoch)
    model.prepare_for_training()
    model.callbacks.append(clock)
    start = time.monotonic()
    model.train(x_trn, y_trn, validation_data=(x_val, y_val), augmenter=augmenter, seed=args.seed)
    return model, clock, time.monotonic() - start


def main(argv: Sequence[str] | None = None) -> None:
    """Load the data, train for the budget, optimise thresholds, predict and write."""
    args = parse_args(argv)
    args.model_dir = args.model_dir or args.out / "model"
    args.out.mkdir(parents=True, exist_ok=True)
    limit_threads(args.threads)
    seed_everything(args.seed)

    split = json.loads(args.split.read_text())
    train_ids, own_val_ids = split_own_val(split["train"], args.seed)
    val_ids = list(split["val"])
    print(
        f"[stardist_peer] {len(train_ids)} train, {len(own_val_ids)} own validation "
        f"(from the split's {len(split['train'])} train ids), {len(val_ids)} val to predict"
    )
    x_trn, y_trn = load(args.data, train_ids, True, "train")
    x_own, y_own = load(args.data, own_val_ids, True, "own validation")
    extents = calculate_extents(y_trn, np.median)

    model, clock, train_s = train(args, (x_trn, y_trn, x_own, y_own), augment)
    print(f"[stardist_peer] trained {clock.epochs_done} epoch(s) in {train_s / 60:.1f} min")

    start = time.monotonic()
    thresholds = model.optimize_thresholds(x_own, y_own)
    optimise_s = time.monotonic() - start

    x_pred, _ = load(args.data, val_ids, False, "val")
    start = time.monotonic()
    counts = []
    for image_id, image in zip(val_ids, x_pred, strict=True):
        labels, _ = model.predict_instances(image, n_tiles=model._guess_n_tiles(image))
        write_labels(args.out / f"{image_id}_labels.tif", labels)
        counts.append(int(labels.max()))
    predict_s = time.monotonic() - start
    print(f"[stardist_peer] wrote {len(val_ids)} label images to {args.out}")

    record = {
        "method": "StarDist 2D, stock example recipe (examples/2D/2_training.ipynb)",
        "data": str(args.data),
        "split": str(args.split),
        "seed": args.seed,
        "minutes_budget": args.minutes,
        "epochs_done": clock.epochs_done,
        "epochs_equivalent": round(clock.steps_done / args.steps_per_epoch, 2),
        "steps_per_epoch": args.steps_per_epoch,
        "steps_done": clock.steps_done,
        "stopped_by_budget": clock.stopped_early,
        "training_wall_s": round(train_s, 1),
        "threshold_optimisation_s": round(optimise_s, 1),
        "prediction_s": round(predict_s, 1),
        "thresholds": {k: float(v) for k, v in dict(thresholds).items()},
        "n_train": len(train_ids),
        "n_own_val": len(own_val_ids),
        "own_val_ids": own_val_ids,
        "n_val_predicted": len(val_ids),
        "objects_predicted": sum(counts),
        "median_object_extent_yx": [float(e) for e in extents],
        "network_field_of_view_yx": [int(f) for f in model._axes_tile_overlap("YX")],
        "normalisation": {"percentiles": list(PERCENTILES), "axis": [0, 1]},
        "augmenter": "random rot90/flips, intensity x U(0.6,2) + U(-0.2,0.2), noise 0.02*U(0,1)",
        "config": {k: v for k, v in vars(model.config).items() if not k.startswith("_")},
        "history": clock.history,
        "versions": versions(),
        "threads": args.threads,
        "command": [sys.executable, *sys.argv],
    }
    (args.out / "stardist_run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
