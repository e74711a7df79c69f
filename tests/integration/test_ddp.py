"""DDP on 2 CPU processes (trainer=ddp_cpu): same metrics as one process, one set of files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_module
from omegaconf import open_dict
from support.datamodules import flat_datamodule
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

from nuclei.cli.evaluate import evaluate
from nuclei.data.datamodule import NucleiDataModule

pytestmark = pytest.mark.slow  # run by `make test-slow` and .ci/run

# 12 images, val_fraction 0.25: 3 validation images in batches of 2, so the two processes
# get 2 and 1 of them. A sampler that pads the split to 4 would score one image twice.
DDP_OVERRIDES = [
    *(o for o in FAST_TRAIN_OVERRIDES if not o.startswith("trainer=")),
    *SMALL_UNET_OVERRIDES,
    "trainer=ddp_cpu",
    "trainer.max_epochs=5",
    "optimizer.lr=5e-3",
    "data.split.val_fraction=0.25",
    "data.loader.eval_batch_size=2",
    "task.map_every_n_epochs=5",
]


def shares(datamodule: NucleiDataModule, processes: int) -> list[list[str]]:
    """The validation ids each of ``processes`` DDP ranks would score."""
    out = []
    for rank in range(processes):
        kwargs = {"num_replicas": processes, "rank": rank}
        datamodule.trainer = SimpleNamespace(distributed_sampler_kwargs=kwargs, global_rank=rank)
        loader = datamodule.val_dataloader()
        out.append([i for batch in loader for i in batch["id"]])
    return out


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_validation_samples_are_shared_out_without_repeats(
    synthetic_root: Path, processes: int
) -> None:
    datamodule = flat_datamodule(
        root=str(synthetic_root), image_size=32, val_fraction=0.5, decode_workers=1
    )
    datamodule.setup("fit")
    assert len(datamodule.val_ids) == 6
    parts = shares(datamodule, processes)
    assert sorted(i for part in parts for i in part) == sorted(datamodule.val_ids)
    assert all(parts)  # every process gets at least one sample
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError, match="cannot feed 7 processes"):
        shares(datamodule, 7)


def test_two_process_run_matches_one_process_and_writes_one_set_of_files(
    synthetic_root: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    command = [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        *DDP_OVERRIDES,
        f"data.source.root={synthetic_root}",
        f"paths.root_dir={outputs}",  # run dir: outputs/train/<now>, differs per process
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]

    # Every rank wrote into rank 0's run directory; nothing landed anywhere else.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]
    (run_dir,) = (outputs / "train").iterdir()
    assert len(list(tmp_path.rglob("metrics.json"))) == 1
    assert len(list(tmp_path.rglob("split.json"))) == 1
    assert len(list(tmp_path.rglob("data_report.json"))) == 1
    # events.out.tfevents.<time>.<host>.<pid>.<n>: all from one process (rank 0)
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events and len({p.name.split(".")[-2] for p in events}) == 1
    assert len(list(tmp_path.rglob("hparams.yaml"))) == 1
    assert [p.name for p in tmp_path.rglob("checkpoints")] == ["checkpoints"]
    assert len(list(tmp_path.rglob(".hydra"))) == 1

    metrics = json.loads((run_dir / "metrics.json").read_text())
    # 9 training images, 4 per process and step: 2 steps per epoch on 2 processes (3 on one).
    assert metrics["global_step"] == 2 * 5
    assert {p.name for p in run_dir.glob("*.log")} == {"train.log", "train_ddp_process_1.log"}
    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["val"]) == 3

    # One process, same checkpoint, same split: the same validation figures.
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(
            "eval", overrides=[f"ckpt_path={metrics['best_checkpoint']}", "progress_bar=false"]
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    single = evaluate(cfg)
    assert single["n_images"] == 3
    for key in ("val/loss", "val/acc", "val/iou", "val/dice", "val/map", "val/f1"):
        assert single[key] == pytest.approx(metrics[key], rel=1e-5, abs=1e-6), key


def test_multirun_with_ddp_runs_each_job_once_on_two_processes(
    synthetic_root: Path, tmp_path: Path
) -> None:
    """Rank 1 of each job runs that job alone, in its folder: not the sweep, not a new run."""
    shared = [
        o
        for o in DDP_OVERRIDES
        if not o.startswith(("optimizer.lr=", "trainer.max_epochs=", "task.map_every_n_epochs="))
    ]
    outputs = tmp_path / "outputs"
    command = [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        "-m",
        *shared,
        "trainer.max_epochs=2",
        "task.map_every_n_epochs=0",
        "optimizer.lr=1e-3,2e-3",
        f"data.source.root={synthetic_root}",
        f"paths.root_dir={outputs}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]

    # One sweep folder (no train/ folder of a stray single run, nothing in the cwd).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["outputs"]
    assert [p.name for p in outputs.iterdir()] == ["train-multirun"]
    (sweep,) = (outputs / "train-multirun").iterdir()
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    assert sorted(p.parent.name for p in tmp_path.rglob("metrics.json")) == ["0", "1"]
    assert len(list(tmp_path.rglob("multirun.yaml"))) == 1
    assert len(list(tmp_path.rglob(".hydra"))) == 2
    assert len(list(tmp_path.rglob("checkpoints"))) == 2
    assert done.stderr.count("Initializing distributed: GLOBAL_RANK: 1") == 2

    for job, rate in (("0", "0.001"), ("1", "0.002")):
        run_dir = sweep / job
        # 9 training images, 4 per process and step: 2 steps per epoch on 2 processes.
        assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == 2 * 2
        assert {p.name for p in run_dir.glob("*.log")} == {"train.log", "train_ddp_process_1.log"}
        for log_name in ("train.log", "train_ddp_process_1.log"):  # both ranks ran this job
            (line,) = [
                line
                for line in (run_dir / log_name).read_text().splitlines()
                if "Overrides:" in line
            ]
            assert f"optimizer.lr={rate}" in line, (log_name, line)
        events = list(run_dir.rglob("events.out.tfevents.*"))
        assert events and len({p.name.split(".")[-2] for p in events}) == 1  # rank 0 only
