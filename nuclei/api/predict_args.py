"""``predict_args.json``: what produced a prediction folder (checkpoint, settings, versions)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nuclei
from nuclei.api.segmenter import Segmenter
from nuclei.inference.writers import ImageFileWriter
from nuclei.runs.atomic import atomic_write_json
from nuclei.runs.provenance import package_versions

#: The record's file name, in the prediction's output folder.
PREDICT_ARGS_FILE = "predict_args.json"


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def predict_args(segmenter: Segmenter, **extra: Any) -> dict[str, Any]:
    """The record: the segmenter's settings, its checkpoint's path and SHA-256 (an
    ensemble's: each member's), versions."""
    record = segmenter.describe()
    checkpoint = segmenter.checkpoint_path
    record["checkpoint"] = {
        "path": str(checkpoint.resolve()) if checkpoint else None,
        "sha256": file_sha256(checkpoint) if checkpoint else None,
    }
    if segmenter.ensemble:
        record["ensemble"] = [
            {"path": str(path.resolve()), "sha256": file_sha256(path)}
            for path in segmenter.ensemble
        ]
    record["nuclei_version"] = nuclei.__version__
    record["packages"] = package_versions()
    return {**record, **extra}


def folder_predict_args(
    segmenter: Segmenter, source: str | Path, writer: ImageFileWriter, max_pixels: int
) -> dict[str, Any]:
    """:func:`predict_args` of a prediction of ``source`` by ``writer``: the input and output
    as absolute paths, the file options (overlay, calibration, measurements, extra files)
    and the pixel limit beyond which an image is refused."""
    files = {k: v for k, v in asdict(writer).items() if k != "output_dir"}
    return predict_args(
        segmenter,
        input=str(Path(source).expanduser().resolve()),
        output=str(writer.output_dir.expanduser().resolve()),
        files=files,
        max_pixels=max_pixels,
    )


def write_predict_args(output_dir: str | Path, segmenter: Segmenter, **extra: Any) -> Path:
    """Write :func:`predict_args` (plus ``extra`` entries) to ``output_dir/predict_args.json``."""
    return atomic_write_json(Path(output_dir) / PREDICT_ARGS_FILE, predict_args(segmenter, **extra))
