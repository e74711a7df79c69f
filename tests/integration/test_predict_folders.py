"""nuclei-predict's output folder: never the input's, one prediction at a time, its own records
out of reach of any image's name, its settings recorded once accepted, its log and config
inside it.

The console script runs in a subprocess from a working directory of its own, so what it
leaves there can be checked too; the other tests call the command's function directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile
from omegaconf import OmegaConf
from PIL import Image
from support.configs import predict_config

import nuclei
from nuclei.cli.predict import predict
from nuclei.data.sources.io import read_image

BIN = Path(sys.executable).parent
#: Inputs named like the files a prediction keeps of its own, or like another image's output.
RECORD_LIKE = ("settings", "predict_args", "process-0-of-1", "lock", "a", "a_mask", "a.failed")
RECORDS = ".nuclei-predict"


def checkpoint_of(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])


def checksums(folder: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``folder``, hidden ones included."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_images(folder: Path, synthetic_root: Path, names: tuple[str, ...]) -> Path:
    """Small crops of the synthetic set's images, one per name, as PNGs in ``folder``."""
    folder.mkdir(parents=True)
    sources = sorted(synthetic_root.glob("*/images/*.png"))
    for i, name in enumerate(names):
        image = read_image(sources[i % len(sources)])[:64, :80]
        Image.fromarray(image).save(folder / f"{name}.png")
    return folder


def run_command(workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``nuclei-predict`` started in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(BIN / "nuclei-predict"), "device=cpu", "progress_bar=false", *arguments],
        cwd=workdir,
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


@pytest.fixture
def images(tmp_path: Path, synthetic_root: Path) -> Path:
    """Three images, one of them named like another's mask."""
    return write_images(tmp_path / "images", synthetic_root, ("a", "a_mask", "b"))


