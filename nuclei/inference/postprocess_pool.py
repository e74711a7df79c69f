"""Postprocessing and writing of segmented images in worker processes, beside the network.

Turning probability maps into nuclei, measuring them and encoding the files run on the CPU;
done in the process that runs the network they would leave it idle. :class:`PostprocessPool`
hands each image to a pool of processes (``spawn``ed: they share nothing with the network's
threads; each single-threaded, the pool being the parallelism) and lets at most
``2 x workers`` images wait beyond a batch of the network, so memory stays bounded while the
network runs ahead (and a batch handed over at once never makes the network wait).
``workers=0`` does the work in the calling process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from nuclei.inference.image_files import LoadedImage
from nuclei.inference.output_files import ImageFileWriter
from nuclei.inference.output_folder import ImageRecord
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.runtime import ONE_THREAD_EACH, child_environment, die_with_parent, lower_priority

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finishing:
    """How every image is finished: its postprocessing, the model's target and the files."""

    postprocess: PostprocessConfig
    target: str
    writer: ImageFileWriter


def finish_image(finishing: Finishing, loaded: LoadedImage, maps: np.ndarray) -> ImageRecord:
    """Postprocess one image's maps into instance labels and write its files and record."""
    labels = instances_from_maps(maps, finishing.postprocess, finishing.target)
    return finishing.writer.write(
        loaded.image_id,
        loaded.path,
        loaded.image,
        labels.astype(np.uint32),
        raw=loaded.raw,
        probabilities=maps,
    )


def start_worker(parent_pid: int) -> None:
    """Pool ``initializer``: end with the process ``parent_pid`` that started the worker
    (:mod:`nuclei.runtime`), at a lower CPU priority."""
    die_with_parent(parent_pid)
    lower_priority()


def _ready() -> None:
    """A no-op task: submitting ``workers`` of them starts every worker process."""


def start_workers(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned, single-threaded processes at a lower CPU priority
    (:mod:`nuclei.runtime`), all started now; they end with this process."""
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(os.getpid(),),
    )
    with child_environment(ONE_THREAD_EACH):
        wait([executor.submit(_ready) for _ in range(workers)])
    return executor


class PostprocessPool:
    """Finishes images in ``workers`` processes; ``on_done(record)`` is called in order of
    completion, in the calling process, by :meth:`submit` and :meth:`drain`.

    At most ``batch + 2 x workers`` images wait (``batch``: the images the network hands over
    at once): :meth:`submit` blocks beyond that.
    """

    def __init__(
        self,
        finishing: Finishing,
        workers: int,
        on_done: Callable[[ImageRecord], None],
        batch: int = 1,
    ) -> None:
        if workers < 0:
            raise ValueError(f"postprocess workers must be >= 0, got {workers}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.finishing = finishing
        self.workers = workers
        self.on_done = on_done
        self.most_waiting = batch + 2 * workers
        self._pending: list[Future[ImageRecord]] = []
        self._executor = start_workers(workers) if workers else None

    def submit(self, loaded: LoadedImage, maps: np.ndarray) -> None:
        """Finish one image (now when there are no workers); waits while too many wait."""
        if self._executor is None:
            self.on_done(finish_image(self.finishing, loaded, maps))
            return
        self._pending.append(self._executor.submit(finish_image, self.finishing, loaded, maps))
        self._collect(block=len(self._pending) > self.most_waiting)

    def _collect(self, block: bool) -> None:
        """Report finished images; with ``block``, wait for at least one first."""
        if block:
            wait(self._pending, return_when=FIRST_COMPLETED)
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            self.on_done(future.result())  # an error in a worker is raised here

    def drain(self) -> None:
        """Wait for every submitted image and report it."""
        while self._pending:
            self._collect(block=True)

    def close(self, cancel: bool = False) -> None:
        """Stop the workers (``cancel``: drop images not started, after an error)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel)
            self._executor = None
        self._pending = []
