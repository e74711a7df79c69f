"""A crafted checkpoint runs nothing: no loading path builds a ``_target_`` that the
package's own configs do not name, unless the user passes ``trust_checkpoint=true``.

Each payload touches a marker file when it runs; every test checks the marker is absent.
The payloads are the known bypasses of Hydra's own block list: ``pandas.read_pickle`` and
``numpy.load`` of a pickle on disk, and ``torch.load`` of base64 bytes, each nested inside
a harmless-looking value of the stored configuration.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, open_dict

from nuclei.api.segmenter import Segmenter
from nuclei.cli.evaluate import evaluate
from nuclei.cli.predict import predict
from nuclei.cli.train import train
from nuclei.cli.tune import tune
from nuclei.runs.checkpoint import CheckpointError, load_run, restore_task
from nuclei.runs.run_folder import resume_config


class Touch:
    """Unpickling this creates ``marker`` (as ``open(marker, "w")`` would)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def pandas_payload(marker: Path, folder: Path) -> dict[str, Any]:
    path = folder / "payload.pkl"
    path.write_bytes(pickle.dumps(Touch(marker)))
    return {"_target_": "pandas.read_pickle", "filepath_or_buffer": str(path)}


def numpy_payload(marker: Path, folder: Path) -> dict[str, Any]:
    path = folder / "payload.npy"
    np.save(path, np.array([Touch(marker)], dtype=object), allow_pickle=True)
    return {"_target_": "numpy.load", "file": str(path), "allow_pickle": True}


def torch_payload(marker: Path, folder: Path) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(Touch(marker), buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return {
        "_target_": "torch.load",
        "f": {
            "_target_": "io.BytesIO",
            "initial_bytes": {"_target_": "base64.b64decode", "s": encoded},
        },
        "weights_only": False,
    }


PAYLOADS = {"pandas": pandas_payload, "numpy": numpy_payload, "torch": torch_payload}
#: Where a payload hides: a value the network's builder reads, a data setting, a section
#: that eval and predict never build (a checkpoint naming it is still refused).
PLACES = (("task", "net", "dropout"), ("data", "loader", "num_workers"), ("trainer", "plugins"))


def best_of(run_dir: Path) -> Path:
    named = Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])
    return run_dir / "checkpoints" / named.name


def set_at(config: dict[str, Any], place: tuple[str, ...], value: Any) -> None:
    node = config
    for key in place[:-1]:
        node = node.setdefault(key, {})
    node[place[-1]] = value


def crafted_run(
    trained_run: Path,
    into: Path,
    payload: Callable[[Path, Path], dict[str, Any]] = torch_payload,
    place: tuple[str, ...] = ("task", "net", "dropout"),
) -> tuple[Path, Path]:
    """A copy of ``trained_run`` whose best checkpoint stores ``payload`` at ``place``;
    returns the checkpoint and the marker the payload would create."""
    run_dir = Path(shutil.copytree(trained_run, into / "run"))
    marker = into / "payload-ran"
    checkpoint_path = best_of(run_dir)
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    set_at(checkpoint["nuclei_config"], place, payload(marker, into))
    torch.save(checkpoint, checkpoint_path)
    return checkpoint_path, marker


def composed(config_name: str, out_dir: Path, *overrides: str) -> DictConfig:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(config_name, overrides=["progress_bar=false", *overrides])
    if "paths" in cfg:
        with open_dict(cfg):
            cfg.paths.output_dir = str(out_dir)
    return cfg


def hydra_run(trained_run: Path, into: Path) -> Path:
    """A copy of ``trained_run`` with the ``.hydra/config.yaml`` a command-line run has."""
    run_dir = Path(shutil.copytree(trained_run, into / "run"))
    stored = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(stored["nuclei_config"]))
    return run_dir


@pytest.mark.parametrize("place", PLACES, ids=lambda place: ".".join(place))
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_crafted_stored_config_builds_nothing(
    trained_run: Path, tmp_path: Path, payload: str, place: tuple[str, ...]
) -> None:
    checkpoint, marker = crafted_run(trained_run, tmp_path, PAYLOADS[payload], place)
    with pytest.raises(CheckpointError) as refused:
        restore_task(load_run(checkpoint))
    message = str(refused.value)
    assert "trust_checkpoint=true" in message and str(checkpoint) in message
    assert ".".join(place) in message  # names where the target hides
    assert not marker.exists()


def test_a_trusted_checkpoint_builds_what_it_names(trained_run: Path, tmp_path: Path) -> None:
    """The payload is live: with trust_checkpoint the same file runs it (the refusal above
    is what keeps it from running)."""
    checkpoint, marker = crafted_run(trained_run, tmp_path)
    with pytest.raises(Exception):  # noqa: B017 (the network rejects a file as its dropout)
        restore_task(load_run(checkpoint, trust=True))
    assert marker.exists()