def test_an_output_equal_to_the_input_is_refused_and_nothing_is_written(
    trained_run: Path, images: Path, tmp_path: Path
) -> None:
    before = checksums(images)
    done = run_command(
        tmp_path / "elsewhere",
        f"ckpt_path={checkpoint_of(trained_run)}",
        f"input={images}",
        f"output={images}",
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = error_lines(done)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nuclei-predict: ") and str(images) in lines[0]
    assert "output" in lines[0] and "input" in lines[0]
    assert checksums(images) == before  # the same files, every byte unchanged


@pytest.mark.parametrize("layout", ["output inside input", "input inside output", "a link"])
def test_overlapping_folders_are_refused_before_the_model_loads(
    layout: str, images: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    source, out = {
        "output inside input": (images, images / "segmented"),
        "input inside output": (images, images.parent),
        "a link": (images, outside / "link"),
    }[layout]
    if layout == "a link":
        out.symlink_to(images, target_is_directory=True)
    before = checksums(tmp_path)
    # No checkpoint there: loading one first would fail with another message.
    cfg = predict_config(tmp_path / "missing.ckpt", source, out)
    with pytest.raises(ValueError, match="input") as refused:
        predict(cfg)
    assert "checkpoint" not in str(refused.value)
    assert checksums(tmp_path) == before and not (images / "segmented").exists()


def test_the_python_api_refuses_the_input_folder_as_output(trained_run: Path, images: Path) -> None:
    before = checksums(images)
    segmenter = nuclei.Segmenter.from_checkpoint(checkpoint_of(trained_run), device="cpu")
    with pytest.raises(ValueError, match="input"):
        segmenter.segment_files(images, images, progress=False)
    assert checksums(images) == before


def test_a_refused_rerun_leaves_the_records_untouched(
    trained_run: Path, images: Path, tmp_path: Path
) -> None:
    ckpt, out = checkpoint_of(trained_run), tmp_path / "out"
    predict(predict_config(ckpt, images, out))
    records = {
        name: (out / name).read_bytes()
        for name in ("predict_args.json", f"{RECORDS}/settings.json", "nuclei.csv")
    }
    with pytest.raises(ValueError, match=r"other settings \(differing: postprocess\)"):
        predict(predict_config(ckpt, images, out, "postprocess.threshold=0.2"))
    assert {name: (out / name).read_bytes() for name in records} == records
    assert json.loads(records["predict_args.json"])["postprocess"]["threshold"] == 0.5


def test_predict_args_records_every_option_with_absolute_paths(
    trained_run: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = predict_config(
        checkpoint_of(trained_run),
        Path("images"),
        Path("out"),
        "pixel_size_um=0.25",
        "roi_zip=true",
        "overlay=false",
        "save_probabilities=true",
        "properties=[area,probability_mean]",
        "max_pixels=1000000",
    )
    predict(cfg)
    record = json.loads((tmp_path / "out" / "predict_args.json").read_text())
    assert record["input"] == str(images.resolve())
    assert record["output"] == str((tmp_path / "out").resolve())
    assert record["files"] == {
        "overlay": False,
        "pixel_size_um": 0.25,
        "properties": ["area", "probability_mean"],
        "save_probabilities": True,
        "roi_zip": True,
    }
    assert record["max_pixels"] == 1_000_000
    assert (tmp_path / "out" / "a_rois.zip").is_file()
    assert not (tmp_path / "out" / "a_overlay.png").exists()


def test_a_second_prediction_is_refused_while_the_first_holds_the_folder(
    trained_run: Path, images: Path, tmp_path: Path
) -> None:
    from nuclei.inference.output_folder import output_lock  # the holder's own mechanism

    out = tmp_path / "out"
    with output_lock(out):  # this process is the first prediction
        before = checksums(out)
        done = run_command(
            tmp_path / "elsewhere",
            f"ckpt_path={checkpoint_of(trained_run)}",
            f"input={images}",
            f"output={out}",
        )
        assert checksums(out) == before  # the second wrote nothing into it
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = error_lines(done)
    assert len(lines) == 1, done.stderr
    assert f"pid {os.getpid()}" in lines[0] and socket.gethostname() in lines[0]
    assert not (out / "predict_args.json").exists()


@pytest.fixture(scope="module")
def two_runs(
    tmp_path_factory: pytest.TempPathFactory, trained_run: Path, synthetic_root: Path
) -> dict[str, object]:
    """The console script run twice into one folder on images named like its records."""
    base = tmp_path_factory.mktemp("record-like")
    source = write_images(base / "images", synthetic_root, RECORD_LIKE)
    out, workdir = base / "segmented", base / "workdir"
    arguments = (f"ckpt_path={checkpoint_of(trained_run)}", f"input={source}", f"output={out}")
    first = run_command(workdir, *arguments)
    after_first = checksums(out)
    log_after_first = (out / "predict.log").read_text() if (out / "predict.log").is_file() else ""
    second = run_command(workdir, *arguments)
    return {
        "out": out,
        "workdir": workdir,
        "first": first,
        "second": second,
        "after_first": after_first,
        "log_after_first": log_after_first,
    }


def test_inputs_named_like_the_records_are_segmented_and_a_rerun_skips_them(
    two_runs: dict[str, object],
) -> None:
    out = two_runs["out"]
    assert isinstance(out, Path)
    for run in ("first", "second"):
        done = two_runs[run]
        assert isinstance(done, subprocess.CompletedProcess)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (out / "summary.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in summary[1:]) == sorted(RECORD_LIKE)
    for name in RECORD_LIKE:
        assert tifffile.imread(out / f"{name}_labels.tif").shape == (64, 80)
    second = two_runs["second"]
    assert isinstance(second, subprocess.CompletedProcess)
    assert re.search(rf"complete before \(skipped\)\W+{len(RECORD_LIKE)}\b", second.stdout)
    outputs_only = {
        name: digest
        for name, digest in checksums(out).items()
        if not name.startswith(RECORDS) and name != "predict.log"
    }
    first = two_runs["after_first"]
    assert isinstance(first, dict)
    assert outputs_only == {n: d for n, d in first.items() if n in outputs_only}


def test_the_log_and_config_of_a_run_land_in_its_output_folder(
    two_runs: dict[str, object],
) -> None:
    out, workdir = two_runs["out"], two_runs["workdir"]
    assert isinstance(out, Path) and isinstance(workdir, Path)
    assert list(workdir.iterdir()) == []  # no outputs/predict/<time> where it was started
    log = (out / "predict.log").read_text()
    first_log = two_runs["log_after_first"]
    assert isinstance(first_log, str)
    assert "Segmenting 7 image(s)" in first_log
    assert log.startswith(first_log) and len(log) > len(first_log)  # the rerun appended
    configs = sorted((out / RECORDS).glob("runs/*/config.yaml"))
    assert len(configs) == 2  # one per run, neither replaced
    config = OmegaConf.load(configs[0])
    assert config.output == str(out) and config.input.endswith("images")


def test_hidden_folders_are_never_read_as_images(images: Path) -> None:
    from nuclei.inference.image_files import find_images

    for hidden in (".nuclei-predict", ".snapshot"):
        (images / hidden / "images").mkdir(parents=True)
        Image.new("L", (8, 8)).save(images / hidden / "images" / f"{hidden[1:]}.png")
    assert [p.stem for p in find_images(images)] == ["a", "a_mask", "b"]
