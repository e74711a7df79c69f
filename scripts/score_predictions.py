"""Score nuclei-predict's label files against true labels, at each image's own size.

    python scripts/score_predictions.py PREDICTED_DIR DATA_ROOT [--ids split.json]

PREDICTED_DIR holds ``<id>_labels.tif`` files written by ``nuclei-predict``; DATA_ROOT is a
Kaggle-layout folder with each image's masks (e.g. the synthetic set's ``stage1_train``).
``--ids`` takes a run's ``split.json`` and scores its ``val`` ids only. Prints pooled
foreground IoU, mean DSB2018 map and ap50 as JSON: the figures a run's ``metrics.json``
reports for the same images (``val/iou``, ``val/map``, ``val/ap50``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tifffile

from nuclei.data.decode import read_sample
from nuclei.data.sources.layouts import scan_folder
from nuclei.metrics.label_images import label_image_scores


def main() -> None:
    """Parse the arguments, score every predicted image, print the scores as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predicted", type=Path, help="folder of <id>_labels.tif files")
    parser.add_argument("data_root", type=Path, help="Kaggle-layout folder with true masks")
    parser.add_argument("--ids", type=Path, help="a run's split.json: score its val ids only")
    args = parser.parse_args()
    samples = {s.sample_id: s for s in scan_folder(args.data_root, "auto", split="train").samples}
    ids = json.loads(args.ids.read_text())["val"] if args.ids else sorted(samples)
    missing = [i for i in ids if not (args.predicted / f"{i}_labels.tif").is_file()]
    if missing:
        raise SystemExit(
            f"{args.predicted}: no <id>_labels.tif for {len(missing)} image(s), e.g. {missing[0]}"
        )
    pairs = (
        (read_sample(samples[i])[1], tifffile.imread(args.predicted / f"{i}_labels.tif"))
        for i in ids
    )
    print(json.dumps(label_image_scores(pairs), indent=2))


if __name__ == "__main__":
    main()
