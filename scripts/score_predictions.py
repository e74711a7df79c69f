"""Score predicted label images against true labels, at each image's own size, per image kind.

    python scripts/score_predictions.py PREDICTED_DIR DATA_ROOT [--ids split.json] [--rows F]

PREDICTED_DIR holds ``<id>_labels.tif`` files (written by ``nuclei-predict``, by
``scripts/classical_floor.py`` or by ``scripts/stardist_peer.sh``); DATA_ROOT is a
Kaggle-layout folder with each image's masks (e.g. ``../shared/dsb2018/stage1_train``).
``--ids`` takes a run's ``split.json`` and scores its ``val`` ids only. Prints, as JSON, the
pooled foreground IoU, mean DSB2018 map and ap50 (the figures a run's ``metrics.json`` reports
for the same images as ``val/iou``, ``val/map``, ``val/ap50``), a 95% bootstrap interval of the
map, and the same per image kind (fluorescence, tissue, brightfield; ``iou`` there is the mean
of the images' foreground IoU). ``--rows`` also writes one CSV row per image.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from nuclei.data.decode import read_sample
from nuclei.data.kinds import image_kind
from nuclei.data.sources.layouts import SampleFiles, scan_folder
from nuclei.metrics.image_rows import KIND_SCORES, rows_by_kind, write_image_scores
from nuclei.metrics.intervals import bootstrap_interval
from nuclei.metrics.label_images import score_label_images


def interval(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """The 95% percentile-bootstrap interval of the rows' mean ``map``."""
    found = bootstrap_interval([float(row["map"]) for row in rows])
    return [round(found.low, 4), round(found.high, 4)]


def by_kind(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each image kind's number of images, mean scores and map interval."""
    return {
        kind: {
            "images": len(kept),
            **{name: round(float(np.mean([r[name] for r in kept])), 4) for name in KIND_SCORES},
            "map_interval": interval(kept) if len(kept) > 1 else None,
        }
        for kind, kept in rows_by_kind(rows).items()
    }


def score_folder(
    predicted: Path, samples: Mapping[str, SampleFiles], ids: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report printed by this script, and the per-image rows (with each image's kind)."""
    missing = [i for i in ids if not (predicted / f"{i}_labels.tif").is_file()]
    if missing:
        raise SystemExit(
            f"{predicted}: no <id>_labels.tif for {len(missing)} image(s), e.g. {missing[0]}"
        )
    kinds: dict[str, str] = {}

    def items() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for sample_id in ids:
            image, truth = read_sample(samples[sample_id])
            kinds[sample_id] = image_kind(image)
            yield sample_id, truth, tifffile.imread(predicted / f"{sample_id}_labels.tif")

    pooled, rows = score_label_images(items())
    rows = [{**row, "kind": kinds[row["id"]]} for row in rows]
    report = {**pooled, "map_interval": interval(rows), "by_kind": by_kind(rows)}
    return report, rows


def main() -> None:
    """Parse the arguments, score every predicted image, print the scores as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predicted", type=Path, help="folder of <id>_labels.tif files")
    parser.add_argument("data_root", type=Path, help="Kaggle-layout folder with true masks")
    parser.add_argument("--ids", type=Path, help="a run's split.json: score its val ids only")
    parser.add_argument("--rows", type=Path, help="also write one CSV row per image here")
    args = parser.parse_args()
    samples = {s.sample_id: s for s in scan_folder(args.data_root, "auto", split="train").samples}
    ids = json.loads(args.ids.read_text())["val"] if args.ids else sorted(samples)
    report, rows = score_folder(args.predicted, samples, ids)
    if args.rows:
        write_image_scores(args.rows, rows)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
