"""A trained run as one object a notebook uses: arrays in, probabilities, labels, tables out.

>>> seg = Segmenter.from_checkpoint("outputs/train/<run>/checkpoints/last.ckpt", device="cpu")
>>> labels = seg.segment(image)  # (H, W) uint32, 0 background

``nuclei-predict`` runs the same object over files (:meth:`Segmenter.segment_files`), so an
array and the file it was saved to get the same labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from nuclei.data.config import IntensityConfig, as_config
from nuclei.inference.averaging import TestTimeAugmented, tta_transforms
from nuclei.inference.image_files import as_network_image
from nuclei.inference.measure import measure_nuclei
from nuclei.inference.network_probe import Forward
from nuclei.inference.output_files import ImageFileWriter
from nuclei.inference.probabilities import PredictionSettings, choose_size_mode, resolve_device
from nuclei.inference.segment import FileOptions, PredictionReport
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.runs.checkpoint import postprocess_of
from nuclei.runs.members import ensemble_task, load_members
from nuclei.runtime import default_decode_workers, default_postprocess_workers

log = logging.getLogger(__name__)


def prediction_settings(
    stored_data: Mapping[str, Any],
    size_mode: str | None = None,
    image_size: int | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    memory_budget: float | None = None,
) -> PredictionSettings:
    """How images meet the network: the training run's ``data.size`` (mode, default resize,
    and ``image_size``) unless ``size_mode`` or ``image_size`` are given, and its
    ``data.intensity`` normalisation (runs from before it existed: values / 255)."""
    stored_size = stored_data.get("size") or {}
    image_size = image_size or stored_size.get("image_size")
    mode = choose_size_mode(size_mode or stored_size.get("mode") or "resize", image_size)
    return PredictionSettings(
        size_mode=mode.name,
        image_size=int(image_size or 0),
        tile=None if tile is None else int(tile),
        overlap=None if overlap is None else int(overlap),
        batch_size=int(batch_size),
        device=device if isinstance(device, torch.device) else resolve_device(str(device)),
        intensity=as_config(IntensityConfig, stored_data.get("intensity")),
        memory_budget=memory_budget,
    )


class Segmenter:
    """A trained network with the way it was trained: size mode, target, postprocessing.

    Build one with :meth:`from_checkpoint`. Images are numpy arrays of any dtype, (H, W),
    (H, W, 1|3|4), or one plane of a stack chosen with ``channel=``; they are normalised
    exactly as ``nuclei-predict`` reads files (:func:`nuclei.inference.image_files.
    as_network_image`).
    """

    def __init__(
        self,
        net: Forward,
        settings: PredictionSettings,
        postprocess: PostprocessConfig | None = None,
        target: str = "binary",
        checkpoint_path: Path | None = None,
        tuned_postprocess_file: Path | None = None,
        ensemble: Sequence[Path] = (),
    ) -> None:
        self.net = net
        #: Every member's checkpoint when ``net`` averages several (an ensemble), else empty.
        self.ensemble = tuple(ensemble)
        self.settings = settings
        self.postprocess = postprocess or PostprocessConfig()
        self.target = target
        self.checkpoint_path = checkpoint_path
        self.tuned_postprocess_file = tuned_postprocess_file

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | Sequence[str | Path],
        device: str | torch.device = "auto",
        trust_checkpoint: bool = False,
        postprocess: Mapping[str, Any] | DictConfig | None = None,
        tuned_postprocess: bool = True,
        batch_size: int = 8,
        tile: int | None = None,
        overlap: int | None = None,
        size_mode: str | None = None,
        image_size: int | None = None,
        tta: str = "none",
        memory_budget: float | None = None,
    ) -> Segmenter:
        """Load a ``nuclei-train`` checkpoint with its run's size mode, target and
        postprocessing (tuned by ``nuclei-tune`` when ``tuned_postprocess`` and present).

        ``path`` may also be a run folder (its best checkpoint), or several checkpoints (a
        list, or a sweep folder: each run's best one), whose probabilities are averaged (an
        ensemble: they must share size mode, normalisation and target; the first one's
        postprocessing is used).

        ``postprocess`` overrides single settings (``{"threshold": 0.4}``); ``size_mode`` and
        ``image_size`` override the run's own. Crop mode runs whole images when their forward
        fits ``memory_budget`` (bytes; None: the device's default), else the largest windows
        that fit, overlapping by the network's receptive field; ``tile`` and ``overlap`` fix
        the windows instead.
        ``tta`` (``none``, ``flips``, ``d4``) averages the probabilities over flipped or
        rotated copies of each image (:mod:`nuclei.inference.averaging`). Raises
        :class:`nuclei.runs.checkpoint.CheckpointError` for an unreadable checkpoint,
        ValueError for a bad setting.
        """
        runs = load_members(path, trust=trust_checkpoint)
        run = runs[0]
        settings = prediction_settings(
            run.config.data, size_mode, image_size, tile, overlap, batch_size, device, memory_budget
        )
        tta_transforms(tta)  # refuse an unknown mode before loading anything else
        settings.tta = tta
        if postprocess is not None and not isinstance(postprocess, DictConfig):
            postprocess = OmegaConf.create(dict(postprocess))  # keys left ??? keep the run's
        chosen = postprocess_of(run, postprocess, tuned_postprocess)
        tuned = run.run_dir.tuned_postprocess_file
        net = ensemble_task(runs).to(settings.device)
        return cls(
            TestTimeAugmented(net, tta) if tta != "none" else net,
            settings,
            chosen,
            target=run.target,
            checkpoint_path=run.checkpoint_path,
            tuned_postprocess_file=tuned if tuned_postprocess and tuned.is_file() else None,
            ensemble=[r.checkpoint_path for r in runs] if len(runs) > 1 else (),
        )

    @property
    def images_per_batch(self) -> int:
        """Images per forward pass (resize mode batches images; crop mode batches tiles)."""
        return self.settings.images_per_batch

    def batch_probabilities(
        self, images: Sequence[np.ndarray], channel: int | None = None
    ) -> list[np.ndarray]:
        """:meth:`probabilities` of several images, batched through the network."""
        inputs = [as_network_image(image, channel) for image in images]
        return self.settings.probabilities(self.net, inputs)

    def probabilities(self, image: np.ndarray, channel: int | None = None) -> np.ndarray:
        """Probability maps (C, H, W) float32 at the image's own size; channel 0 is the
        foreground, a border or distance model adds its second channel."""
        return self.batch_probabilities([image], channel)[0]

    def instances(self, probabilities: np.ndarray) -> np.ndarray:
        """Instance labels (H, W) uint32 (0 background, 1..N) from :meth:`probabilities`."""
        labels = instances_from_maps(probabilities, self.postprocess, self.target)
        return labels.astype(np.uint32)

    def segment(self, image: np.ndarray, channel: int | None = None) -> np.ndarray:
        """Instance labels (H, W) uint32 of an image: 0 background, nuclei 1..N."""
        return self.instances(self.probabilities(image, channel))

    def measure(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        properties: Sequence[str] | None = None,
        pixel_size_um: float | None = None,
        probabilities: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """One row per nucleus: scikit-image ``regionprops_table`` columns, intensities on
        the raw values of ``image``, not the network's 8-bit copy; the rows ``nuclei-predict``
        writes to ``nuclei.csv`` for the file the image was read from.

        ``image``: (H, W), (H, W, C) or (C, H, W) (all channels measured). Grey or colour,
        the intensity columns are the same: ``intensity_mean`` on the grey value (a colour
        image's channel mean) and ``intensity_mean-0``, ``-1``, ``-2`` per channel (a grey
        image's value in each). ``probabilities`` (from :meth:`probabilities`) adds
        ``probability_mean``; ``pixel_size_um`` adds µm and µm² columns. See
        :func:`nuclei.inference.measure.measure_nuclei`.
        """
        image = np.asarray(image)
        labels = np.asarray(labels)
        if image.ndim == 3 and image.shape[:2] != labels.shape and image.shape[1:] == labels.shape:
            image = np.moveaxis(image, 0, -1)  # a (C, H, W) stack: measure every plane
        return measure_nuclei(
            image,
            labels,
            probabilities=probabilities,
            properties=properties,
            pixel_size_um=pixel_size_um,
        )

    def segment_files(
        self,
        source: str | Path,
        output: str | Path,
        overwrite: bool = False,
        progress: bool = True,
        **files: Any,
    ) -> PredictionReport:
        """Segment an image file or folder into ``output``, as ``nuclei-predict`` does.

        Writes each image's ``<id>_mask.png``, ``<id>_labels.tif``, ``<id>_overlay.png`` and
        the folder's ``nuclei.csv``, ``summary.csv``, ``submission.csv``,
        ``predict_args.json``; ``files`` are :class:`~nuclei.inference.output_files.
        ImageFileWriter` options (``overlay``, ``pixel_size_um``, ``properties``,
        ``save_probabilities``, ``roi_zip``). Images already complete in ``output`` are
        skipped unless ``overwrite``. An ``output`` overlapping ``source``, or in use by another
        prediction, is refused (a ValueError) before anything is written. Returns the report
        (images, nuclei, failures).
        """
        from nuclei.api.file_prediction import segment_folder  # it needs this class

        if "properties" in files and files["properties"] is not None:
            files["properties"] = tuple(files["properties"])
        writer = ImageFileWriter(Path(output), **files)
        options = FileOptions(
            overwrite=overwrite,
            decode_workers=default_decode_workers(),
            postprocess_workers=default_postprocess_workers(),
            progress=progress,
        )
        return segment_folder(self, source, writer, options)

    def describe(self) -> dict[str, Any]:
        """What decides this segmenter's output: checkpoint, target, sizes, postprocessing."""
        return {
            "checkpoint": str(self.checkpoint_path) if self.checkpoint_path else None,
            **({"ensemble": [str(p) for p in self.ensemble]} if self.ensemble else {}),
            "target": self.target,
            "settings": {**asdict(self.settings), "device": str(self.settings.device)},
            "postprocess": asdict(self.postprocess),
            "tuned_postprocess_file": (
                str(self.tuned_postprocess_file) if self.tuned_postprocess_file else None
            ),
        }

    def __repr__(self) -> str:
        source = self.checkpoint_path or "an in-memory network"
        if self.ensemble:
            source = f"an ensemble of {len(self.ensemble)} checkpoints"
        return f"Segmenter({source}: {self.settings.describe()}, target {self.target})"
