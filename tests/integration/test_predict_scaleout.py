"""nuclei-predict through the Trainer: a 2-process DDP prediction of a folder, a run killed
halfway and started again, and the Python API on the same path.

Each run is the real console script in a subprocess (DDP re-runs it for its second process).
Every run here predicts one image per forward pass with one torch thread per process: on a
CPU, a float32 sum's rounding depends on the thread count and on the batch an image shares
(probabilities differ by ~1e-7), so only then can files be byte-identical whatever the number
of processes; the files are compared byte for byte.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nuclei
from nuclei.data.sources.io import read_image

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
RECORDS = ".nuclei-predict"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def checkpoint_of(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """12 images of the synthetic set, 12 crops of them, and one damaged file."""
    folder = tmp_path_factory.mktemp("screen")
    for i, source in enumerate(sorted(synthetic_root.glob("*/images/*.png"))):
        image = read_image(source)
        Image.fromarray(image).save(folder / f"whole{i:02d}.png")
        Image.fromarray(image[: 40 + 7 * i, : 90 - 3 * i]).save(folder / f"crop{i:02d}.png")
    (folder / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short")
    return folder


def predict_command(ckpt: Path, source: Path, out: Path, *overrides: str) -> list[str]:
    return [
        str(BIN / "nuclei-predict"),
        f"ckpt_path={ckpt}",
        f"input={source}",
        f"output={out}",
        "device=cpu",
        "progress_bar=false",
        "batch_size=1",
        f"hydra.run.dir={out.parent / (out.name + '_hydra')}",
        *overrides,
    ]


def run_predict(ckpt: Path, source: Path, out: Path, *overrides: str) -> None:
    """Run nuclei-predict to the end; it exits 1, naming the damaged file."""
    done = subprocess.run(
        predict_command(ckpt, source, out, *overrides),
        capture_output=True,
        text=True,
        timeout=600,
        env=ONE_THREAD,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "damaged.png: cannot be read as an image" in done.stdout + done.stderr


def files_of(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (records included), but the per-process share lists;
    ``predict_args.json`` without the output folder's path, which differs by test."""
    files = {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith("process-")
    }
    args = json.loads(files["predict_args.json"])
    assert args.pop("output") == str(out.resolve())
    files["predict_args.json"] = json.dumps(args, sort_keys=True).encode()
    return files


def shares(out: Path) -> dict[str, list[str]]:
    return {p.name: json.loads(p.read_text())["images"] for p in (out / RECORDS).glob("process-*")}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory, trained_run: Path, screen: Path) -> Path:
    """The uninterrupted one-process prediction of the screen (the reference)."""
    out = tmp_path_factory.mktemp("one") / "out"
    run_predict(checkpoint_of(trained_run), screen, out)
    return out


def readable_ids(screen: Path) -> list[str]:
    return sorted(p.stem for p in screen.glob("*.png") if p.stem != "damaged")


def test_two_ddp_processes_write_each_image_once_identical_to_one_process(
    tmp_path: Path, trained_run: Path, screen: Path, one_process: Path
) -> None:
    out = tmp_path / "out"
    run_predict(checkpoint_of(trained_run), screen, out, "trainer=ddp_cpu")
    share = shares(out)
    assert sorted(share) == ["process-0-of-2.json", "process-1-of-2.json"]
    first, second = share.values()
    assert first and second and not set(first) & set(second)  # each image once
    assert sorted(first + second) == readable_ids(screen)
    assert shares(one_process) == {"process-0-of-1.json": readable_ids(screen)}

    reference, shared = files_of(one_process), files_of(out)
    assert sorted(shared) == sorted(reference)
    assert [name for name in reference if shared[name] != reference[name]] == []
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 24  # every readable image, the damaged one reported instead
    assert json.loads((out / RECORDS / "failed" / "damaged.json").read_text())["error"].startswith(
        str(screen / "damaged.png")
    )


def records_in(out: Path) -> list[str]:
    """The images whose record says they are complete."""
    return [p.stem for p in (out / RECORDS / "done").glob("*.json")]


def test_a_killed_prediction_run_again_redoes_only_the_incomplete_images(
    tmp_path: Path, trained_run: Path, screen: Path, one_process: Path
) -> None:
    ckpt, out = checkpoint_of(trained_run), tmp_path / "out"
    # One image at a time, written in the main process: many moments to be killed in.
    slow = ["decode_workers=0", "postprocess_workers=0"]
    process = subprocess.Popen(
        predict_command(ckpt, screen, out, *slow),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=ONE_THREAD,
    )
    deadline = time.monotonic() + 300
    while len(records_in(out)) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    complete = records_in(out)
    assert 4 <= len(complete) < 24, "the run was not stopped halfway"
    before = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
        for i in complete
        for p in out.glob(f"{i}_*")
    }

    run_predict(ckpt, screen, out, *slow)
    redone = shares(out)["process-0-of-1.json"]
    assert sorted(redone) == sorted(set(readable_ids(screen)) - set(complete))
    after = {name: (out / name).stat() for name in before}
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in after.items()} == before  # not rewritten
    assert not list(out.rglob(".*.partial-*"))  # the killed write's temporary file is gone

    reference, resumed = files_of(one_process), files_of(out)
    assert sorted(resumed) == sorted(reference)
    assert [name for name in reference if resumed[name] != reference[name]] == []


def test_the_python_api_writes_what_the_command_writes(
    tmp_path: Path, trained_run: Path, screen: Path, one_process: Path
) -> None:
    ckpt = checkpoint_of(trained_run)
    segmenter = nuclei.Segmenter.from_checkpoint(ckpt, device="cpu", batch_size=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = segmenter.segment_files(screen, tmp_path / "out", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert sorted(report.images) == readable_ids(screen)
    assert list(report.failures) == [str(screen / "damaged.png")]
    reference, written = files_of(one_process), files_of(tmp_path / "out")
    assert sorted(written) == sorted(reference)
    differing = [name for name in reference if written[name] != reference[name]]
    assert differing == []
    labels = np.asarray(Image.open(tmp_path / "out" / "whole00_mask.png"))
    assert labels.any()  # the model finds nuclei, so the comparison bites
