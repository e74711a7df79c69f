"""Synthetic sets on disk: Kaggle layout, PNG files, determinism and the cache of complete sets."""

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

from nuclei.synthetic import PROFILES, cache, render

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


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return cache.generate_synthetic_dataset(
        out, n_images=N_IMAGES, seed=SEED, workers=1, progress=False
    )


def spy_on_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record the arguments of every ``write_dataset`` call (the set is still written)."""
    calls: list[tuple] = []
    real = cache.write_dataset

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "write_dataset", spy)
    return calls


def test_kaggle_layout(small_set: Path) -> None:
    assert small_set.name == "stage1_train"
    ids = sorted(p.name for p in small_set.iterdir())
    assert ids == sorted(render.image_id(SEED, i) for i in range(N_IMAGES))
    sizes = {(h, w) for h, w, _ in render.FLUO_SIZES} | {(256, 320), (1024, 1024)}
    for image_id in ids:
        assert re.fullmatch(r"[0-9a-f]{64}", image_id)
        root = small_set / image_id
        assert sorted(p.name for p in root.iterdir()) == ["images", "masks"]
        assert [p.name for p in (root / "images").iterdir()] == [f"{image_id}.png"]
        mode, img = _read_png(root / "images" / f"{image_id}.png")
        assert mode == "RGBA" and img.dtype == np.uint8 and img.ndim == 3
        assert (img[..., 3] == 255).all()
        assert img.shape[:2] in sizes

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


def test_files_hold_the_rendered_sample(small_set: Path) -> None:
    rgb, labels, plan = render.render_sample(SEED, 0)
    _, img = _read_png(small_set / plan.image_id / "images" / f"{plan.image_id}.png")
    assert np.array_equal(img[..., :3], rgb)  # RGB order, not OpenCV's BGR
    on_disk = _labels_from_disk(small_set / plan.image_id)
    assert np.array_equal(on_disk > 0, labels > 0)
    assert on_disk.max() == labels.max()


def test_touching_nuclei_occur(small_set: Path) -> None:
    assert any(_touching(_labels_from_disk(p)) for p in sorted(small_set.iterdir()))


def test_same_seed_identical_across_workers(small_set: Path, tmp_path: Path) -> None:
    again = cache.generate_synthetic_dataset(
        tmp_path, n_images=N_IMAGES, seed=SEED, workers=2, progress=True
    )
    assert _png_bytes(again) == _png_bytes(small_set)


def test_different_seed_differs(tmp_path: Path) -> None:
    a = cache.generate_synthetic_dataset(
        tmp_path / "a", n_images=2, seed=0, workers=1, progress=False
    )
    b = cache.generate_synthetic_dataset(
        tmp_path / "b", n_images=2, seed=1, workers=1, progress=False
    )
    assert {p.name for p in a.iterdir()}.isdisjoint(p.name for p in b.iterdir())
    img_a = [_read_png(p)[1] for p in sorted(a.glob("*/images/*.png"))]
    img_b = [_read_png(p)[1] for p in sorted(b.glob("*/images/*.png"))]
    assert all(x.shape != y.shape or not np.array_equal(x, y) for x in img_a for y in img_b)


def test_png_encoders_round_trip() -> None:
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (5, 7), (37, 300)]:
        for _ in range(10):
            y0 = int(rng.integers(0, h))
            y1 = int(rng.integers(y0 + 1, h + 1))
            expected = np.zeros((h, w), np.uint8)
            expected[y0:y1] = np.where(rng.random((y1 - y0, w)) < 0.5, 255, 0)
            with Image.open(io.BytesIO(cache.encode_mask_png(expected))) as im:
                assert im.mode == "L" and np.array_equal(np.asarray(im), expected)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(cache.encode_image_png(rgb))) as im:
        rgba = np.asarray(im)
        assert im.mode == "RGBA"
    assert np.array_equal(rgba[..., :3], rgb) and (rgba[..., 3] == 255).all()


def test_synthetic_root_is_where_ensure_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = cache.ensure_synthetic_dataset(tmp_path, n_images=1, seed=2, workers=1)
    assert stage == cache.synthetic_root(tmp_path, n_images=1, seed=2)
    assert stage.name == "stage1_train"
    assert f"-v{cache.GENERATOR_VERSION}-" in stage.parent.name
    # A new version names a new folder, and both functions follow it.
    monkeypatch.setattr(cache, "GENERATOR_VERSION", cache.GENERATOR_VERSION + 1)
    bumped = cache.synthetic_root(tmp_path, n_images=1, seed=2)
    assert bumped != stage and f"-v{cache.GENERATOR_VERSION}-" in bumped.parent.name
    assert cache.ensure_synthetic_dataset(tmp_path, n_images=1, seed=2, workers=1) == bumped
    assert bumped.is_dir()


def test_ensure_generates_once_then_uses_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=cache.__name__)
    stage = cache.ensure_synthetic_dataset(tmp_path, n_images=3, seed=1, workers=1)
    assert "Generating synthetic set" in caplog.text and "ready in" in caplog.text
    root = tmp_path / f"synthetic-v{cache.GENERATOR_VERSION}-n3-seed1"
    assert stage == root / "stage1_train"
    assert len(list(stage.iterdir())) == 3
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["n_images"] == 3 and manifest["seed"] == 1
    assert manifest["version"] == cache.GENERATOR_VERSION
    assert [p.name for p in tmp_path.iterdir()] == [root.name]  # no temporary folder left

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a complete set")

    monkeypatch.setattr(cache, "write_dataset", fail)
    assert cache.ensure_synthetic_dataset(tmp_path, n_images=3, seed=1, workers=1) == stage


def test_ensure_ignores_half_written_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / f"synthetic-v{cache.GENERATOR_VERSION}-n2-seed0"
    (root / "stage1_train" / "partial").mkdir(parents=True)  # killed run, no manifest
    # A temporary folder left by a process that no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{root.name}.tmp-{dead.pid}-deadbeef"
    stale.mkdir()

    calls = spy_on_writes(monkeypatch)
    stage = cache.ensure_synthetic_dataset(tmp_path, n_images=2, seed=0, workers=1)
    assert len(calls) == 1
    assert sorted(p.name for p in stage.iterdir()) == sorted(
        render.image_id(0, i) for i in range(2)
    )
    assert (root / "manifest.json").is_file()
    assert not stale.exists()


def test_ensure_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(out_dir: Path, *args: object, **kwargs: object) -> None:
        (Path(out_dir) / "stage1_train").mkdir(parents=True)
        raise RuntimeError("killed")

    monkeypatch.setattr(cache, "write_dataset", boom)
    with pytest.raises(RuntimeError):
        cache.ensure_synthetic_dataset(tmp_path, n_images=2, seed=0, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_profile_names_its_cache_folder(tmp_path: Path) -> None:
    version = cache.GENERATOR_VERSION
    default = cache.synthetic_root(tmp_path, 134, 1000)
    assert default == cache.synthetic_root(tmp_path, 134, 1000, profile="default")
    assert default.parent.name == f"synthetic-v{version}-n134-seed1000"
    shifted = cache.synthetic_root(tmp_path, 134, 1000, profile="shifted")
    assert shifted.parent.name == f"synthetic-v{version}-shifted-n134-seed1000"
    assert shifted.name == "stage1_train"
    with pytest.raises(ValueError, match="unknown generator profile"):
        cache.synthetic_root(tmp_path, 134, 1000, profile="nope")


def test_ensure_shifted_set_records_its_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = cache.ensure_synthetic_dataset(
        tmp_path, n_images=2, seed=7, workers=1, profile="shifted"
    )
    assert stage == cache.synthetic_root(tmp_path, 2, 7, profile="shifted")
    manifest = json.loads((stage.parent / "manifest.json").read_text())
    assert manifest["profile"] == "shifted"
    assert manifest["profile_settings"] == PROFILES["shifted"].settings()
    ids = sorted(render.image_id(7, i, "shifted") for i in range(2))
    assert sorted(p.name for p in stage.iterdir()) == ids
    assert ids != sorted(render.image_id(7, i) for i in range(2))  # never a default set's ids
    rgb, _, plan = render.render_sample(7, 0, "shifted")
    _, img = _read_png(stage / plan.image_id / "images" / f"{plan.image_id}.png")
    assert np.array_equal(img[..., :3], rgb)
    # The default set of the same size and seed is another folder with other images.
    default = cache.ensure_synthetic_dataset(tmp_path, n_images=2, seed=7, workers=1)
    assert default.parent != stage.parent and _png_bytes(default) != _png_bytes(stage)

    # A manifest written under other profile settings is not trusted: the set is redone.
    manifest["profile_settings"]["noise_scale"] = 9.0
    (stage.parent / "manifest.json").write_text(json.dumps(manifest))
    calls = spy_on_writes(monkeypatch)
    assert cache.ensure_synthetic_dataset(tmp_path, 2, 7, workers=1, profile="shifted") == stage
    assert len(calls) == 1 and calls[0][-1] == "shifted"
    assert cache.ensure_synthetic_dataset(tmp_path, 2, 7, workers=1, profile="shifted") == stage
    assert len(calls) == 1


def test_shifted_set_identical_across_workers(tmp_path: Path) -> None:
    one = cache.generate_synthetic_dataset(
        tmp_path / "a", n_images=3, seed=1000, workers=1, progress=False, profile="shifted"
    )
    two = cache.generate_synthetic_dataset(
        tmp_path / "b", n_images=3, seed=1000, workers=2, progress=False, profile="shifted"
    )
    assert _png_bytes(one) == _png_bytes(two)
