"""Random states in every checkpoint, so that a resumed run continues exactly.

:class:`RandomStateCheckpoint` stores the python, numpy, torch and augmentation generators
with each checkpoint and puts them back on resume: on the CPU with
``data.loader.num_workers=0`` a resumed run draws the same shuffles and augmentations as one
that was never stopped.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

#: Checkpoint entry holding the random-number generator states.
RNG_KEY = "nuclei_rng_states"


def _train_transform(trainer: L.Trainer) -> Any:
    """The training augmentation (an albumentations ``Compose``) of the data module, if any."""
    dataset = getattr(trainer.datamodule, "train_dataset", None)
    return getattr(dataset, "transform", None)


def _augmentation_nodes(transform: Any) -> list[Any]:
    """An albumentations pipeline and every transform in it, depth first.

    With ``Compose(seed=...)`` each transform holds its own numpy and python generators
    (seeded alike), so each one's state must be saved, not only the pipeline's.
    """
    if transform is None or not hasattr(transform, "py_random"):
        return []
    nodes = [transform]
    for child in getattr(transform, "transforms", []):
        nodes += _augmentation_nodes(child)
    return nodes


class RandomStateCheckpoint(Callback):
    """Save the python, numpy, torch and augmentation generators with each checkpoint and
    restore them on resume: shuffling and augmentation continue as if never stopped."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Record the generator states in the checkpoint (plain types: weights_only loads)."""
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        states: dict[str, Any] = {
            "python": random.getstate(),
            "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
        }
        states["augmentation"] = [
            [node.random_generator.bit_generator.state, node.py_random.getstate()]
            for node in _augmentation_nodes(_train_transform(trainer))
        ]
        checkpoint[RNG_KEY] = states

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Any] | None = None

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Keep the recorded states to put back when training starts (see on_train_start)."""
        self._pending = checkpoint.get(RNG_KEY)
        if not self._pending:
            log.warning("The checkpoint holds no random states: the resumed run will differ")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the recorded states back once the sanity check and loader setup are done."""
        states, self._pending = self._pending, None
        if not states:
            return
        random.setstate(_as_tuple(states["python"]))
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(states["torch"])
        # Lightning (2.6) makes the first epoch's loader iterator in FitLoop.setup_data, before
        # this hook, and every later one at its epoch's start; making one draws a base seed
        # from torch's generator. Draw it again from the restored state, as an uninterrupted
        # run did for this epoch, so the sampler's shuffle draw that follows is the same.
        torch.empty((), dtype=torch.int64).random_()
        nodes = _augmentation_nodes(_train_transform(trainer))
        saved = states.get("augmentation", [])
        if len(saved) != len(nodes):
            log.warning("The augmentation changed since the checkpoint: its random state is lost")
            return
        for node, (numpy_state, python_state) in zip(nodes, saved, strict=True):
            node.random_generator.bit_generator.state = numpy_state
            node.py_random.setstate(_as_tuple(python_state))


def _as_tuple(state: Any) -> tuple:
    """A ``random.getstate()`` value, which checkpoint loading may have turned into lists."""
    return tuple(tuple(part) if isinstance(part, list) else part for part in state)
