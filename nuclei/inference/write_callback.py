"""The Lightning prediction writer of ``nuclei-predict``: each predicted batch to files.

:class:`WriteSegmentedImages` receives every batch :class:`~nuclei.inference.map_module.
ProbabilityMaps` predicted, hands the images to a :class:`~nuclei.inference.postprocess_pool.
PostprocessPool` (so postprocessing overlaps the network) and records each unreadable image's
error. It runs in every process of a DDP prediction, on that process's share of the images.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter
from rich.progress import Progress, TaskID

from nuclei.inference.image_records import ImageRecord, save_failure
from nuclei.inference.map_module import PredictedImage
from nuclei.inference.postprocess_pool import Finishing, PostprocessPool
from nuclei.progress import progress_bar

log = logging.getLogger(__name__)


class WriteSegmentedImages(BasePredictionWriter):
    """Postprocesses and writes every predicted image; counts nuclei and failures.

    ``workers`` processes postprocess (0: in this process); ``batch``: images per predicted
    batch, which wait for them without holding up the network.
    """

    def __init__(
        self, finishing: Finishing, workers: int, progress: bool = True, batch: int = 1
    ) -> None:
        super().__init__(write_interval="batch")
        self.finishing = finishing
        self.workers = workers
        self.batch = batch
        self.progress = progress
        #: This process's images written, nuclei found and failures (file -> error).
        self.written: list[str] = []
        self.nuclei = 0
        self.failures: dict[str, str] = {}
        self._pool: PostprocessPool | None = None
        self._bar: Progress | None = None
        self._job: TaskID | None = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the worker processes and, in the first process, the progress bar."""
        self._pool = PostprocessPool(self.finishing, self.workers, self._done, self.batch)
        self._bar = progress_bar(self.progress and trainer.is_global_zero, show_current=True)
        self._bar.start()
        self._job = self._bar.add_task("Segmenting", total=_images_of(trainer), current="")

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: list[PredictedImage],
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Queue each predicted image for postprocessing; record the unreadable ones."""
        assert self._pool is not None
        for predicted in prediction:
            loaded = predicted.loaded
            if predicted.maps is None:
                error = loaded.error or f"{loaded.path}: no prediction"
                self.failures[str(loaded.path)] = error
                save_failure(
                    self.finishing.writer.output_dir, loaded.image_id, str(loaded.path), error
                )
                log.warning("Skipped: %s", error)
                self._advance("")
            else:
                self._pool.submit(loaded, predicted.maps)

    def _done(self, record: ImageRecord) -> None:
        """One image written: count it and move the bar."""
        self.written.append(record.image_id)
        self.nuclei += record.count
        name = record.image_id if len(record.image_id) <= 20 else record.image_id[:19] + "…"
        self._advance(f"{name}: {record.count} nuclei")

    def _advance(self, current: str) -> None:
        if self._bar is not None and self._job is not None:
            self._bar.update(self._job, advance=1, current=current)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Wait for the images still being postprocessed, then stop the workers."""
        if self._pool is not None:
            self._pool.drain()
        self._stop(cancel=False)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Stop the workers without waiting for queued images (they are redone next run)."""
        self._stop(cancel=True)

    def _stop(self, cancel: bool) -> None:
        if self._pool is not None:
            self._pool.close(cancel=cancel)
            self._pool = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _images_of(trainer: L.Trainer) -> int | None:
    """How many images this process predicts (its share of the data loaders' samplers)."""
    loaders = trainer.predict_dataloaders
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    try:
        return sum(len(loader.sampler) for loader in loaders)
    except TypeError:
        return None
