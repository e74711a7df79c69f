"""Per-nucleus measurements on the raw intensities of an image, one table row per nucleus.

:func:`measure_nuclei` is scikit-image's ``regionprops_table`` with its column names
(``area``, ``centroid-0``, ``bbox-3``, ``intensity_mean``...) plus three of our own:
``intensity_integrated`` (the sum over the nucleus), ``touches_border`` and
``probability_mean``. Intensities are the values of the array given, in its own dtype: pass
the file's pixels (:func:`nuclei.data.sources.io.read_raw_image`), not the network's
8-bit copy. With ``pixel_size_um``, lengths gain a ``_um`` and areas a ``_um2`` column.

Every image gets the same intensity columns, so one table holds grey and colour images
alike: ``intensity_mean`` (and ``_max``, ``_min``, ``_integrated``, ``_std``) on the image's
grey value, then ``intensity_mean-0``, ``-1``, ``-2`` on each channel. A grey image is the
three equal channels it is stored as (its value in every column); a colour image's grey
value is the mean of its channels at each pixel. An RGBA image's alpha is dropped, and an
RGB(A) one whose colour channels are equal is grey, as :func:`~nuclei.data.sources.io.
read_raw_image` reads such a file. A stack of another channel count (the API's (C, H, W))
gets one numbered column per channel.

Most columns come from :mod:`nuclei.inference.label_statistics` (every nucleus at once, the
same values); the others (``extent``, ``feret_diameter_max``...) from ``regionprops_table``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from nuclei.inference.label_statistics import (
    INTENSITY_PROPERTIES,
    VECTORISED_PROPERTIES,
    label_statistics,
)

#: Measured unless ``properties=`` says otherwise (``probability_mean`` only with probabilities).
DEFAULT_PROPERTIES = (
    "label",
    "area",
    "perimeter",
    "equivalent_diameter_area",
    "axis_major_length",
    "axis_minor_length",
    "orientation",
    "eccentricity",
    "solidity",
    "centroid",
    "bbox",
    "intensity_mean",
    "intensity_max",
    "intensity_min",
    "intensity_integrated",
    "touches_border",
    "probability_mean",
)
#: Also known to ``properties=``, measured only when asked for.
OPTIONAL_PROPERTIES = (
    "area_convex",
    "area_filled",
    "extent",
    "feret_diameter_max",
    "euler_number",
    "intensity_std",
)
KNOWN_PROPERTIES = DEFAULT_PROPERTIES + OPTIONAL_PROPERTIES
_NEEDS_INTENSITY = ("intensity_std",)  # of those regionprops measures
#: Properties measured on the grey value and on each channel (see the module's docstring).
_PER_CHANNEL = (*INTENSITY_PROPERTIES, *_NEEDS_INTENSITY)
#: The channels a grey image is reported in: those of the RGB image it is stored as.
GREY_CHANNELS = 3
_INTEGER_COLUMNS = ("label", "area", "area_convex", "area_filled", "euler_number", "bbox")
#: Column -> its physical twin, scaled by the pixel size (lengths) or its square (areas).
_LENGTHS_UM = {
    "perimeter": "perimeter_um",
    "equivalent_diameter_area": "equivalent_diameter_um",
    "axis_major_length": "axis_major_length_um",
    "axis_minor_length": "axis_minor_length_um",
    "feret_diameter_max": "feret_diameter_max_um",
    "centroid-0": "centroid-0_um",
    "centroid-1": "centroid-1_um",
}
_AREAS_UM2 = {
    "area": "area_um2",
    "area_convex": "area_convex_um2",
    "area_filled": "area_filled_um2",
}


def select_properties(properties: Sequence[str] | None = None) -> tuple[str, ...]:
    """The properties to measure, ``label`` first; unknown names are refused with the list."""
    if properties is None:
        return DEFAULT_PROPERTIES
    if isinstance(properties, str):
        properties = [properties]
    unknown = [name for name in properties if name not in KNOWN_PROPERTIES]
    if unknown:
        raise ValueError(
            f"unknown nucleus properties {unknown}; known: {', '.join(KNOWN_PROPERTIES)}"
        )
    return tuple(dict.fromkeys(["label", *properties]))


def _intensity_image(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` checked against the labels: (H, W) grey or (H, W, C) colour, an RGBA's alpha
    dropped and an RGB with equal channels (or an (H, W, 1)) made (H, W)."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[:2] != shape:
        raise ValueError(
            f"image of shape {image.shape} does not match labels {shape}: "
            "expected (H, W) or (H, W, C) with the labels' (H, W)"
        )
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image must be numeric, got dtype {image.dtype}")
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]  # (H, W, 4) is RGBA, as everywhere in the package
    if image.ndim == 3 and image.shape[-1] == 3 and (image == image[..., :1]).all():
        image = image[..., :1]  # a grey image stored as RGB
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return image


def _measured_planes(intensity: np.ndarray) -> np.ndarray:
    """What is measured: a grey image itself; a colour one's grey value (the per-pixel mean of
    its channels) and then its channels, as one float64 (H, W, 1 + C) stack."""
    if intensity.ndim == 2:
        return intensity
    grey = intensity.mean(axis=2, dtype=np.float64)
    return np.concatenate([grey[..., None], intensity.astype(np.float64)], axis=2)


def _fixed_intensity_names(table: dict[str, np.ndarray], colour: bool) -> dict[str, np.ndarray]:
    """Intensity columns under their fixed names: plain for the grey value, ``-0``, ``-1``...
    per channel. A colour image's planes were (grey, channel 0, 1...); a grey image's plain
    columns are repeated for each of its :data:`GREY_CHANNELS` channels."""
    named: dict[str, np.ndarray] = {}
    for name, values in table.items():
        prop, _, plane = name.partition("-")
        if prop not in _PER_CHANNEL:
            named[name] = values
        elif colour:
            channel = int(plane) - 1
            named[prop if channel < 0 else f"{prop}-{channel}"] = values
        else:
            named[name] = values
            named.update({f"{name}-{c}": values for c in range(GREY_CHANNELS)})
    return named


def _foreground(probabilities: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The (H, W) foreground probability: the map itself, or channel 0 of a (C, H, W) one."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 3:
        probabilities = probabilities[0]
    if probabilities.shape != shape:
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not match labels {shape}"
        )
    return probabilities


def _checked_labels(labels: np.ndarray) -> np.ndarray:
    """A 2-D, non-negative integer label image."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 2-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative (0 is background)")
    return labels


