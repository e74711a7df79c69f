"""CPU time of the work around the network in ``nuclei-predict``: decoding and finishing.

:func:`time_finishing` decodes each image file as the prediction's DataLoader workers do and
finishes it (postprocessing, measurements, files, record) as its postprocessing workers do,
one image after another in this process, and reports CPU seconds per image.
:func:`cpu_bound_ratio` turns them into the best throughput the whole prediction can reach
against the network alone when they share the machine's cores.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nuclei.benchmarks.large_image import significant
from nuclei.inference.image_files import LoadedImage, read_for_segmenting
from nuclei.inference.postprocess_pool import Finishing, finish_image


def time_finishing(
    paths: Sequence[Path], maps: Sequence[np.ndarray], finishing: Finishing
) -> dict[str, Any]:
    """CPU seconds per image of decoding ``paths`` and of finishing them with ``maps``."""
    decode_s = finish_s = 0.0
    for path, probabilities in zip(paths, maps, strict=True):
        started = time.process_time()
        raw, image = read_for_segmenting(path, max_pixels=2**40)
        decoded = time.process_time()
        finish_image(finishing, LoadedImage(path.stem, path, raw=raw, image=image), probabilities)
        decode_s += decoded - started
        finish_s += time.process_time() - decoded
    count = max(len(paths), 1)
    return {
        "decode_cpu_s_per_image": significant(decode_s / count),
        "finish_cpu_s_per_image": significant(finish_s / count),
    }


def cpu_bound_ratio(figures: dict[str, Any], cores: int) -> float:
    """The most the whole prediction's throughput can be against the network alone when
    decoding and finishing share ``cores`` with the network: the network's wall time over
    the time all their CPU work needs on those cores (at most 1)."""
    network_s = figures["network_s_per_image"]
    cpu_s = (
        figures["network_cpu_s_per_image"]
        + figures["decode_cpu_s_per_image"]
        + figures["finish_cpu_s_per_image"]
    )
    return significant(min(1.0, network_s / (cpu_s / cores)))
