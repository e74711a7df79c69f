"""nuclei-eval: a checkpoint alone reproduces its run's final val metrics; clear errors."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf, open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nuclei.cli.evaluate import EvaluationError, chosen_split, evaluate, main
from nuclei.inference.probabilities import DeviceError
from nuclei.runs.checkpoint import CheckpointError, load_run
from nuclei.synthetic import synthetic_root as cached_set_root

BIN = Path(sys.executable).parent


def eval_config(ckpt: Path | str, out_dir: Path, *overrides: str) -> DictConfig:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose("eval", overrides=[f"ckpt_path={ckpt}", "progress_bar=false", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    return cfg


def split_ids(run_dir: Path) -> dict[str, list[str]]:
    return json.loads((run_dir / "split.json").read_text())


def best_checkpoint(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])


def test_eval_with_only_the_checkpoint_reproduces_the_final_val_metrics(
    trained_run: Path, tmp_path: Path
) -> None:
    final = json.loads((trained_run / "metrics.json").read_text())
    ckpt = best_checkpoint(trained_run)
    record = evaluate(eval_config(ckpt, tmp_path / "eval"))

    val_keys = {k for k in final if k.startswith("val/")}
    assert {"val/loss", "val/iou", "val/map", "val/ap50", "val/ap75", "val/f1"} <= val_keys
    assert {"val/count_error", "val/n_split", "val/n_merged"} <= val_keys
    for key in val_keys:
        assert record[key] == pytest.approx(final[key], abs=1e-6), key
    assert record["split"] == "val" and record["n_images"] == 2
    assert record["split_file"] == str(trained_run / "split.json")

    written = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
    beside = json.loads(ckpt.with_name(f"{ckpt.stem}.val.eval.json").read_text())
    assert written == beside
    assert written["val/map"] == record["val/map"] and written["checkpoint"] == str(ckpt)

    # One row per validation image, beside the metrics, whose mean is the split's map.
    with (tmp_path / "eval" / "eval_images.csv").open() as handle:
        images = list(csv.DictReader(handle))
    assert sorted(row["id"] for row in images) == sorted(split_ids(trained_run)["val"])
    mean_map = sum(float(row["map"]) for row in images) / len(images)
    assert mean_map == pytest.approx(record["val/map"], abs=1e-6)
    # each row's image kind; each kind's map is the mean of its rows, with its own interval
    kinds = {row["kind"] for row in images}
    assert kinds and kinds <= {"fluorescence", "tissue", "brightfield"}
    for kind in kinds:
        maps = [float(row["map"]) for row in images if row["kind"] == kind]
        assert record[f"val/map_{kind}"] == pytest.approx(sum(maps) / len(maps), abs=1e-6)
        assert record[f"val/images_{kind}"] == len(maps)
    assert set(record["map_interval_by_kind"]) == kinds
    assert (
        ckpt.with_name(f"{ckpt.stem}.val.images.csv").read_text()
        == (tmp_path / "eval" / "eval_images.csv").read_text()
    )


def test_val_map_is_logged_every_n_epochs_during_training(trained_run: Path) -> None:
    events = EventAccumulator(str(trained_run), size_guidance={"scalars": 0})
    events.Reload()
    iou_steps = [e.step for e in events.Scalars("val/iou")]
    map_events = events.Scalars("val/map")
    assert len(iou_steps) == 10  # every epoch
    assert [e.step for e in map_events] == [iou_steps[4], iou_steps[9]]  # map_every_n_epochs=5
    assert all(0.0 <= e.value <= 1.0 for e in map_events)
    assert len(events.Scalars("val/ap50")) == len(events.Scalars("val/n_merged")) == 2


def test_postprocess_and_test_split_overrides(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    ckpt = best_checkpoint(trained_run)
    record = evaluate(
        eval_config(
            ckpt,
            tmp_path / "eval",
            "split=test",
            f"data.source.test_root={synthetic_root}",
            "postprocess.split=watershed",
            "postprocess.threshold=0.4",
        )
    )
    assert record["split"] == "test" and record["n_images"] == 12
    assert record["test_root"] == str(synthetic_root) and record["split_file"] is None
    assert record["postprocess"]["split"] == "watershed"
    assert record["postprocess"]["threshold"] == 0.4
    assert record["postprocess"]["min_area"] == 10  # untouched keys keep the run's value
    assert {"test/loss", "test/iou", "test/map", "test/n_merged"} <= set(record)
    # Not the run's own settings (test data given, postprocessing changed): a digest-named file.
    beside = list(ckpt.parent.glob(f"{ckpt.stem}.test.*.eval.json"))
    assert len(beside) == 1 and json.loads(beside[0].read_text()) == record


def test_evals_with_other_postprocessing_keep_every_result_beside_the_checkpoint(
    trained_run: Path, tmp_path: Path
) -> None:
    ckpt = best_checkpoint(trained_run)
    own = evaluate(eval_config(ckpt, tmp_path / "own"))
    watershed = evaluate(eval_config(ckpt, tmp_path / "ws", "postprocess.split=watershed"))
    again = evaluate(eval_config(ckpt, tmp_path / "ws2", "postprocess.split=watershed"))

    plain = json.loads(ckpt.with_name(f"{ckpt.stem}.val.eval.json").read_text())
    assert (
        plain["postprocess"] == own["postprocess"] and plain["postprocess"]["split"] != "watershed"
    )
    digested = list(ckpt.parent.glob(f"{ckpt.stem}.val.*.eval.json"))
    assert len(digested) == 1  # the same settings twice: the same file, rewritten
    assert json.loads(digested[0].read_text())["postprocess"] == watershed["postprocess"]
    assert again["postprocess"] == watershed["postprocess"]


class NotAllowed:
    """Pickled into a file, this class cannot be loaded with weights_only=True."""


def test_bad_checkpoints_give_clear_errors(trained_run: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(CheckpointError, match=r"nope\.ckpt: checkpoint file not found"):
        load_run(missing)

    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.ckpt: not a PyTorch checkpoint"):
        load_run(text)

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.ckpt: not a Lightning checkpoint"):
        load_run(foreign)

    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "payload": NotAllowed()}, unsafe)
    with pytest.raises(
        CheckpointError, match=r"unsafe\.ckpt: refused: .*NotAllowed.*trust_checkpoint=true"
    ):
        load_run(unsafe)

    checkpoint = torch.load(best_checkpoint(trained_run), map_location="cpu", weights_only=True)
    del checkpoint["nuclei_config"]
    bare = tmp_path / "elsewhere" / "bare.ckpt"
    bare.parent.mkdir()
    torch.save(checkpoint, bare)
    with pytest.raises(CheckpointError, match=r"bare\.ckpt: holds no training configuration"):
        load_run(bare)
    # ... unless its run directory still has Hydra's copy of the config.
    stored = torch.load(best_checkpoint(trained_run), weights_only=True)["nuclei_config"]
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(stored), run_dir / ".hydra" / "config.yaml")
    torch.save(checkpoint, run_dir / "checkpoints" / "bare.ckpt")
    run = load_run(run_dir / "checkpoints" / "bare.ckpt")
    assert run.run_dir.path == run_dir and run.config.model == OmegaConf.create(stored["model"])

    with pytest.raises(EvaluationError, match="split must be one of"):
        evaluate(eval_config(best_checkpoint(trained_run), tmp_path / "e", "split=train"))


def test_main_exits_with_status_2_and_names_the_missing_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = eval_config(tmp_path / "missing.ckpt", tmp_path / "eval")
    with pytest.raises(SystemExit) as exited:
        main(cfg)  # hydra.main passes a given config straight through
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("nuclei-eval: ") and "missing.ckpt: checkpoint file not found" in err


def test_device_batch_size_and_output_are_the_shared_vocabulary(
    trained_run: Path, tmp_path: Path
) -> None:
    ckpt = best_checkpoint(trained_run)
    final = json.loads((trained_run / "metrics.json").read_text())
    out = tmp_path / "chosen"
    record = evaluate(
        eval_config(ckpt, tmp_path / "eval", "device=cpu", "batch_size=1", f"output={out}")
    )
    assert record["val/map"] == pytest.approx(final["val/map"], abs=1e-6)
    assert json.loads((out / "eval_metrics.json").read_text()) == record
    assert not (tmp_path / "eval" / "eval_metrics.json").exists()
    with pytest.raises(DeviceError, match="device=tpu: not a device; expected auto, cpu, cuda"):
        evaluate(eval_config(ckpt, tmp_path / "e", "device=tpu"))


def test_nuclei_eval_console_script_from_another_directory(
    trained_run: Path, tmp_path: Path
) -> None:
    ckpt = best_checkpoint(trained_run)
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [BIN / "nuclei-eval", f"ckpt_path={ckpt}", "progress_bar=false"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "map (DSB)" in done.stdout and "merged nuclei" in done.stdout
    (written,) = (tmp_path / "outputs" / "eval").glob("*/eval_metrics.json")
    final = json.loads((trained_run / "metrics.json").read_text())
    assert json.loads(written.read_text())["val/map"] == pytest.approx(final["val/map"], abs=1e-6)


def test_data_shifted_makes_the_shifted_set_the_test_split_and_keeps_the_run_s_data(
    tmp_path: Path,
) -> None:
    cfg = eval_config("run.ckpt", tmp_path / "eval", "data=shifted", f"paths.cache_dir={tmp_path}")
    assert chosen_split(cfg) == "test"
    assert chosen_split(eval_config("run.ckpt", tmp_path / "eval")) == "val"
    # Everything but the test folder is inherited from the training run (left at ???).
    assert OmegaConf.is_missing(cfg.data.size, "mode")
    assert OmegaConf.is_missing(cfg.data.intensity, "normalize")
    root = Path(cfg.data.source.test_root)  # resolving it generates the set, once
    assert root == cached_set_root(tmp_path, 134, 1000, "shifted")
    manifest = json.loads((root.parent / "manifest.json").read_text())
    assert manifest["profile"] == "shifted" and manifest["n_images"] == 134
    assert len(list(root.iterdir())) == 134


def test_data_heldout_is_a_test_set_of_the_training_profile_from_an_unused_seed(
    tmp_path: Path,
) -> None:
    cfg = eval_config("run.ckpt", tmp_path / "eval", "data=heldout")
    assert chosen_split(cfg) == "test"
    assert OmegaConf.is_missing(cfg.data.size, "mode")  # the run's data, but the test folder
    source = OmegaConf.to_container(cfg.data.source, resolve=False)
    # the default profile, seed 2000: neither the training set's (0) nor the shifted set's (1000)
    assert source["test_root"] == "${nuclei.synthetic_set:${paths.cache_dir},default,2000,134}"


def test_test_time_augmentation_is_scored_recorded_and_kept_apart(
    trained_run: Path, tmp_path: Path
) -> None:
    ckpt = best_checkpoint(trained_run)
    plain = evaluate(eval_config(ckpt, tmp_path / "plain"))
    flips = evaluate(eval_config(ckpt, tmp_path / "flips", "tta=flips"))
    assert plain["tta"] == "none" and flips["tta"] == "flips"
    assert flips["n_images"] == plain["n_images"]
    assert flips["val/loss"] != plain["val/loss"]  # the averaged network was scored
    beside = list(ckpt.parent.glob(f"{ckpt.stem}.val.*.eval.json"))
    assert any(json.loads(p.read_text())["tta"] == "flips" for p in beside)
    with pytest.raises(EvaluationError, match="tta must be one of"):
        evaluate(eval_config(ckpt, tmp_path / "bad", "tta=mirror"))


def test_eval_given_an_output_keeps_its_log_and_config_there(
    trained_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuclei.cli.evaluate",
            f"ckpt_path={best_checkpoint(trained_run)}",
            f"output={out}",
            "progress_bar=false",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "eval_metrics.json").is_file() and (out / "evaluate.log").is_file()
    (config,) = out.glob(".nuclei-eval/*/config.yaml")
    assert OmegaConf.load(config).output == str(out)
    assert not (tmp_path / "outputs").exists()