def _touches_border(table: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Whether each nucleus' bounding box reaches the image's edge."""
    height, width = shape
    return (
        (table["bbox-0"] == 0)
        | (table["bbox-1"] == 0)
        | (table["bbox-2"] == height)
        | (table["bbox-3"] == width)
    )


def _in_order(columns: dict[str, np.ndarray], wanted: tuple[str, ...]) -> pd.DataFrame:
    """The columns of each wanted property, in the order of ``wanted``."""
    ordered = {
        name: values
        for prop in wanted
        for name, values in columns.items()
        if name == prop or name.startswith(f"{prop}-")
    }
    frame = pd.DataFrame(ordered)
    for name in frame.columns:
        if name.split("-")[0] in _INTEGER_COLUMNS:
            frame[name] = frame[name].astype(np.int64)
    return frame


def _with_physical_units(frame: pd.DataFrame, pixel_size_um: float) -> pd.DataFrame:
    """Each length column followed by its µm twin, each area by its µm² twin."""
    if not (isinstance(pixel_size_um, Real) and math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um!r}")
    size = float(pixel_size_um)
    columns: dict[str, pd.Series] = {}
    for name in frame.columns:
        columns[name] = frame[name]
        if name in _LENGTHS_UM:
            columns[_LENGTHS_UM[name]] = frame[name] * size
        elif name in _AREAS_UM2:
            columns[_AREAS_UM2[name]] = frame[name] * size**2
    return pd.DataFrame(columns)


def measure_nuclei(
    image: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None = None,
    properties: Sequence[str] | None = None,
    pixel_size_um: float | None = None,
) -> pd.DataFrame:
    """One row per nucleus of ``labels``, intensities on ``image``'s own values.

    ``image``: (H, W) or (H, W, C) of any numeric dtype (an (H, W, 4) image is RGBA: its alpha
    is dropped); its grey value and each channel are measured under fixed column names (see
    the module's docstring). ``probabilities``: the (H, W) foreground probability, or a
    (C, H, W) map whose channel 0 is. ``properties``: names from :data:`KNOWN_PROPERTIES`
    (``label`` is always included). ``pixel_size_um``: the side of a square pixel, adding µm
    and µm² columns.
    """
    wanted = select_properties(properties)
    if probabilities is None:
        if properties is not None and "probability_mean" in wanted:
            raise ValueError("probability_mean needs the probabilities= map")
        wanted = tuple(p for p in wanted if p != "probability_mean")
    labels = _checked_labels(labels)
    intensity = _intensity_image(image, labels.shape)
    planes = _measured_planes(intensity)
    foreground = None if probabilities is None else _foreground(probabilities, labels.shape)

    vectorised = [p for p in wanted if p in VECTORISED_PROPERTIES]
    if "touches_border" in wanted and "bbox" not in vectorised:
        vectorised.append("bbox")
    table = label_statistics(labels, tuple(vectorised), planes, foreground)
    per_region = [p for p in wanted if p not in VECTORISED_PROPERTIES and p != "touches_border"]
    if per_region:
        table.update(
            regionprops_table(
                labels,
                intensity_image=planes if set(per_region) & set(_NEEDS_INTENSITY) else None,
                properties=["label", *per_region],
            )
        )
    if "touches_border" in wanted:
        table["touches_border"] = _touches_border(table, labels.shape)
    frame = _in_order(_fixed_intensity_names(table, colour=intensity.ndim == 3), wanted)
    return frame if pixel_size_um is None else _with_physical_units(frame, pixel_size_um)
