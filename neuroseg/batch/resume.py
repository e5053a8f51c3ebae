"""What an earlier run left: a case is *complete* once its report (written last) exists, names this case's
source (for a NIfTI file, also its size and modification time) and names files that all exist. A rerun
skips complete cases and redoes the rest; a replaced or corrected scan is segmented again."""

from __future__ import annotations

from pathlib import Path

from neuroseg.batch.cases import Case, case_source
from neuroseg.batch.paths import STAGING_PREFIX, CasePaths
from neuroseg.batch.reports import read_json, report_source


def file_stamp(path) -> dict:
    """Size and modification time of a source file: a replaced or corrected file has others."""
    stat = Path(path).stat()
    return {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_current(report: dict, case: Case, report_path: Path) -> bool:
    """True when ``report`` was made from this case's source as it is now."""
    if report_source(report) != case_source(case):
        return False
    if case.kind != "nifti":
        return True
    try:
        stamp = file_stamp(case.source)
        recorded = {key: report["input"].get(key) for key in stamp}
        if None not in recorded.values():
            return recorded == stamp
        # a report written before the stamp was recorded: current unless the file changed after it
        return stamp["mtime_ns"] <= Path(report_path).stat().st_mtime_ns
    except OSError:
        return False


def case_format(case: Case, output_format: str) -> str:
    return "nifti" if case.kind == "nifti" else output_format


def is_complete(case_dir, output_format: str, case: Case | None = None, paths: CasePaths | None = None,
                viewer: bool = True, mesh: bool = False) -> bool:
    """True when the case's report exists, parses, and every output it and the format name exists.

    With ``case``, the report must also name that case's source, unchanged since (:func:`is_current`).
    ``paths``: where the outputs are, when not the standard names in ``case_dir`` (BIDS derivatives).
    ``viewer``: whether this run writes viewer pages (a page written by an earlier run is still checked).
    """
    from neuroseg.export.writer import output_names

    paths = paths or CasePaths(Path(case_dir))
    report = read_json(paths.report)
    if report is None or (case is not None and not is_current(report, case, paths.report)):
        return False
    names = set(report.get("files", [])) | {paths.name(name) for name in output_names(output_format, viewer=viewer,
                                                                                          mesh=mesh)}
    return all((paths.folder / name).is_file() for name in names)


def remove_stale_parts(folder: Path) -> int:
    """Delete what an interrupted write left: ``.<name>.<random>.part<suffix>``, ``.<name>.<random>.old``
    and a BIDS case's staging folder.

    Only the coordinator calls this, before a case is handed out and after every worker is done, so a
    worker's write in progress is never taken for an interrupted one.
    """
    import shutil

    removed = 0
    if Path(folder).is_dir():
        for pattern in (".*.part*", ".*.old", f"{STAGING_PREFIX}*"):
            for path in Path(folder).glob(pattern):
                if path.is_file():
                    path.unlink()
                elif path.is_dir() and path.name.startswith(STAGING_PREFIX):
                    shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed
