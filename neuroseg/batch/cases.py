"""Finding cases under a folder, and naming each one's output folder.

Case names are safe folder names: ``series-<SeriesInstanceUID>`` for DICOM series (never a patient
name or ID), and the sanitised relative path for NIfTI files. Names stick: a case whose source already
has a folder in OUTDIR keeps that folder's name, and a new case never gets a folder that holds another
source's results.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.batch.reports import earlier_reports, report_source
from neuroseg.errors import InputError

MAX_NAME = 120
UID_PATTERN = re.compile(r"^[0-9.]{1,64}$")


@dataclass
class Case:
    """One volume to segment (or a study with nothing to segment, ``skip`` set).

    ``bids``: for a BIDS dataset's FLAIR, where its derivatives go (``folder``, relative to OUTDIR, and the
    file-name ``prefix`` of its entities), its ``entities`` and the ``sidecar`` fields neuroseg reports.
    """

    name: str
    source: str
    kind: str  # "nifti" or "dicom"
    series_uid: str = ""
    series_description: str = ""
    looks_like_flair: bool | None = None
    skip: str = ""  # why nothing is segmented (status skipped)
    error: str = ""  # known before reading (status failed)
    key: str = ""  # what identifies the source wherever DIR is mounted: shards are drawn from it
    bids: dict = field(default_factory=dict)


def safe_name(text: str) -> str:
    """A folder name made of letters, digits, ``.``, ``_`` and ``-`` only (no path separators, no leading dot)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return name[:MAX_NAME] or "case"


def find_cases(folder, exclude=(), series_uids=(), output=None):
    """Every NIfTI file and every study's chosen DICOM series under ``folder``.

    Returns the cases, unreadable-file notes and the :class:`~neuroseg.batch.walk.FolderWalk` (what was
    left out: earlier outputs, label maps). ``series_uids``: in a study that holds one of these series,
    process them instead of the automatic choice. ``output``: a batch output folder whose existing case
    folders keep their names (see :func:`assign_names`).
    """
    from neuroseg.io.dicom import iter_dicom_files
    from neuroseg.batch.walk import walk_nifti
    from neuroseg.io.catalogue import scan_dicom

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"Not a folder: {folder}")
    walk = walk_nifti(folder, exclude)
    excluded = [Path(p).resolve() for p in (*exclude, *walk.left_out)]
    cases = []
    for path in walk.nifti:
        relative = path.relative_to(folder).as_posix()
        stem = relative[: -len(".nii.gz")] if relative.lower().endswith(".nii.gz") else relative[: -len(".nii")]
        cases.append(Case(safe_name(stem.replace("/", "__")), str(path), "nifti", key=f"file:{relative}"))
    catalogue = scan_dicom(folder, exclude=excluded) if iter_dicom_files(folder, excluded) else None
    wanted = set(series_uids)
    if catalogue is not None:
        unknown = wanted - {s.uid for s in catalogue.series}
        if unknown:
            raise InputError(f"{folder}: no series with UID {', '.join(sorted(unknown))}")
        for study in catalogue.studies:
            cases.extend(_study_cases(study, wanted))
    assign_names(cases, output)
    return cases, list(catalogue.unreadable) if catalogue else [], walk


def _study_cases(study, wanted: set) -> list[Case]:
    """The chosen (or asked-for) series of one study; a FLAIR that cannot be read is never passed over unsaid."""
    cases = []
    chosen = [s for s in study.series if s.uid in wanted] or ([study.chosen] if study.chosen else [])
    for series in chosen:
        cases.append(Case(_series_name(series.uid), str(series.folder), "dicom", series.uid, series.description,
                          series.looks_like_flair, error=series.problem or "", key=f"series:{series.uid}"))
    broken = [s for s in study.series if s.looks_like_flair and s.problem and s not in chosen]
    for series in broken:  # a failure, or a skip when another series was read
        case = Case(_series_name(series.uid), str(series.folder), "dicom", series.uid, series.description, True,
                    key=f"series:{series.uid}")
        if chosen:
            case.skip = f"cannot be read ({series.problem}); series {chosen[0].number} was processed instead"
        else:
            case.error = series.problem
        cases.append(case)
    if not chosen and not broken:
        cases.append(Case(f"study-{_uid_name(study.uid)}", str(study.series[0].folder), "dicom",
                          series_description=", ".join(s.description for s in study.series)[:200],
                          skip=study.reason, key=f"study:{study.uid}"))
    return cases


def _uid_name(uid: str) -> str:
    return uid if UID_PATTERN.match(uid) else hashlib.sha256(uid.encode()).hexdigest()[:16]


def _series_name(uid: str) -> str:
    return f"series-{_uid_name(uid)}"


def case_source(case: Case) -> tuple:
    """What identifies a case's source: the SeriesInstanceUID of a series, the resolved path of a file."""
    if case.kind == "dicom":
        return ("dicom", case.series_uid)
    return ("nifti", str(Path(case.source).resolve()))


def assign_names(cases: list[Case], output=None) -> None:
    """Give each case a unique folder name; with ``output``, names stick across runs.

    A case whose source already has a folder in ``output`` (its report.json names the source) gets that
    folder's name. The others keep their base name or get ``-2``, ``-3``... avoiding every folder that
    holds a report, so adding a file never renames an existing case or lands in another one's folder.
    Names compare case-insensitively (macOS and Windows folders do).
    """
    reports = earlier_reports(Path(output)) if output is not None else {}
    owners: dict[tuple, list[str]] = {}
    for name, report in sorted(reports.items()):
        key = report_source(report) if report else None
        if key:
            owners.setdefault(key, []).append(name)
    fresh = []
    for case in cases:
        folders = owners.get(case_source(case))
        if folders:
            case.name = folders.pop(0)
        else:
            fresh.append(case)
    used = {name.lower() for name in reports}  # the folders just claimed are among them
    for case in fresh:
        case.name = _unused(case.name, used)
        used.add(case.name.lower())


def _unused(name: str, used: set) -> str:
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{name}-{n}"
    return candidate
