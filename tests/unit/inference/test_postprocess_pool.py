"""Postprocessing in worker processes gives what it gives in the calling process."""

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from nuclei.inference.image_files import LoadedImage
from nuclei.inference.output_files import ImageFileWriter
from nuclei.inference.output_folder import ImageRecord
from nuclei.inference.postprocess_pool import Finishing, PostprocessPool, start_workers
from nuclei.inference.segment import ImageFilesDataModule
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.runtime import HELPER_NICENESS


def blobs(seed: int) -> tuple[LoadedImage, np.ndarray]:
    """An image with three bright squares and its (1, H, W) probability map."""
    rng = np.random.default_rng(seed)
    maps = rng.uniform(0.0, 0.3, (1, 40, 50)).astype(np.float32)
    for y, x in ((5, 5), (20, 30), (28, 8)):
        maps[0, y : y + 8, x : x + 8] = 0.9
    image = np.repeat((maps[0, ..., None] * 255).astype(np.uint8), 3, axis=-1)
    return LoadedImage(f"img{seed}", Path(f"/in/img{seed}.png"), raw=image, image=image), maps


def finish_all(out: Path, workers: int) -> list[ImageRecord]:
    done: list[ImageRecord] = []
    finishing = Finishing(PostprocessConfig(), "binary", ImageFileWriter(out))
    pool = PostprocessPool(finishing, workers, done.append)
    try:
        for seed in range(5):  # more than batch + 2 x workers (3) wait: submit blocks
            pool.submit(*blobs(seed))
        pool.drain()
    finally:
        pool.close()
    return done


def test_a_worker_process_writes_the_files_the_calling_process_writes(tmp_path: Path) -> None:
    inline = finish_all(tmp_path / "inline", workers=0)
    pooled = finish_all(tmp_path / "pooled", workers=1)
    assert sorted(r.image_id for r in pooled) == [r.image_id for r in inline]
    assert {r.count for r in inline} == {3}
    for record in inline:
        for name in record.files:
            assert (tmp_path / "pooled" / name).read_bytes() == (
                tmp_path / "inline" / name
            ).read_bytes()


def test_an_error_in_a_worker_reaches_the_caller(tmp_path: Path) -> None:
    finishing = Finishing(PostprocessConfig(), "binary", ImageFileWriter(tmp_path))
    pool = PostprocessPool(finishing, 1, lambda record: None)
    loaded, _ = blobs(0)
    try:
        pool.submit(loaded, np.zeros((1, 3, 3, 3), np.float32))  # not (C, H, W)
        with pytest.raises(ValueError):
            pool.drain()
    finally:
        pool.close(cancel=True)


def test_a_negative_worker_count_is_refused(tmp_path: Path) -> None:
    finishing = Finishing(PostprocessConfig(), "binary", ImageFileWriter(tmp_path))
    with pytest.raises(ValueError, match="workers must be >= 0"):
        PostprocessPool(finishing, -1, lambda record: None)


def test_workers_run_their_numeric_libraries_on_one_thread_each() -> None:
    before = os.environ.get("OMP_NUM_THREADS")
    executor = start_workers(1)
    try:
        seen = executor.submit(os.getenv, "OMP_NUM_THREADS").result()
    finally:
        executor.shutdown()
    assert seen == "1"
    assert os.environ.get("OMP_NUM_THREADS") == before  # the calling process keeps its own


def test_workers_and_decoders_run_at_a_lower_priority(tmp_path: Path) -> None:
    executor = start_workers(1)
    try:
        worker_niceness = executor.submit(os.nice, 0).result()
    finally:
        executor.shutdown()
    expected = min(19, os.nice(0) + HELPER_NICENESS)  # 19: the lowest priority there is
    assert worker_niceness == expected
    assert os.nice(0) < expected  # the calling process (the network's) keeps its own
    loader = ImageFilesDataModule([], 10**6, 1, workers=1).predict_dataloader()
    fork = multiprocessing.get_context("fork")  # as the DataLoader starts its workers
    with fork.Pool(1, initializer=loader.worker_init_fn, initargs=(0,)) as decoders:
        assert decoders.apply(os.nice, (0,)) == expected
