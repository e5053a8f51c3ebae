"""Instances on disk named by their UIDs (never by patient data): ``STUDY/SERIES/SOP.dcm``, written atomically."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from neuroseg.errors import InputError

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


def save_instance(dataset, folder) -> Path:
    """Write ``dataset`` (with its file meta) under ``folder`` by its UIDs; a reader never sees half a file."""
    path = instance_path(dataset, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            dataset.save_as(stream, enforce_file_format=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_partial_files(folder) -> int:
    """Delete what an interrupted write left (``.*.part``); returns how many."""
    removed = 0
    for path in Path(folder).rglob(".*.part"):
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
