"""Tests for the synthetic DSB2018-like generator (small sets only)."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from nuclei.data import synthetic as syn

N_IMAGES = 8
SEED = 3


def _read_png(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.mode, np.asarray(im)


def _png_bytes(stage: Path) -> dict[str, bytes]:
    return {p.relative_to(stage).as_posix(): p.read_bytes() for p in sorted(stage.rglob("*.png"))}


def _labels_from_disk(image_dir: Path) -> np.ndarray:
    masks = [_read_png(p)[1] for p in sorted((image_dir / "masks").iterdir())]
    labels = np.zeros(masks[0].shape, np.int32)
    for k, m in enumerate(masks, start=1):
        labels[m == 255] = k
    return labels


def _touching(labels: np.ndarray) -> bool:
    """True if two distinct instances are 8-adjacent somewhere."""
    a = labels
    pairs = [
        (a[:-1, :], a[1:, :]),
        (a[:, :-1], a[:, 1:]),
        (a[:-1, :-1], a[1:, 1:]),
        (a[:-1, 1:], a[1:, :-1]),
    ]
    return any(bool(np.any((p > 0) & (q > 0) & (p != q))) for p, q in pairs)


def _first_index(family: str, seed: int = 0) -> int:
    return next(i for i in range(2000) if syn.plan_sample(seed, i).family == family)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return syn.generate_synthetic_dataset(
        out, n_images=N_IMAGES, seed=SEED, workers=1, progress=False
    )


def test_kaggle_layout(small_set: Path) -> None:
    assert small_set.name == "stage1_train"
    ids = sorted(p.name for p in small_set.iterdir())
    assert ids == sorted(syn.image_id(SEED, i) for i in range(N_IMAGES))
    for image_id in ids:
        assert re.fullmatch(r"[0-9a-f]{64}", image_id)
        root = small_set / image_id
        assert sorted(p.name for p in root.iterdir()) == ["images", "masks"]
        assert [p.name for p in (root / "images").iterdir()] == [f"{image_id}.png"]
        mode, img = _read_png(root / "images" / f"{image_id}.png")
        assert mode == "RGBA" and img.dtype == np.uint8 and img.ndim == 3
        assert (img[..., 3] == 255).all()
        assert img.shape[:2] in {(h, w) for h, w, _ in syn._FLUO_SIZES} | {(256, 320), (1024, 1024)}

        mask_paths = sorted((root / "masks").iterdir())
        assert len(mask_paths) >= 1
        cover = np.zeros(img.shape[:2], np.int32)
        for path in mask_paths:
            assert path.suffix == ".png"
            mode, mask = _read_png(path)
            assert mode == "L" and mask.dtype == np.uint8 and mask.shape == img.shape[:2]
            assert set(np.unique(mask).tolist()) == {0, 255}
            assert ndi.label(mask == 255)[1] == 1  # one 4-connected piece, like the real masks
            cover += mask == 255
        assert cover.max() == 1, "masks of one image overlap"


def test_touching_nuclei_occur(small_set: Path) -> None:
    assert any(_touching(_labels_from_disk(p)) for p in sorted(small_set.iterdir()))


def test_same_seed_identical_across_workers(small_set: Path, tmp_path: Path) -> None:
    again = syn.generate_synthetic_dataset(
        tmp_path, n_images=N_IMAGES, seed=SEED, workers=2, progress=True
    )
    assert _png_bytes(again) == _png_bytes(small_set)


def test_different_seed_differs(tmp_path: Path) -> None:
    a = syn.generate_synthetic_dataset(
        tmp_path / "a", n_images=2, seed=0, workers=1, progress=False
    )
    b = syn.generate_synthetic_dataset(
        tmp_path / "b", n_images=2, seed=1, workers=1, progress=False
    )
    assert {p.name for p in a.iterdir()}.isdisjoint(p.name for p in b.iterdir())
    img_a = [_read_png(p)[1] for p in sorted(a.glob("*/images/*.png"))]
    img_b = [_read_png(p)[1] for p in sorted(b.glob("*/images/*.png"))]
    assert all(x.shape != y.shape or not np.array_equal(x, y) for x in img_a for y in img_b)


def test_render_matches_plan_and_is_deterministic() -> None:
    for i in range(4):
        rgb, labels, plan = syn.render_sample(5, i)
        assert plan == syn.plan_sample(5, i)
        assert rgb.shape == (plan.height, plan.width, 3) and rgb.dtype == np.uint8
        assert labels.shape == (plan.height, plan.width) and labels.max() >= 1
        rgb2, labels2, _ = syn.render_sample(5, i)
        assert np.array_equal(rgb, rgb2) and np.array_equal(labels, labels2)


@pytest.mark.parametrize("family", syn.FAMILIES)
def test_family_appearance(family: str) -> None:
    rgb, labels, plan = syn.render_sample(0, _first_index(family))
    assert plan.family == family
    gray = rgb.astype(float).mean(axis=2)
    nuclei, background = gray[labels > 0].mean(), gray[labels == 0].mean()
    if family == "fluorescence":
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        assert background < 60 and nuclei > background + 10  # bright nuclei, dark background
    elif family == "brightfield":
        assert (plan.height, plan.width) == (1024, 1024)
        assert (rgb[..., 0] == rgb[..., 2]).all()
        assert background > 120 and nuclei < background - 15  # dark nuclei, bright background
    else:
        assert (plan.height, plan.width) == (256, 320)
        assert background > 120 and nuclei < background - 30
        r, g, b = (rgb[..., c][labels > 0].mean() for c in range(3))
        assert b > g and r > g  # purple hematoxylin


def test_family_and_size_proportions() -> None:
    rng = np.random.default_rng(123)
    draws = [syn._choose_family(rng) for _ in range(20000)]
    total = sum(syn._FAMILY_COUNTS)
    for family, count in zip(syn.FAMILIES, syn._FAMILY_COUNTS, strict=True):
        assert abs(draws.count(family) / len(draws) - count / total) < 0.012
    sizes = [syn._choose_size(rng, "fluorescence") for _ in range(5000)]
    assert abs(sizes.count((256, 256)) / len(sizes) - 334 / 546) < 0.03
    assert syn._choose_size(rng, "tissue") == (256, 320)
    assert syn._choose_size(rng, "brightfield") == (1024, 1024)


def test_nuclei_count_statistics() -> None:
    counts = []
    for i in range(300):
        rng, plan = syn._start(0, i)
        nuclei, _ = syn._draw_nuclei(rng, plan.family, plan.height, plan.width)
        counts.append(len(nuclei.cy))
    counts_arr = np.array(counts)
    assert counts_arr.min() >= 1 and counts_arr.max() <= syn._MAX_NUCLEI
    assert 15 <= np.median(counts_arr) <= 40
    assert 30 <= counts_arr.mean() <= 60


def test_clean_keeps_largest_piece_and_relabels() -> None:
    labels = np.zeros((20, 30), np.int32)
    labels[0:6, 0:6] = 1  # instance 1 (index 0): kept
    labels[10:12, 0:2] = 2  # instance 2: a 4-pixel sliver, dropped
    labels[10:18, 10:18] = 3  # instance 3: main piece ...
    labels[0:3, 20:23] = 3  # ... and a stray piece, removed
    labels[12:15, 18:22] = 4  # instance 4 touches 3: kept apart
    dist = np.where(labels > 0, 0.5, np.inf).astype(np.float32)
    new, kept = syn._clean(labels, dist)
    assert kept.tolist() == [0, 2, 3]
    assert (new[0:6, 0:6] == 1).all() and (new[10:18, 10:18] == 2).all()
    assert (new[12:15, 18:22] == 3).all()
    assert (new[10:12, 0:2] == 0).all() and (new[0:3, 20:23] == 0).all()
    assert np.isinf(dist[new == 0]).all()


def test_mask_png_encoder_round_trip() -> None:
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (5, 7), (37, 300)]:
        encoder = syn._MaskPngEncoder(h, w)
        for _ in range(10):
            y0 = int(rng.integers(0, h))
            y1 = int(rng.integers(y0 + 1, h + 1))
            rows = np.where(rng.random((y1 - y0, w)) < 0.5, 255, 0).astype(np.uint8)
            expected = np.zeros((h, w), np.uint8)
            expected[y0:y1] = rows
            with Image.open(io.BytesIO(encoder.encode(rows, y0))) as im:
                assert im.mode == "L" and np.array_equal(np.asarray(im), expected)
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    with Image.open(io.BytesIO(syn._encode_png(rgba))) as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), rgba)


def test_ensure_generates_once_then_uses_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=syn.__name__)
    stage = syn.ensure_synthetic_dataset(tmp_path, n_images=3, seed=1, workers=1)
    assert "Generating synthetic set" in caplog.text and "ready in" in caplog.text
    root = tmp_path / f"synthetic-v{syn.GENERATOR_VERSION}-n3-seed1"
    assert stage == root / "stage1_train"
    assert len(list(stage.iterdir())) == 3
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["n_images"] == 3 and manifest["seed"] == 1
    assert manifest["version"] == syn.GENERATOR_VERSION
    assert [p.name for p in tmp_path.iterdir()] == [root.name]  # no temporary folder left

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a complete set")

    monkeypatch.setattr(syn, "_generate", fail)
    assert syn.ensure_synthetic_dataset(tmp_path, n_images=3, seed=1, workers=1) == stage


def test_ensure_ignores_half_written_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / f"synthetic-v{syn.GENERATOR_VERSION}-n2-seed0"
    (root / "stage1_train" / "partial").mkdir(parents=True)  # killed run, no manifest
    # A temporary folder left by a process that no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{root.name}.tmp-{dead.pid}-deadbeef"
    stale.mkdir()

    calls = []
    real = syn._generate

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(syn, "_generate", spy)
    stage = syn.ensure_synthetic_dataset(tmp_path, n_images=2, seed=0, workers=1)
    assert len(calls) == 1
    assert sorted(p.name for p in stage.iterdir()) == sorted(syn.image_id(0, i) for i in range(2))
    assert (root / "manifest.json").is_file()
    assert not stale.exists()


def test_ensure_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(out_dir: Path, *args: object, **kwargs: object) -> None:
        (Path(out_dir) / "stage1_train").mkdir(parents=True)
        raise RuntimeError("killed")

    monkeypatch.setattr(syn, "_generate", boom)
    with pytest.raises(RuntimeError):
        syn.ensure_synthetic_dataset(tmp_path, n_images=2, seed=0, workers=1)
    assert list(tmp_path.iterdir()) == []
