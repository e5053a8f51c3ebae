"""What DICOM a folder (or a list of datasets in memory) holds: studies, series, and each study's FLAIR.

``scan_dicom(folder)`` reads headers only (no pixel data) and returns a
:class:`Catalogue`: per study, the series with their geometry, whether each looks like
FLAIR and why, which one would be processed and why the others would be skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.io.dicom import MEMORY, SeriesPlan, collect_datasets, collect_series, plan_series, read_volume
from neuroseg.io.flair import flair_evidence
from neuroseg.io.selection import choose_series, select_series
from neuroseg.io.values import as_int, as_list


def orientation_label(normal) -> str:
    """axial / sagittal / coronal from the slice normal (LPS), "oblique" prefixed when tilted over 10°."""
    normal = np.abs(np.asarray(normal, dtype=np.float64))
    name = ("sagittal", "coronal", "axial")[int(np.argmax(normal))]
    return name if normal.max() > np.cos(np.radians(10)) else f"oblique {name}"


@dataclass
class SeriesInfo:
    """One series of a scanned folder, described from its headers."""

    uid: str
    study_uid: str
    folder: Path
    plan: SeriesPlan
    number: int
    description: str
    modality: str
    image_type: str
    n_files: int
    looks_like_flair: bool
    flair_reason: str
    problem: str | None  # why it cannot be processed, or None

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def orientation(self) -> str:
        return orientation_label(self.plan.slices[0].normal) if self.plan.slices else "-"

    @property
    def size(self) -> str:
        return f"{self.plan.slices[0].columns}x{self.plan.slices[0].rows}" if self.plan.slices else "-"

    @property
    def n_slices(self) -> int:
        return len(self.plan.slices)

    @property
    def spacing(self) -> list[float] | None:
        return np.round(self.plan.spacing, 3).tolist() if self.plan.affine_lps is not None else None

    @property
    def notes(self) -> list[str]:
        return list(self.plan.notes)

    def summary(self) -> dict:
        return {"series_uid": self.uid, "number": self.number, "description": self.description,
                "modality": self.modality, "orientation": self.orientation, "size": self.size,
                "slices": self.n_slices, "files": self.n_files, "spacing_mm": self.spacing,
                "looks_like_flair": self.looks_like_flair, "flair_reason": self.flair_reason,
                "problem": self.problem, "notes": self.notes}

    def load(self):
        """Read the pixel data into a Volume; loud warnings when it is not FLAIR-like."""
        warnings = [f"series {self.uid}: {note}" for note in self.notes]
        if not self.looks_like_flair:
            warnings.insert(0, f"NOT FLAIR: series {self.number} {self.description!r} does not look like FLAIR "
                               f"({self.flair_reason}); the model was trained on FLAIR only, so this result "
                               f"is unreliable")
        volume = read_volume(self.plan, self.folder, {"looks_like_flair": self.looks_like_flair,
                                                      "flair_reason": self.flair_reason})
        volume.meta["warnings"].extend(warnings)
        return volume


@dataclass
class StudyInfo:
    uid: str
    date: str
    description: str
    series: list = field(default_factory=list)  # SeriesInfo, by series number
    chosen: SeriesInfo | None = None
    reason: str = ""  # why ``chosen`` (or why none)
    skipped: dict = field(default_factory=dict)  # series uid -> why it is not processed

    def summary(self) -> dict:
        return {"study_uid": self.uid, "date": self.date, "description": self.description,
                "chosen": self.chosen.uid if self.chosen else None, "reason": self.reason,
                "series": [dict(s.summary(), action="process" if s is self.chosen else "skip",
                                why=self.reason if s is self.chosen else self.skipped.get(s.uid, ""))
                           for s in self.series]}


@dataclass
class Catalogue:
    """Everything DICOM under one folder."""

    folder: Path
    studies: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    nifti_files: list = field(default_factory=list)  # NIfTI files passed over: other inputs in the folder

    @property
    def series(self) -> list[SeriesInfo]:
        return [s for study in self.studies for s in study.series]

    def find(self, series_uid: str) -> SeriesInfo:
        for series in self.series:
            if series.uid == series_uid:
                return series
        known = ", ".join(f"{s.uid} ({s.description or 'no description'})" for s in self.series) or "none"
        raise InputError(f"{self.folder}: no series with UID {series_uid}; found: {known}")

    def select(self, series_uid: str | None = None) -> SeriesInfo:
        """The series to process: ``series_uid`` when given, else the one FLAIR series of the folder.

        Without ``series_uid`` the folder must hold one input: no NIfTI files beside the DICOM
        files and no FLAIR series that had to be passed over as unreadable, so nothing is left
        out unsaid.
        """
        return select_series(self, series_uid)


def scan_dicom(folder, exclude=()) -> Catalogue:
    """Read every DICOM header under ``folder`` (but not under ``exclude``); choose each study's FLAIR."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"Not a folder: {folder}")
    nifti: list = []
    found, unreadable = collect_series(folder, exclude, nifti)
    return build_catalogue(folder, found, unreadable, nifti)


