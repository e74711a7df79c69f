"""Write a gallery of synthetic DSB2018-like samples: each image beside its coloured instances.

python scripts/make_gallery.py --out docs/synthetic_gallery.png
python scripts/make_gallery.py --profile shifted --seed 1000 --out /tmp/shifted_gallery.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nuclei.synthetic import PROFILES, plan_sample, render_sample
from nuclei.synthetic.conditions import conditions_rng, fluorescence_conditions

CAPTION = 18


def colour_instances(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """RGB image with a random bright colour per instance over black."""
    rng = np.random.default_rng(seed)
    n = int(labels.max())
    colours = rng.integers(60, 256, (n + 1, 3), dtype=np.uint8)
    colours[0] = 0
    return colours[labels]


def fit_tile(img: np.ndarray, tile: int, nearest: bool) -> Image.Image:
    """Downscale ``img`` to fit a ``tile`` x ``tile`` box (keeping aspect), centred on black."""
    pil = Image.fromarray(img)
    scale = tile / max(pil.size)
    size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    pil = pil.resize(size, Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (tile, tile))
    canvas.paste(pil, ((tile - size[0]) // 2, (tile - size[1]) // 2))
    return canvas


def pick_samples(seed: int, scan: int, profile: str = "default") -> list[int]:
    """Indices covering the families and common sizes, a dim fluorescence image, and the most
    crowded fluorescence one."""
    plans = [plan_sample(seed, i) for i in range(scan)]
    wanted = [
        ("fluorescence", (256, 256)),
        ("fluorescence", (256, 256)),
        ("fluorescence", (360, 360)),
        ("fluorescence", (520, 696)),
        ("tissue", (256, 320)),
        ("tissue", (256, 320)),
        ("brightfield", (1024, 1024)),
    ]
    picked: list[int] = []
    for family, size in wanted:
        for p in plans:
            if p.family == family and (p.height, p.width) == size and p.index not in picked:
                # A few nuclei only make a poor example (rendering a small image is cheap).
                if family == "fluorescence" and render_sample(seed, p.index, profile)[1].max() < 8:
                    continue
                picked.append(p.index)
                break
    pool = [p.index for p in plans if p.family == "fluorescence" and p.index not in picked][:40]
    prof = PROFILES[profile]
    dim = [i for i in pool if fluorescence_conditions(conditions_rng(seed, i), prof).dim]
    if dim and not any(i in dim for i in picked):
        picked.insert(1, dim[0])
    # The most crowded of the first fluorescence images not yet shown.
    pool = [i for i in pool if i not in picked]
    crowded = max(pool, key=lambda i: int(render_sample(seed, i, profile)[1].max()))
    picked.append(crowded)
    return picked


def main() -> None:
    """Render the gallery PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic_gallery.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--tile", type=int, default=256, help="tile size in px")
    parser.add_argument("--cols", type=int, default=2, help="samples per row")
    parser.add_argument("--scan", type=int, default=300, help="indices scanned for variety")
    args = parser.parse_args()

    indices = pick_samples(args.seed, args.scan, args.profile)
    t, cols = args.tile, args.cols
    rows = -(-len(indices) // cols)
    sheet = Image.new("RGB", (2 * cols * t, rows * (t + CAPTION)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, index in enumerate(indices):
        rgb, labels, plan = render_sample(args.seed, index, args.profile)
        r, c = divmod(k, cols)
        x, y = 2 * c * t, r * (t + CAPTION)
        sheet.paste(fit_tile(rgb, t, nearest=False), (x, y + CAPTION))
        masks = fit_tile(colour_instances(labels, index), t, nearest=True)
        sheet.paste(masks, (x + t, y + CAPTION))
        text = f"#{index} {plan.family} {plan.height}x{plan.width}, {int(labels.max())} nuclei"
        draw.text((x + 4, y + 3), text, fill=(230, 230, 230))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), samples {indices}")


if __name__ == "__main__":
    main()
