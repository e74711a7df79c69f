"""The classical floor: nuclei found with no training at all, to place every recipe against.

    python scripts/classical_floor.py DATA_ROOT OUT_DIR [--ids split.json]
    python scripts/score_predictions.py OUT_DIR DATA_ROOT [--ids split.json]

Each image (of ``--ids``' ``val`` list, else every image of the Kaggle-layout DATA_ROOT) is
segmented the way a CellProfiler-style pipeline would: the mean of its colour channels,
inverted when the background is bright (brightfield, stained tissue), a Gaussian blur (sigma 1),
Otsu's threshold, holes filled, then touching nuclei split by a watershed on the distance
transform, seeded at its peaks at least 5 pixels apart. Labels go to ``OUT_DIR/<id>_labels.tif``
(the files ``nuclei-predict`` writes), so ``scripts/score_predictions.py`` scores them as it
scores a model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tifffile
from rich.progress import track
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import watershed

from nuclei.data.sources.io import read_image
from nuclei.data.sources.layouts import scan_folder

#: Smallest distance, in pixels, between two watershed seeds.
MIN_PEAK_DISTANCE = 5


def classical_labels(image: np.ndarray) -> np.ndarray:
    """Instance labels (int32, 0 background) of an (H, W) or (H, W, C) uint8 image."""
    grey = image[..., :3].mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    grey = grey / 255.0
    if np.median(grey) > 0.5:  # a bright background: dark nuclei become bright
        grey = 1.0 - grey
    smooth = gaussian(grey, sigma=1)
    if smooth.max() - smooth.min() < 1e-6:
        return np.zeros(grey.shape, dtype=np.int32)
    mask = ndi.binary_fill_holes(smooth > threshold_otsu(smooth))
    distance = ndi.distance_transform_edt(mask)
    components, _ = ndi.label(mask)
    peaks = peak_local_max(distance, min_distance=MIN_PEAK_DISTANCE, labels=components)
    markers = np.zeros(grey.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # components without a peak (too small for one) keep a seed of their own
    unseeded = np.setdiff1d(np.unique(components[mask]), np.unique(components[markers > 0]))
    for offset, component in enumerate(unseeded, start=len(peaks) + 1):
        markers[components == component] = offset
    return watershed(-distance, markers, mask=mask).astype(np.int32)


def main() -> None:
    """Segment every chosen image of DATA_ROOT and write its labels into OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_root", type=Path, help="Kaggle-layout folder of images")
    parser.add_argument("out_dir", type=Path, help="folder for the <id>_labels.tif files")
    parser.add_argument("--ids", type=Path, help="a run's split.json: its val ids only")
    args = parser.parse_args()
    samples = {s.sample_id: s for s in scan_folder(args.data_root, "auto", split="train").samples}
    ids = json.loads(args.ids.read_text())["val"] if args.ids else sorted(samples)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for sample_id in track(ids, description=f"Segmenting {len(ids)} images"):
        labels = classical_labels(read_image(samples[sample_id].image))
        tifffile.imwrite(args.out_dir / f"{sample_id}_labels.tif", labels, compression="zlib")
    seconds = time.perf_counter() - started
    print(f"{len(ids)} images in {seconds:.1f} s; labels in {args.out_dir}")


if __name__ == "__main__":
    main()
