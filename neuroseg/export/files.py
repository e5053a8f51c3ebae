"""Output folders: created, and refused before anything is written when an output is already there."""

from __future__ import annotations

import os
from pathlib import Path

from neuroseg.errors import OutputError


def prepare_output_dir(folder, names, force: bool) -> Path:
    """Create ``folder``; refuse (before anything is written) if any output exists without ``force``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"Output path exists and is not a folder: {folder}")
    existing = [name for name in names if (folder / name).exists()]
    if existing and not force:
        raise OutputError(f"Output file exists: {folder / existing[0]} (use --force to overwrite)")
    if force:
        for name in existing:
            if (folder / name).is_dir():
                raise OutputError(f"Output path is a folder, not a file: {folder / name}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"Cannot create output folder {folder}: {error.strerror or error}") from error
    if not os.access(folder, os.W_OK):
        raise OutputError(f"Output folder is not writable: {folder}")
    return folder


def save_dataset(dataset, path) -> Path:
    """Write a DICOM instance (a pydicom or highdicom dataset) to ``path`` atomically; returns ``path``."""
    from neuroseg.io.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return path
