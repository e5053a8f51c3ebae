"""What a folder holds: NIfTI files, DICOM studies and series, and which series is the FLAIR to segment.

``scan_dicom(folder)`` reads headers only (no pixel data) and returns a
:class:`Catalogue`: per study, the series with their geometry, whether each looks like
FLAIR and why, which one would be processed and why the others would be skipped.
``walk_nifti(folder)`` lists the NIfTI files, leaving out folders that hold no scans.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.io.dicom import MEMORY, SeriesPlan, _int, collect_datasets, collect_series, plan_series, read_volume

# Names that mark a FLAIR (fluid-attenuated inversion recovery) series in the text attributes.
FLAIR_PATTERN = re.compile(r"flair|dark[\s_-]*fluid|fluid[\s_-]*att", re.IGNORECASE)
# A T1-weighted FLAIR (T1 FLAIR, T1-FLAIR) is another contrast.
T1_PATTERN = re.compile(r"(^|[^a-z0-9])t1([^a-z0-9]|$)|t1w", re.IGNORECASE)
# FLAIR nulls fluid with a long inversion time; T1-weighted IR (MPRAGE, T1-FLAIR) uses ~0.6–1.2 s, STIR ~0.15 s.
FLAIR_MIN_TI_MS = 1500.0
T1_IR_MAX_TI_MS = 1300.0
TEXT_ATTRIBUTES = ("SeriesDescription", "ProtocolName", "SequenceName")
# Decathlon-style datasets keep label maps beside the images (imagesTr/labelsTr): they are not scans.
LABEL_FOLDERS = ("labelstr", "labelsts")
LABEL_MAPS = "in labelsTr/labelsTs (label maps, not scans)"
EARLIER_OUTPUTS = "in earlier neuroseg output folders (they hold a report.json)"


def flair_evidence(dataset) -> tuple[bool, str]:
    """Whether a series header looks like FLAIR, and the evidence in a few words."""
    texts = {name: str(dataset.get(name, "") or "") for name in TEXT_ATTRIBUTES}
    inversion = _float(dataset.get("InversionTime"))
    if inversion is None:  # enhanced MR keeps it in a functional group
        inversion = _enhanced_inversion_time(dataset)
    scanning = {str(v).upper() for v in _list(dataset.get("ScanningSequence"))}
    named = [f"{name} {value!r}" for name, value in texts.items() if value and FLAIR_PATTERN.search(value)]
    if named and inversion is not None and inversion < T1_IR_MAX_TI_MS:
        return False, f"{named[0]} but inversion time {inversion:.0f} ms is a T1-weighted inversion recovery"
    if named and any(T1_PATTERN.search(value) for value in texts.values()):
        return False, f"{named[0]} names a T1-weighted FLAIR"
    if named:
        return True, named[0] + (f", inversion time {inversion:.0f} ms" if inversion else "")
    if inversion is not None and inversion >= FLAIR_MIN_TI_MS and ("IR" in scanning or not scanning):
        return True, f"inversion recovery with inversion time {inversion:.0f} ms (fluid-nulling)"
    label = next((v for v in texts.values() if v), "no description")
    if inversion is not None and "IR" in scanning:
        return False, f"{label!r}: inversion recovery with inversion time {inversion:.0f} ms, not fluid-nulling"
    return False, f"{label!r}: no FLAIR name and no long inversion time"


def _enhanced_inversion_time(dataset) -> float | None:
    groups = [dataset, *(dataset.get("SharedFunctionalGroupsSequence") or [])[:1],
              *(dataset.get("PerFrameFunctionalGroupsSequence") or [])[:1]]
    for group in groups:
        for item in group.get("MRTimingAndRelatedParametersSequence") or []:
            values = _list(item.get("InversionTimes"))
            if values:
                return _float(values[0])
    return None


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
        if not self.series:
            hint = (f"; it holds {self._nifti_listing()}: give one file to 'neuroseg run', or use "
                    "'neuroseg batch' for a folder") if self.nifti_files else ""
            raise InputError(f"{self.folder}: no DICOM series found{hint}")
        if series_uid is not None:
            series = self.find(series_uid)
            if series.problem:
                raise InputError(f"{self.folder}: series {series.uid} cannot be read: {series.problem}")
            return series
        if self.nifti_files:
            raise InputError(f"{self.folder}: holds {self._nifti_listing()} besides DICOM series; 'neuroseg run' "
                             f"reads one input: give one file or a folder of DICOM only, or use 'neuroseg batch' "
                             f"(see 'neuroseg scan {self.folder}' for the DICOM series)")
        chosen = self._select_flair()
        self._refuse_broken_flair(chosen)
        return chosen

    def _select_flair(self) -> SeriesInfo:
        usable = [s for s in self.series if s.usable]
        if len(self.series) == 1:
            if usable:
                return usable[0]
            only = self.series[0]
            raise InputError(f"{self.folder}: series {only.uid} cannot be read: {only.problem}")
        chosen = [study.chosen for study in self.studies if study.chosen is not None]
        if len(chosen) == 1:
            return chosen[0]
        listing = "; ".join(f"{s.number} {s.description!r} {s.uid}" for s in self.series)
        if not chosen:
            raise InputError(f"{self.folder}: none of its {len(self.series)} series looks like a usable FLAIR "
                             f"series; choose one with --series UID ({listing})")
        raise InputError(f"{self.folder}: holds {len(chosen)} studies with a FLAIR series; choose one with "
                         f"--series UID or use `neuroseg batch` ({listing})")

    def _refuse_broken_flair(self, chosen: SeriesInfo) -> None:
        """Refuse when another FLAIR series was passed over because it cannot be read."""
        broken = [s for s in self.series if s.looks_like_flair and s.problem and s is not chosen]
        if not broken:
            return
        first = broken[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise InputError(f"{self.folder}: FLAIR series {first.number} {first.description!r} {first.uid} cannot be "
                         f"read ({first.problem}){more}, so 'neuroseg run' would process only series "
                         f"{chosen.number} {chosen.description!r}: name that one with --series {chosen.uid}, or see "
                         f"'neuroseg scan {self.folder}', or use 'neuroseg batch'")

    def _nifti_listing(self) -> str:
        names = [str(Path(p).relative_to(self.folder)) for p in self.nifti_files[:2]]
        more = ", …" if len(self.nifti_files) > 2 else ""
        count = len(self.nifti_files)
        return f"{count} NIfTI file{'s' * (count > 1)} ({', '.join(names)}{more})"


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
                          number=_int(dataset.get("SeriesNumber")),
                          description=str(dataset.get("SeriesDescription", "") or ""), modality=modality,
                          image_type="\\".join(str(v) for v in _list(dataset.get("ImageType"))),
                          n_files=len(headers.files), looks_like_flair=flair, flair_reason=why, problem=problem)
        study = studies.setdefault(info.study_uid, StudyInfo(
            info.study_uid, str(dataset.get("StudyDate", "") or ""), str(dataset.get("StudyDescription", "") or "")))
        study.series.append(info)
    for study in studies.values():
        study.series.sort(key=lambda s: (s.number, s.uid))
        choose_series(study)
    ordered = sorted(studies.values(), key=lambda s: (s.date, s.uid))
    return Catalogue(folder, ordered, list(unreadable), list(nifti))


def choose_series(study: StudyInfo) -> None:
    """Set ``study.chosen``/``reason``/``skipped``: the FLAIR series, preferring original, axial, more slices."""
    for series in study.series:
        if series.problem:
            study.skipped[series.uid] = f"cannot be read: {series.problem}"
        elif not series.looks_like_flair:
            study.skipped[series.uid] = f"not FLAIR: {series.flair_reason}"
    candidates = [s for s in study.series if s.usable and s.looks_like_flair]
    if not candidates:
        study.reason = "no usable series looks like FLAIR (choose one with --series UID to process it anyway)"
        return

    def preference(series: SeriesInfo):
        derived = "DERIVED" in series.image_type.upper()
        return (derived, not series.orientation.endswith("axial"), -series.n_slices, series.number)

    candidates.sort(key=preference)
    study.chosen = candidates[0]
    study.reason = f"looks like FLAIR: {study.chosen.flair_reason}"
    if len(candidates) > 1:
        study.reason += f" (preferred over {len(candidates) - 1} other FLAIR series: original, axial, most slices)"
        for other in candidates[1:]:
            study.skipped[other.uid] = f"another FLAIR series was preferred (series {study.chosen.number})"


@dataclass
class FolderWalk:
    """The NIfTI files under a folder, and the folders left out because they hold no scans."""

    nifti: list = field(default_factory=list)  # Paths, sorted
    left_out: list = field(default_factory=list)  # folders not searched (neither for NIfTI nor for DICOM)
    skipped: dict = field(default_factory=dict)  # why -> how many image files were left out


def describe_skipped(skipped: dict) -> str:
    """e.g. "skipped 5 files: 3 in labelsTr/labelsTs (label maps, not scans), 2 in earlier ..."; "" when none."""
    if not skipped:
        return ""
    total = sum(skipped.values())
    parts = ", ".join(f"{n} {why}" for why, n in skipped.items())
    return f"skipped {total} file{'s' if total != 1 else ''}: {parts}"


def walk_nifti(folder, exclude=()) -> FolderWalk:
    """Every NIfTI file under ``folder``, sorted; not under ``exclude``, earlier outputs or label-map folders."""
    from neuroseg.io import is_nifti, walk_tree

    excluded = {Path(p).resolve() for p in exclude}
    walk = FolderWalk()
    for root, dirs, names in walk_tree(folder):
        root = Path(root)
        dirs.sort()
        if root.resolve() in excluded:
            dirs[:] = []
            continue
        why = _not_scans(root, names)
        if why:
            dirs[:] = []
            walk.left_out.append(root)
            walk.skipped[why] = walk.skipped.get(why, 0) + _count_images(root)
            continue
        walk.nifti.extend(root / name for name in names if is_nifti(root / name) and (root / name).is_file())
    walk.nifti.sort()
    return walk


def _not_scans(folder: Path, names) -> str:
    """Why ``folder`` holds no scans to segment, or "" when it may."""
    if folder.resolve().name.lower() in LABEL_FOLDERS:
        return LABEL_MAPS
    from neuroseg.io.outputs import REPORT_FILE, is_output_folder

    if REPORT_FILE in names and is_output_folder(folder):
        return EARLIER_OUTPUTS
    return ""


def _count_images(folder: Path) -> int:
    """NIfTI and .dcm files under ``folder``: what a walk would otherwise have taken for scans."""
    from neuroseg.io import is_nifti

    return sum(is_nifti(Path(root) / name) or name.lower().endswith(".dcm")
               for root, _, names in os.walk(folder) for name in names)


def _common_folder(files, default: Path) -> Path:
    import os

    try:
        return Path(os.path.commonpath(files)) if len(files) > 1 else Path(files[0]).parent
    except (ValueError, IndexError):
        return default


def _float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _list(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def load_dicom_series(folder, series_uid: str | None = None, exclude=()):
    """Read one DICOM series from ``folder`` into a Volume with a RAS+ affine.

    Without ``series_uid`` the folder's FLAIR series is chosen (see
    :func:`neuroseg.io.discovery.choose_series`); with it, that series is read even
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


__all__ = ["scan_dicom", "scan_datasets", "load_dicom_series", "load_dicom_datasets", "walk_nifti", "describe_skipped", "flair_evidence", "choose_series",
           "orientation_label", "Catalogue", "StudyInfo", "SeriesInfo", "FolderWalk"]
