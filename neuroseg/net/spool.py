"""Instances on disk named by their UIDs (never by patient data): ``STUDY/SERIES/SOP.dcm``, written atomically
(neuroseg.io.atomic), readable by the owner only: they hold patient data."""

from __future__ import annotations

import os
import re
from pathlib import Path

from neuroseg.errors import InputError, OutputError
from neuroseg.io.atomic import atomic_path, temporary_files

UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def check_uid(value, what: str) -> str:
    """A UID safe to use as a file name; InputError otherwise."""
    uid = str(value or "").strip()
    if not UID_PATTERN.match(uid) or len(uid) > 64:
        raise InputError(f"{what} {uid!r} is not a valid DICOM UID")
    return uid


def instance_path(dataset, folder) -> Path:
    study = check_uid(dataset.get("StudyInstanceUID"), "StudyInstanceUID")
    series = check_uid(dataset.get("SeriesInstanceUID"), "SeriesInstanceUID")
    sop = check_uid(dataset.get("SOPInstanceUID"), "SOPInstanceUID")
    return Path(folder) / study / series / f"{sop}.dcm"


def save_instance(dataset, folder, encoded: bytes | None = None) -> Path:
    """Write ``dataset`` (with its file meta) under ``folder`` by its UIDs; a reader never sees half a file.

    ``encoded``: the instance as received, in the DICOM file format (pynetdicom's ``event.encoded_dataset()``),
    written as it is rather than encoded again from ``dataset`` (a tenth of the CPU time for a small instance).
    OutputError when it cannot be written (a full disk, no permission); nothing of it is left then."""
    path = instance_path(dataset, folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"Cannot create {path.parent}: {error.strerror or error}") from error
    # not ending in .dcm while written: the listener's readers glob *.dcm in the study being received
    with atomic_path(path, keep_suffix=False, mode=0o600) as tmp:
        if encoded is None:
            dataset.save_as(tmp, enforce_file_format=True)
        else:
            tmp.write_bytes(encoded)
    return path


def remove_partial_files(folder) -> int:
    """Delete what an interrupted write left (atomic_path's temporary files); returns how many."""
    removed = 0
    for path in temporary_files(folder):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def folder_bytes(folder) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
