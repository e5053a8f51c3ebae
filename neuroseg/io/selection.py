"""Which series is processed: each study's FLAIR (original, axial, most slices first), and the one series a
run takes from a folder, refusing when another input would be left out unsaid."""

from __future__ import annotations

from pathlib import Path

from neuroseg.errors import InputError


def choose_series(study) -> None:
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

    def preference(series):
        derived = "DERIVED" in series.image_type.upper()
        return (derived, not series.orientation.endswith("axial"), -series.n_slices, series.number)

    candidates.sort(key=preference)
    study.chosen = candidates[0]
    study.reason = f"looks like FLAIR: {study.chosen.flair_reason}"
    if len(candidates) > 1:
        study.reason += f" (preferred over {len(candidates) - 1} other FLAIR series: original, axial, most slices)"
        for other in candidates[1:]:
            study.skipped[other.uid] = f"another FLAIR series was preferred (series {study.chosen.number})"


def select_series(catalogue, series_uid: str | None = None):
    """The series to process: ``series_uid`` when given, else the one FLAIR series of the folder.

    Without ``series_uid`` the folder must hold one input: no NIfTI files beside the DICOM
    files and no FLAIR series that had to be passed over as unreadable, so nothing is left
    out unsaid.
    """
    if not catalogue.series:
        hint = (f"; it holds {_nifti_listing(catalogue)}: give one file to 'neuroseg run', or use "
                "'neuroseg batch' for a folder") if catalogue.nifti_files else ""
        raise InputError(f"{catalogue.folder}: no DICOM series found{hint}")
    if series_uid is not None:
        series = catalogue.find(series_uid)
        if series.problem:
            raise InputError(f"{catalogue.folder}: series {series.uid} cannot be read: {series.problem}")
        return series
    if catalogue.nifti_files:
        raise InputError(f"{catalogue.folder}: holds {_nifti_listing(catalogue)} besides DICOM series; 'neuroseg run' "
                         f"reads one input: give one file or a folder of DICOM only, or use 'neuroseg batch' "
                         f"(see 'neuroseg scan {catalogue.folder}' for the DICOM series)")
    chosen = _select_flair(catalogue)
    _refuse_broken_flair(catalogue, chosen)
    return chosen


def _select_flair(catalogue):
    usable = [s for s in catalogue.series if s.usable]
    if len(catalogue.series) == 1:
        if usable:
            return usable[0]
        only = catalogue.series[0]
        raise InputError(f"{catalogue.folder}: series {only.uid} cannot be read: {only.problem}")
    chosen = [study.chosen for study in catalogue.studies if study.chosen is not None]
    if len(chosen) == 1:
        return chosen[0]
    listing = "; ".join(f"{s.number} {s.description!r} {s.uid}" for s in catalogue.series)
    if not chosen:
        raise InputError(f"{catalogue.folder}: none of its {len(catalogue.series)} series looks like a usable FLAIR "
                         f"series; choose one with --series UID ({listing})")
    raise InputError(f"{catalogue.folder}: holds {len(chosen)} studies with a FLAIR series; choose one with "
                     f"--series UID or use `neuroseg batch` ({listing})")


def _refuse_broken_flair(catalogue, chosen) -> None:
    """Refuse when another FLAIR series was passed over because it cannot be read."""
    broken = [s for s in catalogue.series if s.looks_like_flair and s.problem and s is not chosen]
    if not broken:
        return
    first = broken[0]
    more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
    raise InputError(f"{catalogue.folder}: FLAIR series {first.number} {first.description!r} {first.uid} cannot be "
                     f"read ({first.problem}){more}, so 'neuroseg run' would process only series "
                     f"{chosen.number} {chosen.description!r}: name that one with --series {chosen.uid}, or see "
                     f"'neuroseg scan {catalogue.folder}', or use 'neuroseg batch'")


def _nifti_listing(catalogue) -> str:
    names = [str(Path(p).relative_to(catalogue.folder)) for p in catalogue.nifti_files[:2]]
    more = ", …" if len(catalogue.nifti_files) > 2 else ""
    count = len(catalogue.nifti_files)
    return f"{count} NIfTI file{'s' * (count > 1)} ({', '.join(names)}{more})"
