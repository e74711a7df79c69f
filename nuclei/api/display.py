"""Look at a segmentation in a notebook: nucleus outlines over the image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nuclei.inference.images import as_network_image
from nuclei.inference.writers import overlay_outlines

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def show(
    image: np.ndarray,
    labels: np.ndarray,
    ax: Axes | None = None,
    channel: int | None = None,
) -> Axes:
    """Draw ``labels``' outlines over ``image`` (as the network saw it) on a matplotlib Axes.

    ``ax`` defaults to a new figure's; ``channel`` picks a plane of a stack as in
    :meth:`nuclei.Segmenter.segment`. Returns the Axes, titled with the number of nuclei.
    """
    import matplotlib.pyplot as plt  # here: importing pyplot picks a backend

    picture = as_network_image(image, channel)
    labels = np.asarray(labels)
    if labels.shape != picture.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match the image {picture.shape[:2]}")
    if ax is None:
        _, ax = plt.subplots()
    ax.imshow(overlay_outlines(picture, labels))
    count = np.unique(labels[labels > 0]).size
    ax.set_title(f"{count} nuclei")
    ax.set_axis_off()
    return ax
