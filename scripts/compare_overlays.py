"""Side by side: one crowded validation image segmented by two runs (e.g. binary vs border).

    python scripts/compare_overlays.py BINARY_CKPT INSTANCE_CKPT --out docs/instance_vs_binary.png

Both runs must share their validation split (same data and data.split.seed). Each run's
probability maps come from its own validation data (as ``nuclei-eval`` sees them, so the
per-image map in the captions is the one the evaluation averages) and are postprocessed
with the run's own settings (tuned ``postprocess.json`` included). The image shown is the
validation image with the largest share of nucleus pixels on a touching border, unless
``--image`` names one. Panels: truth, first run, second run; outlines in yellow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nuclei.data.targets import border_band
from nuclei.inference.output_files import overlay_outlines
from nuclei.instances.postprocess import instances_from_maps
from nuclei.instances.tuning import validation_maps
from nuclei.metrics.dsb import image_scores
from nuclei.runs.checkpoint import load_run, postprocess_of, restore_task
from nuclei.runs.run_data import build_run_datamodule, run_data_config

CAPTION = 44


def most_crowded(labels: list[np.ndarray]) -> int:
    """Index of the label image with the largest fraction of nucleus pixels on a border."""

    def crowding(label: np.ndarray) -> float:
        nuclei = label > 0
        return float((border_band(label) & nuclei).sum() / max(1, nuclei.sum()))

    return int(np.argmax([crowding(label) for label in labels]))


def panel(image: np.ndarray, labels: np.ndarray, scale: int, lines: list[str]) -> Image.Image:
    """The image with instance outlines, enlarged ``scale`` times, captioned below."""
    big_image = np.kron(image, np.ones((scale, scale, 1), dtype=np.uint8))
    big_labels = np.kron(labels, np.ones((scale, scale), dtype=labels.dtype))
    drawn = Image.fromarray(overlay_outlines(big_image, big_labels))
    canvas = Image.new("RGB", (drawn.width, drawn.height + CAPTION), "white")
    canvas.paste(drawn, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        draw.text((6, drawn.height + 4 + 18 * k), line, fill="black")
    return canvas


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="checkpoint of the first run (e.g. binary_unet)")
    parser.add_argument("second", help="checkpoint of the second run (e.g. instance_unet)")
    parser.add_argument("--out", default="docs/instance_vs_binary.png")
    parser.add_argument("--image", help="validation image id (default: the most crowded)")
    parser.add_argument("--scale", type=int, default=3, help="enlargement of each panel")
    parser.add_argument(
        "--names", nargs=2, default=["binary_unet", "instance_unet"], help="panel titles"
    )
    args = parser.parse_args(argv)

    panels_data = []
    for ckpt in (args.first, args.second):
        run = load_run(ckpt)
        datamodule = build_run_datamodule(run_data_config(run))
        maps, labels = validation_maps(restore_task(run), datamodule)
        panels_data.append((run, datamodule, maps, labels))
    ids = panels_data[0][1].val_ids
    if ids != panels_data[1][1].val_ids:
        raise SystemExit("the two runs have different validation splits")
    index = ids.index(args.image) if args.image else most_crowded(panels_data[0][3])
    truth = panels_data[0][3][index]
    image = panels_data[0][1].val_dataset.images[index]
    panels = [panel(image, truth, args.scale, [f"truth: {ids[index]}", f"{truth.max()} nuclei"])]
    for (run, _, maps, _), title in zip(panels_data, args.names, strict=True):
        config = postprocess_of(run)
        predicted = instances_from_maps(maps[index], config, run.target)
        scores = image_scores(truth, predicted)
        panels.append(
            panel(
                image,
                predicted,
                args.scale,
                [
                    f"{title}: {run.target} target, split={config.split}",
                    f"map {scores['map']:.3f}, {scores['n_pred']} nuclei, "
                    f"{scores['n_merged']} merged",
                ],
            )
        )
        print(f"{title}: {run.target} target, map {scores['map']:.4f} on {ids[index]}")
    width = sum(p.width for p in panels) + 8 * (len(panels) - 1)
    figure = Image.new("RGB", (width, panels[0].height), "white")
    x = 0
    for p in panels:
        figure.paste(p, (x, 0))
        x += p.width + 8
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