def test_an_untouched_checkpoint_still_loads(trained_run: Path) -> None:
    task = restore_task(load_run(best_of(trained_run)))
    assert task.target == "binary"


ENTRY_POINTS: dict[str, Callable[[Path, Path, Path, Path, Path], Any]] = {
    "api": lambda ckpt, data, out, run, original: Segmenter.from_checkpoint(ckpt, device="cpu"),
    "api-ensemble": lambda ckpt, data, out, run, original: Segmenter.from_checkpoint(
        [best_of(original), ckpt], device="cpu"
    ),
    "eval": lambda ckpt, data, out, run, original: evaluate(
        composed("eval", out, f"ckpt_path={ckpt}", f"data.source.root={data}")
    ),
    "eval-ensemble": lambda ckpt, data, out, run, original: evaluate(
        composed("eval", out, f"ckpt_path=[{best_of(original)},{ckpt}]", f"data.source.root={data}")
    ),
    "predict": lambda ckpt, data, out, run, original: predict(
        composed("predict", out, f"ckpt_path={ckpt}", f"input={data}", f"output={out / 'p'}")
    ),
    "predict-run-folder": lambda ckpt, data, out, run, original: predict(
        composed("predict", out, f"ckpt_path={run}", f"input={data}", f"output={out / 'p'}")
    ),
    "predict-sweep-folder": lambda ckpt, data, out, run, original: predict(
        composed("predict", out, f"ckpt_path={run.parent}", f"input={data}", f"output={out / 'p'}")
    ),
    "tune": lambda ckpt, data, out, run, original: tune(
        composed("tune", out, f"ckpt_path={ckpt}", "dry_run=true")
    ),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_loading_path_refuses_a_crafted_checkpoint(
    trained_run: Path, synthetic_root: Path, tmp_path: Path, entry: str
) -> None:
    checkpoint, marker = crafted_run(trained_run, tmp_path)
    with pytest.raises(CheckpointError, match="trust_checkpoint=true"):
        ENTRY_POINTS[entry](
            checkpoint, synthetic_root, tmp_path / "out", checkpoint.parents[1], trained_run
        )
    assert not marker.exists()


def test_nuclei_predict_refuses_in_one_line_with_status_2(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    checkpoint, marker = crafted_run(trained_run, tmp_path, pandas_payload)
    out = tmp_path / "predicted"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuclei.cli.predict",
            f"ckpt_path={checkpoint}",
            f"input={synthetic_root}",
            f"output={out}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pandas.read_pickle" in lines[0], done.stderr
    assert "trust_checkpoint=true" in lines[0]
    assert not marker.exists() and not list(out.glob("*.tif"))


def test_resume_refuses_a_run_config_naming_foreign_code(trained_run: Path, tmp_path: Path) -> None:
    run_dir = hydra_run(trained_run, tmp_path)
    marker = tmp_path / "payload-ran"
    config_file = run_dir / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["callbacks"]["evil"] = numpy_payload(marker, tmp_path)
    config_file.write_text(yaml.safe_dump(config))
    with pytest.raises(CheckpointError, match=r"callbacks\.evil.*trust_checkpoint=true"):
        resume_config(run_dir)
    assert not marker.exists()


def test_resume_refuses_a_last_checkpoint_holding_pickled_code(
    trained_run: Path, tmp_path: Path
) -> None:
    run_dir = hydra_run(trained_run, tmp_path)
    marker = tmp_path / "payload-ran"
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["loops"] = Touch(marker)
    torch.save(checkpoint, last)
    with pytest.raises(CheckpointError, match="trust_checkpoint=true"):
        resume_config(run_dir)
    assert not marker.exists()


def test_training_from_a_checkpoint_holding_pickled_code_is_refused(
    trained_run: Path, train_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.ckpt"
    checkpoint = torch.load(best_of(trained_run), weights_only=True)
    checkpoint["callbacks"] = Touch(marker)
    torch.save(checkpoint, evil)
    with pytest.raises(CheckpointError, match="trust_checkpoint=true"):
        train(train_config(f"ckpt_path={evil}"))
    assert not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training


def test_training_from_a_file_that_is_no_checkpoint_names_it(
    train_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.ckpt"
    bogus.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.ckpt: not a PyTorch checkpoint"):
        train(train_config(f"ckpt_path={bogus}"))


def test_non_finite_weights_are_refused(trained_run: Path, tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(trained_run, tmp_path / "run"))
    path = best_of(run_dir)
    checkpoint = torch.load(path, weights_only=True)
    name = next(key for key, value in checkpoint["state_dict"].items() if value.is_floating_point())
    checkpoint["state_dict"][name].view(-1)[0] = float("nan")
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=rf"non-finite.*{name}"):
        restore_task(load_run(path))


@pytest.mark.parametrize("config_name", ["train", "eval", "predict", "tune"])
def test_no_command_trusts_a_checkpoint_unless_told(config_name: str) -> None:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        assert compose(config_name).trust_checkpoint is False
