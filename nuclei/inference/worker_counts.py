"""How many helper processes a prediction starts, from the cores this process may use
(:func:`nuclei.cores.available_cores`: a SLURM job's share, not the node's count)."""

from __future__ import annotations

from nuclei.cores import available_cores


def default_postprocess_workers() -> int:
    """Processes for postprocessing: one per core, at most 4. At their lower priority they
    take what the network leaves; when it waits for them, every core finishes images (on 2
    cores, 2 workers instead of 1 took nuclei-predict from 44.6 to 40.1 s on 16 images)."""
    return max(1, min(4, available_cores()))


def default_decode_workers() -> int:
    """DataLoader workers decoding images: one per four cores, at least one, at most four."""
    return max(1, min(4, available_cores() // 4))
