"""On a real SLURM (scripts/ci/slurm_up.sh starts a single-node one): a sweep sent through
``hydra/launcher=slurm_cpu``, and DDP on 2 CPU tasks started by srun, whose ranks Lightning takes
from SLURM, with the same metrics as the 2 processes Lightning starts itself (trainer=ddp_cpu).

Skipped only where no SLURM answers; .ci/run and ``make test-slurm`` start one first. Under
``NUCLEI_REQUIRE_SLURM=1`` (what .ci/run sets once SLURM is up) a SLURM that does not answer
fails the tests instead, so CI cannot pass with them silently skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

pytestmark = pytest.mark.slow  # run by `make test-slow` (and .ci/run), `make test-slurm`

# The console script of this environment (SLURM jobs run this environment's Python too).
NUCLEI_TRAIN = str(Path(sys.executable).parent / "nuclei-train")
TIMEOUT_S = 480  # one command: jobs wait in the queue, and the 2 cores may be shared
# As test_ddp.py: 12 images, 3 validation images in batches of 2 (2 on rank 0, 1 on rank 1).
DDP_OVERRIDES = [
    *(o for o in FAST_TRAIN_OVERRIDES if not o.startswith("trainer=")),
    *SMALL_UNET_OVERRIDES,
    "trainer=ddp_cpu",
    "optimizer.lr=5e-3",
    "data.split.val_fraction=0.25",
    "data.loader.eval_batch_size=2",
    "task.map_every_n_epochs=2",  # val/map at the last of the 2 epochs
]
COMPARED = ("val/loss", "val/acc", "val/iou", "val/dice", "val/map", "val/f1")
RANK_1_STARTED = "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2"


#: Set (to 1) where SLURM must be up: the tests then fail, not skip, without it.
REQUIRE_SLURM = "NUCLEI_REQUIRE_SLURM"


def no_slurm(reason: str) -> None:
    """Skip the module for ``reason``, or fail it where ``NUCLEI_REQUIRE_SLURM=1``."""
    if os.environ.get(REQUIRE_SLURM) == "1":
        pytest.fail(f"{REQUIRE_SLURM}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def slurm_is_up() -> None:
    """Skip the module unless a SLURM controller answers with a node that can take jobs."""
    if shutil.which("sinfo") is None or shutil.which("srun") is None:
        no_slurm(
            "no SLURM here (sinfo/srun not on PATH); start a single-node one as root with "
            "`bash scripts/ci/slurm_up.sh` (or `make test-slurm`)"
        )
    done = subprocess.run(
        ["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 or not {"idle", "mixed"} & set(done.stdout.split()):
        answer = (done.stdout + done.stderr).strip()
        no_slurm(f"SLURM is not up (sinfo: {answer!r}); run `bash scripts/ci/slurm_up.sh`")


@pytest.fixture
def job_name() -> Iterator[str]:
    """A SLURM job name of this test alone; whatever still runs under it is cancelled after."""
    name = f"nuclei-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["scancel", f"--name={name}"], capture_output=True, timeout=60, check=False)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command`` in ``cwd``; its stderr, after checking that it succeeded."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done.stderr


def slurm_jobs(name: str) -> list[dict[str, str]]:
    """SLURM's records (``scontrol show job``) of the jobs, or array tasks, called ``name``."""
    shown = subprocess.run(
        ["scontrol", "--oneliner", "show", "job"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in shown.stdout.splitlines()]
    return [record for record in records if record.get("JobName") == name]


def finished_slurm_jobs(name: str, timeout_s: float = 60) -> list[dict[str, str]]:
    """``slurm_jobs(name)`` once none of them is still running: submitit returns as soon as a
    job has written its result, a moment before SLURM sees the job end."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = slurm_jobs(name)
        if time.monotonic() > deadline or not any(
            r["JobState"] in ("PENDING", "RUNNING", "COMPLETING") for r in records
        ):
            return records
        time.sleep(1)


def data_overrides(data_root: Path, work_dir: Path) -> list[str]:
    """The test set and a data cache of this test."""
    return [f"data.source.root={data_root}", f"paths.cache_dir={work_dir / 'cache'}"]


def test_sweep_runs_each_job_as_a_slurm_job_into_one_sweep_folder(
    synthetic_root: Path, tmp_path: Path, job_name: str
) -> None:
    sweep = tmp_path / "sweep"
    run(
        [
            NUCLEI_TRAIN,
            "-m",
            "hydra/launcher=slurm_cpu",
            f"hydra.launcher.name={job_name}",
            "hydra.launcher.timeout_min=10",
            *FAST_TRAIN_OVERRIDES,
            *SMALL_UNET_OVERRIDES,
            *data_overrides(synthetic_root, tmp_path),
            "task.map_every_n_epochs=0",
            "optimizer.lr=1e-3,3e-3",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )

    assert sorted(p.name for p in sweep.iterdir()) == [".submitit", "0", "1", "multirun.yaml"]
    assert sorted(p.parent.name for p in tmp_path.rglob("metrics.json")) == ["0", "1"]
    for job, rate in (("0", "0.001"), ("1", "0.003")):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        # 9 training images in batches of 4: 3 steps per epoch, 2 epochs.
        assert (metrics["epochs"], metrics["global_step"]) == (2, 2 * 3)
        assert 0 < metrics["val/iou"] <= 1
        assert metrics["best_checkpoint"].startswith(f"{sweep / job}/checkpoints/")
        assert f"optimizer.lr={rate}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()

    # SLURM ran them, as one job array of 2 tasks with the slurm_cpu preset's resources.
    records = finished_slurm_jobs(job_name)
    assert sorted(r["ArrayTaskId"] for r in records) == ["0", "1"], records
    (array,) = {r["ArrayJobId"] for r in records}
    for record in records:
        assert record["JobState"] == "COMPLETED", record
        assert record["TRES"].startswith("cpu=1,mem=4G,node=1"), record
        task = f"{array}_{record['ArrayTaskId']}"  # submitit's folder of it: pickles and logs
        assert (sweep / ".submitit" / task / f"{task}_0_result.pkl").is_file()


@pytest.fixture(scope="module")
def lightning_ddp_metrics(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """metrics.json of the 2-process trainer=ddp_cpu run that Lightning starts itself."""
    work_dir = tmp_path_factory.mktemp("lightning-ddp")
    outside_slurm = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    stderr = run(
        [
            NUCLEI_TRAIN,
            *DDP_OVERRIDES,
            *data_overrides(synthetic_root, work_dir),
            f"hydra.run.dir={work_dir / 'run'}",
        ],
        cwd=work_dir,
        env=outside_slurm,
    )
    assert RANK_1_STARTED in stderr
    assert (work_dir / "run" / "train_ddp_process_1.log").is_file()  # Lightning started rank 1
    return json.loads((work_dir / "run" / "metrics.json").read_text())


def srun_command(job_name: str, work_dir: Path) -> tuple[list[str], Path]:
    """``srun`` of 2 tasks on one node, each running nuclei-train in one fixed run folder; the
    folder. Lightning wants --ntasks-per-node (not --ntasks) equal to trainer.devices, and a
    job name other than bash or interactive (it reads those as an interactive shell). A task
    that fails ends the other (which would otherwise wait for it until the timeout)."""
    run_dir = work_dir / "run"
    command = [
        "srun",
        "--nodes=1",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--mem=4G",
        "--time=10",
        "--kill-on-bad-exit=1",
        f"--job-name={job_name}",
        NUCLEI_TRAIN,
        f"hydra.run.dir={run_dir}",  # both tasks must agree on it (${now} might not)
    ]
    return command, run_dir


def launcher_command(job_name: str, work_dir: Path) -> tuple[list[str], Path]:
    """A 1-job sweep through hydra/launcher=slurm_cpu with 2 tasks (submitit's sbatch + srun);
    the job's folder."""
    sweep = work_dir / "sweep"
    command = [
        NUCLEI_TRAIN,
        "-m",
        "hydra/launcher=slurm_cpu",
        "hydra.launcher.tasks_per_node=2",
        f"hydra.launcher.name={job_name}",
        "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={sweep}",
    ]
    return command, sweep / "0"


@pytest.mark.parametrize("start", [srun_command, launcher_command], ids=["srun", "launcher"])
def test_ddp_on_two_slurm_tasks_matches_lightnings_own_two_processes(
    start, synthetic_root: Path, tmp_path: Path, job_name: str, lightning_ddp_metrics: dict
) -> None:
    command, run_dir = start(job_name, tmp_path)
    stderr = run([*command, *DDP_OVERRIDES, *data_overrides(synthetic_root, tmp_path)], tmp_path)

    (record,) = finished_slurm_jobs(job_name)
    assert (record["JobState"], record["NumTasks"]) == ("COMPLETED", "2"), record
    if start is launcher_command:  # the tasks' output is in submitit's folder of the job
        stderr = (
            (run_dir.parent / ".submitit" / record["JobId"])
            .joinpath(f"{record['JobId']}_1_log.err")
            .read_text()
        )
    assert RANK_1_STARTED in stderr  # Lightning took rank 1 of 2 from SLURM ...
    assert not list(run_dir.glob("train_ddp_process_*.log"))  # ... and started no process
    assert [p.parent for p in tmp_path.rglob("metrics.json")] == [run_dir]
    assert len(list(tmp_path.rglob("split.json"))) == 1

    metrics = json.loads((run_dir / "metrics.json").read_text())
    # 9 training images, 4 per process and step: 2 steps per epoch on 2 processes.
    assert metrics["global_step"] == lightning_ddp_metrics["global_step"] == 2 * 2
    for key in COMPARED:
        assert metrics[key] == pytest.approx(lightning_ddp_metrics[key], rel=1e-5, abs=1e-6), key
