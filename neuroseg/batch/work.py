"""One case's work: read, segment, write atomically; a failure is caught and becomes the row's error.

:func:`process_case` is what every executor runs, in this process, a thread, a process pool or on a
Dask worker. A :class:`Task` is small and picklable (paths and names, no image data); the segmenter is
the worker's own, loaded once (:mod:`neuroseg.batch.executors`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

from neuroseg.batch.bids import mask_sidecar
from neuroseg.batch.cases import Case, case_source
from neuroseg.batch.paths import MASK_SIDECAR, STAGING_PREFIX, CasePaths
from neuroseg.batch.reports import read_json, report_source
from neuroseg.batch.resume import case_format, file_stamp
from neuroseg.batch.summary import DONE, FAILED, row_from_report
from neuroseg.errors import NeurosegError, OutputError, first_line
from neuroseg.io.atomic import atomic_write_text

@dataclass(frozen=True)
class Task:
    """What a worker needs to do one case: the case, where its outputs go, the output format."""

    case: Case
    paths: CasePaths
    output_format: str = "nifti"
    force_input: bool = False  # segment even when an input check refuses (the report says so)
    viewer: bool = True  # write the case's viewer page (batch --no-viewer: the costliest output to write)
    mesh: bool = False  # write the tumour surface (batch --mesh)


def process_case(task: Task, segmenter) -> dict:
    """Read, segment and write one case; return the row's new columns (``status`` done or failed).

    Never raises for a bad case (the per-case boundary); KeyboardInterrupt and SystemExit pass through.
    """
    begin = time.perf_counter()
    try:
        volume, read_seconds, source = load_case(task.case)
        result = segmenter.segment(volume, force_input=task.force_input)
        result.timings["load"] = read_seconds
        result.source.update(source)
        write_case(result, task)
        report = read_json(task.paths.report)
        if report is None:  # another writer replaced it meanwhile and failed: not complete
            raise OutputError(f"{task.paths.report} vanished after it was written")
    except Exception as error:  # the per-case boundary: record it, the batch goes on
        return {"status": FAILED, "error": message(error), "seconds": round(time.perf_counter() - begin, 3)}
    return {**row_from_report(report, time.perf_counter() - begin), "status": DONE, "error": ""}


def load_case(case: Case):
    """Read one case's volume; returns (volume, seconds, what identifies the source in the report)."""
    from neuroseg.io import load_volume

    begin = time.perf_counter()
    source = {}
    if case.kind == "nifti":  # stamped before reading: a file changed meanwhile is redone next run
        source = {"resolved_path": os.path.realpath(case.source), **file_stamp(case.source)}
    if case.bids:
        source["bids"] = {"entities": case.bids["entities"], "sidecar": case.bids["sidecar"]}
    volume = load_volume(case.source, series_uid=case.series_uid or None)
    return volume, time.perf_counter() - begin, source


def write_case(result, task: Task) -> None:
    """Write one case's outputs; its report (the completeness mark) is removed first and written last.

    Two workers writing the same case at once end with one complete set: every file lands by an atomic
    rename, so the last writer wins whole files.
    """
    from neuroseg.export.writer import write_outputs

    case, paths = task.case, task.paths
    fmt = case_format(case, task.output_format)
    _refuse_another_source(paths, case)
    if fmt != task.output_format:
        result.notes.append(
            f"--format {task.output_format} needs DICOM input; wrote NIfTI for this NIfTI case")
    if not case.bids:
        paths.report.unlink(missing_ok=True)
        write_outputs(result, paths.folder, force=True, output_format=fmt, viewer=task.viewer, mesh=task.mesh)
        return
    _write_bids(result, task, fmt)


def _refuse_another_source(paths: CasePaths, case: Case) -> None:
    # one read decides: reading, then asking whether the file exists, let another writer of the same
    # case land its report in between, and a report that did not exist yet looked unreadable
    try:
        report = json.loads(paths.report.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        report = None
    if not isinstance(report, dict) or report_source(report) != case_source(case):
        raise OutputError(f"{paths.report} holds another source's results; not overwritten")


def _write_bids(result, task: Task, fmt: str) -> None:
    """Write into a private staging folder beside the targets, then rename each file to its BIDS name."""
    from neuroseg.export.writer import REPORT_FILE, write_outputs

    paths = task.paths
    try:
        paths.folder.mkdir(parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=paths.folder)
    except OSError as error:
        raise OutputError(f"Cannot write into {paths.folder}: {error.strerror or error}") from error
    try:
        written = write_outputs(result, staging, force=True, output_format=fmt, viewer=task.viewer, mesh=task.mesh,
                                listed_as=paths.names,
                                also_listed=[paths.name(MASK_SIDECAR)])
        paths.report.unlink(missing_ok=True)
        for path in written:
            if path.name != REPORT_FILE:
                os.replace(path, paths.path(path.name))
        atomic_write_text(paths.path(MASK_SIDECAR), json.dumps(mask_sidecar(task.case), indent=2) + "\n")
        os.replace(os.path.join(staging, REPORT_FILE), paths.report)  # last: the report marks the case complete
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def message(error: BaseException) -> str:
    """One line for the summary: neuroseg's own message, or the exception's type and first line."""
    text = first_line(error)
    if isinstance(error, NeurosegError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
