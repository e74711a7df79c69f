"""A run's validation figures are the figures of nuclei-predict's files, at each image's size.

For a small run in each size mode, on bright square nuclei in images of several sizes (none
of them the 64 px the resize-mode network sees), the validation split's images are segmented by
``nuclei-predict`` with the run's best checkpoint; pooled foreground IoU and mean DSB2018 map
computed from the written label images against the true labels must equal the run's own
``metrics.json`` within 0.01.
"""

import json
import shutil
from pathlib import Path

import pytest
import tifffile
from support.configs import predict_config
from support.samples import square_labels, write_kaggle

from nuclei.cli.predict import predict
from nuclei.cli.train import train
from nuclei.data.decode import read_sample
from nuclei.data.sources.layouts import scan_folder
from nuclei.metrics.label_images import label_image_scores

pytestmark = pytest.mark.slow  # run by `make test-slow` and .ci/run

SHAPES = [(96, 130), (120, 90), (150, 150), (80, 112)]


@pytest.fixture(scope="module")
def squares_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 images of 4 sizes with 6 separate 12-pixel square nuclei each (Kaggle layout)."""
    labels = {
        f"sq{i:02d}": square_labels(SHAPES[i % len(SHAPES)], seed=i, n=6, side=12)
        for i in range(20)
    }
    return write_kaggle(tmp_path_factory.mktemp("squares") / "stage1_train", labels)


def scores_of_predicted_files(
    run_dir: Path, data_root: Path, work: Path
) -> tuple[dict[str, float], tuple[int, int]]:
    """Pooled foreground IoU and mean map of nuclei-predict's label files on the val split,
    and the largest validation image's shape (to show it was scored at its own size)."""
    summary = json.loads((run_dir / "metrics.json").read_text())
    val_ids = json.loads((run_dir / "split.json").read_text())["val"]
    folder = work / "val-images"
    folder.mkdir()
    samples = {s.sample_id: s for s in scan_folder(data_root, "auto", split="train").samples}
    for image_id in val_ids:
        shutil.copy(samples[image_id].image, folder / f"{image_id}.png")
    out = work / "predicted"
    predict(predict_config(Path(summary["best_checkpoint"]), folder, out))

    pairs = [
        (read_sample(samples[i])[1], tifffile.imread(out / f"{i}_labels.tif")) for i in val_ids
    ]
    return label_image_scores(pairs), max(truth.shape for truth, _ in pairs)


@pytest.mark.parametrize(
    "size_overrides",
    [
        ["data.size.mode=resize", "data.size.image_size=64"],
        ["data.size.mode=crop", "data.size.crop_size=64"],
    ],
    ids=["resize", "crop"],
)
def test_validation_metrics_equal_the_predicted_files_scores(
    train_config, squares_root: Path, tmp_path: Path, size_overrides: list[str]
) -> None:
    cfg = train_config(
        *size_overrides,
        f"data.source.root={squares_root}",
        "trainer.max_epochs=8",
        "optimizer.lr=1e-2",
        "task.map_every_n_epochs=4",
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    reported = json.loads((run_dir / "metrics.json").read_text())
    predicted, largest = scores_of_predicted_files(run_dir, squares_root, tmp_path)

    assert largest[0] > 64 and largest[1] > 64  # scored at the images' own size, not 64 px
    assert reported["val/map"] > 0.3 and predicted["iou"] > 0.5  # a model that finds nuclei
    assert reported["val/iou"] == pytest.approx(predicted["iou"], abs=0.01)
    assert reported["val/map"] == pytest.approx(predicted["map"], abs=0.01)