def scan_datasets(datasets) -> Catalogue:
    """As :func:`scan_dicom`, for pydicom Datasets held in memory (e.g. as a DICOM node receives them)."""
    return build_catalogue(Path(MEMORY), collect_datasets(datasets))


def build_catalogue(folder: Path, found: dict, unreadable=(), nifti=()) -> Catalogue:
    """The studies of grouped series headers, each study's FLAIR chosen."""
    studies: dict[str, StudyInfo] = {}
    for uid, headers in found.items():
        dataset = headers.dataset
        plan = plan_series(headers)
        modality = str(dataset.get("Modality", "") or "")
        flair, why = flair_evidence(dataset)
        problem = plan.problem
        if modality.upper() not in ("MR", ""):
            problem = f"modality {modality} is not MR"
            flair, why = False, problem  # a SEG's description may name FLAIR: it is no FLAIR series to read
        info = SeriesInfo(uid=uid, study_uid=str(dataset.get("StudyInstanceUID", "") or ""),
                          folder=_common_folder(headers.files, folder), plan=plan,
                          number=as_int(dataset.get("SeriesNumber")),
                          description=str(dataset.get("SeriesDescription", "") or ""), modality=modality,
                          image_type="\\".join(str(v) for v in as_list(dataset.get("ImageType"))),
                          n_files=len(headers.files), looks_like_flair=flair, flair_reason=why, problem=problem)
        study = studies.setdefault(info.study_uid, StudyInfo(
            info.study_uid, str(dataset.get("StudyDate", "") or ""), str(dataset.get("StudyDescription", "") or "")))
        study.series.append(info)
    for study in studies.values():
        study.series.sort(key=lambda s: (s.number, s.uid))
        choose_series(study)
    ordered = sorted(studies.values(), key=lambda s: (s.date, s.uid))
    return Catalogue(folder, ordered, list(unreadable), list(nifti))


def _common_folder(files, default: Path) -> Path:
    try:
        return Path(os.path.commonpath(files)) if len(files) > 1 else Path(files[0]).parent
    except (ValueError, IndexError):
        return default


def load_dicom_series(folder, series_uid: str | None = None, exclude=()):
    """Read one DICOM series from ``folder`` into a Volume with a RAS+ affine.

    Without ``series_uid`` the folder's FLAIR series is chosen (see
    :func:`neuroseg.io.selection.choose_series`); with it, that series is read even
    when it does not look like FLAIR, with a warning in ``meta["warnings"]``.
    Folders in ``exclude`` (e.g. the run's own output folder) are not searched.
    """
    return scan_dicom(folder, exclude).select(series_uid).load()


def load_dicom_datasets(datasets, series_uid: str | None = None):
    """As :func:`load_dicom_series`, for pydicom Datasets held in memory (pixel data included).

    The Volume's ``meta["source_datasets"]`` keeps the datasets of its slices, so a DICOM-SEG can
    reference them with no file on disk.
    """
    return scan_datasets(datasets).select(series_uid).load()


__all__ = ["scan_dicom", "scan_datasets", "load_dicom_series", "load_dicom_datasets", "orientation_label", "Catalogue",
           "StudyInfo", "SeriesInfo"]
