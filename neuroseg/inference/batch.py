"""Batch segmentation of every NIfTI volume and every selected DICOM series under a folder.

The model is loaded once. Reading (and decoding) runs ahead in a thread pool and writing
runs behind in another thread, so the model's device computes while the disk works.
Each case is isolated: a failure is recorded with its reason and the batch goes on.
Outputs go to ``OUTDIR/<case>/`` through atomic renames; a case is *complete* once its
``report.json`` (written last) exists, names this case's source (and, for a NIfTI file, its
size and modification time) and names files that all exist, so a rerun skips complete cases
and redoes the rest. ``summary.csv`` and ``summary.json`` list every case.

Case names are safe folder names: ``series-<SeriesInstanceUID>`` for DICOM series (never
a patient name or ID), and the sanitised relative path for NIfTI files. Names stick: a case
whose source already has a folder in OUTDIR keeps that folder's name, and a new case never
gets a folder that holds another source's results.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.errors import InputError, NeurosegError, OutputError
from neuroseg.export.files import atomic_write_text

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
SUMMARY_FIELDS = ("case", "source", "series_uid", "series_description", "looks_like_flair", "tumour_found",
                  "volume_ml", "tumour_slices", "seconds", "status", "error", "output")
# Statuses of a case: done now, done by an earlier run, failed, skipped (nothing to segment), not run (interrupted).
DONE, REUSED, FAILED, SKIPPED, NOT_RUN = "done", "done earlier", "failed", "skipped", "not run"
MAX_NAME = 120
UID_PATTERN = re.compile(r"^[0-9.]{1,64}$")


@dataclass
class Case:
    """One volume to segment (or a study with nothing to segment, ``skip`` set)."""

    name: str
    source: str
    kind: str  # "nifti" or "dicom"
    series_uid: str = ""
    series_description: str = ""
    looks_like_flair: bool | None = None
    skip: str = ""  # why nothing is segmented (status skipped)
    error: str = ""  # known before reading (status failed)


@dataclass
class BatchResult:
    rows: list = field(default_factory=list)  # one dict per case, SUMMARY_FIELDS
    seconds: float = 0.0
    ignored: list = field(default_factory=list)  # unreadable files found while scanning
    skipped_files: dict = field(default_factory=dict)  # why -> count of image files not taken for scans

    def count(self, *statuses) -> int:
        return sum(row["status"] in statuses for row in self.rows)

    @property
    def skipped_line(self) -> str:
        from neuroseg.io.discovery import describe_skipped

        return describe_skipped(self.skipped_files)

    @property
    def failed(self) -> int:
        return self.count(FAILED, NOT_RUN)

    def total_line(self) -> str:
        parts = [f"{self.count(DONE, REUSED)} done" + (f" ({self.count(REUSED)} by an earlier run)"
                                                      if self.count(REUSED) else "")]
        if self.count(FAILED):
            parts.append(f"{self.count(FAILED)} failed")
        if self.count(SKIPPED):
            parts.append(f"{self.count(SKIPPED)} skipped")
        if self.count(NOT_RUN):
            parts.append(f"{self.count(NOT_RUN)} not run")
        return f"{len(self.rows)} cases: " + ", ".join(parts) + f"; {self.seconds:.1f} s"


def safe_name(text: str) -> str:
    """A folder name made of letters, digits, ``.``, ``_`` and ``-`` only (no path separators, no leading dot)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return name[:MAX_NAME] or "case"


def find_cases(folder, exclude=(), series_uids=(), output=None):
    """Every NIfTI file and every study's chosen DICOM series under ``folder``.

    Returns the cases, unreadable-file notes and the :class:`~neuroseg.io.discovery.FolderWalk` (what was
    left out: earlier outputs, label maps). ``series_uids``: in a study that holds one of these series,
    process them instead of the automatic choice. ``output``: a batch output folder whose existing case
    folders keep their names (see :func:`assign_names`).
    """
    from neuroseg.io.dicom import iter_dicom_files
    from neuroseg.io.discovery import scan_dicom, walk_nifti

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"Not a folder: {folder}")
    walk = walk_nifti(folder, exclude)
    excluded = [Path(p).resolve() for p in (*exclude, *walk.left_out)]
    cases = []
    for path in walk.nifti:
        relative = path.relative_to(folder).as_posix()
        stem = relative[: -len(".nii.gz")] if relative.lower().endswith(".nii.gz") else relative[: -len(".nii")]
        cases.append(Case(safe_name(stem.replace("/", "__")), str(path), "nifti"))
    catalogue = scan_dicom(folder, exclude=excluded) if iter_dicom_files(folder, excluded) else None
    wanted = set(series_uids)
    if catalogue is not None:
        unknown = wanted - {s.uid for s in catalogue.series}
        if unknown:
            raise InputError(f"{folder}: no series with UID {', '.join(sorted(unknown))}")
        for study in catalogue.studies:
            chosen = [s for s in study.series if s.uid in wanted] or ([study.chosen] if study.chosen else [])
            for series in chosen:
                cases.append(Case(_series_name(series.uid), str(series.folder), "dicom", series.uid,
                                  series.description, series.looks_like_flair, error=series.problem or ""))
            broken = [s for s in study.series if s.looks_like_flair and s.problem and s not in chosen]
            for series in broken:  # never passed over unsaid: a failure, or a skip when another series was read
                case = Case(_series_name(series.uid), str(series.folder), "dicom", series.uid, series.description, True)
                if chosen:
                    case.skip = f"cannot be read ({series.problem}); series {chosen[0].number} was processed instead"
                else:
                    case.error = series.problem
                cases.append(case)
            if not chosen and not broken:
                cases.append(Case(f"study-{_uid_name(study.uid)}", str(study.series[0].folder), "dicom",
                                  series_description=", ".join(s.description for s in study.series)[:200],
                                  skip=study.reason))
    assign_names(cases, output)
    return cases, list(catalogue.unreadable) if catalogue else [], walk


def _uid_name(uid: str) -> str:
    import hashlib

    return uid if UID_PATTERN.match(uid) else hashlib.sha256(uid.encode()).hexdigest()[:16]


def _series_name(uid: str) -> str:
    return f"series-{_uid_name(uid)}"


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


def earlier_reports(output: Path) -> dict:
    """Folder name -> parsed report.json for every sub-folder of ``output`` holding one (None: unreadable)."""
    from neuroseg.export.writer import REPORT_FILE

    if not output.is_dir():
        return {}
    return {path.parent.name: read_report(path.parent) for path in output.glob(f"*/{REPORT_FILE}")}


def read_report(case_dir: Path) -> dict | None:
    from neuroseg.export.writer import REPORT_FILE

    try:
        report = json.loads((case_dir / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def case_source(case: Case) -> tuple:
    """What identifies a case's source: the SeriesInstanceUID of a series, the resolved path of a file."""
    if case.kind == "dicom":
        return ("dicom", case.series_uid)
    return ("nifti", str(Path(case.source).resolve()))


def report_source(report: dict) -> tuple | None:
    """The source a report was made from, comparable with :func:`case_source`; None when it does not say."""
    source = report.get("input") or {}
    if not isinstance(source, dict):
        return None
    if source.get("series_uid"):
        return ("dicom", source["series_uid"])
    path = source.get("resolved_path") or source.get("path")
    if source.get("format") == "nifti" and path:
        return ("nifti", str(Path(path).resolve()))  # reports before resolved_path: as the run saw it
    return None


def file_stamp(path) -> dict:
    """Size and modification time of a source file: a replaced or corrected file has others."""
    stat = Path(path).stat()
    return {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_current(report: dict, case: Case, case_dir: Path) -> bool:
    """True when ``report`` was made from this case's source as it is now."""
    from neuroseg.export.writer import REPORT_FILE

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
        return stamp["mtime_ns"] <= (case_dir / REPORT_FILE).stat().st_mtime_ns
    except OSError:
        return False


def case_format(case: Case, output_format: str) -> str:
    return "nifti" if case.kind == "nifti" else output_format


def is_complete(case_dir: Path, output_format: str, case: Case | None = None) -> bool:
    """True when the case's report exists, parses, and every output it and the format name exists.

    With ``case``, the report must also name that case's source, unchanged since (:func:`is_current`).
    """
    from neuroseg.export.writer import output_names

    report = read_report(case_dir)
    if report is None or (case is not None and not is_current(report, case, case_dir)):
        return False
    names = set(report.get("files", [])) | set(output_names(output_format))
    return all((case_dir / name).is_file() for name in names)


def remove_stale_parts(case_dir: Path) -> int:
    """Delete temporary files an interrupted write left (``.<name>.<random>.part<suffix>``)."""
    removed = 0
    if case_dir.is_dir():
        for path in case_dir.glob(".*.part*"):
            if path.is_file():
                path.unlink()
                removed += 1
    return removed


def run_batch(folder, output, *, model=None, device: str = "auto", segmenter=None, output_format: str = "nifti",
              series_uids=(), force: bool = False, workers: int = 2, console=None, on_case=None) -> BatchResult:
    """Segment every case under ``folder`` into ``output``; write the summaries; return the rows.

    ``workers``: reading threads (0 reads in the calling thread, no overlap). ``console``: a rich
    Console for the progress bar (None: no bar). ``on_case(row)`` is called after each case.
    """
    from neuroseg.export.writer import output_names
    from neuroseg.io.discovery import describe_skipped

    start = time.perf_counter()
    output_names(output_format)  # validates the format before any work
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputError(f"Output path exists and is not a folder: {output}")
    cases, ignored, walk = find_cases(folder, exclude=[output], series_uids=series_uids, output=output)
    if not cases:
        skipped = f" ({describe_skipped(walk.skipped)})" if walk.skipped else ""
        raise InputError(f"{folder}: no NIfTI volume and no DICOM series found{skipped}")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"Cannot create output folder {output}: {error.strerror}") from error
    rows = {case.name: _row(case, output) for case in cases}
    todo = []
    for case in cases:
        row = rows[case.name]
        if case.skip:
            row.update(status=SKIPPED, error=case.skip)
        elif case.error:
            row.update(status=FAILED, error=case.error)
        elif not force and is_complete(output / case.name, case_format(case, output_format), case):
            _fill_from_report(row, output / case.name)
            row["status"] = REUSED
        else:
            todo.append(case)
    result = BatchResult(ignored=ignored, skipped_files=walk.skipped)
    try:
        if todo:
            if segmenter is None:
                from neuroseg.inference import Segmenter

                segmenter = Segmenter(model, device=device)
            _process(todo, rows, output, segmenter, output_format, workers, console, on_case)
    finally:
        result.rows = [rows[case.name] for case in cases]
        result.seconds = time.perf_counter() - start
        write_summary(result, output)
    return result


def _row(case: Case, output: Path) -> dict:
    return {"case": case.name, "source": case.source, "series_uid": case.series_uid,
            "series_description": case.series_description,
            "looks_like_flair": "" if case.looks_like_flair is None else case.looks_like_flair,
            "tumour_found": "", "volume_ml": "", "tumour_slices": "", "seconds": "", "status": NOT_RUN,
            "error": "", "output": str(output / case.name)}


def _fill_from_report(row: dict, case_dir: Path, seconds: float | None = None) -> None:
    from neuroseg.export.writer import REPORT_FILE

    report = json.loads((case_dir / REPORT_FILE).read_text())
    source = report.get("input", {})
    row.update(tumour_found=report.get("tumour_found"), volume_ml=report.get("tumour_volume_ml"),
               tumour_slices=_ranges(report.get("tumour_slices", [])),
               seconds=round(seconds if seconds is not None else sum(report.get("timings_s", {}).values()), 3))
    if source.get("series_uid"):
        row["series_uid"] = source["series_uid"]
    if "looks_like_flair" in source:
        row["looks_like_flair"] = source["looks_like_flair"]
    if source.get("series_description"):
        row["series_description"] = source["series_description"]


def _ranges(indices) -> str:
    runs, start = [], None
    for a, b in zip(indices, list(indices[1:]) + [None]):
        start = a if start is None else start
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}-{a}")
            start = None
    return " ".join(runs)


def _load(case: Case):
    """Read one case's volume (runs in a reader thread); returns (volume, seconds, what identifies the source)."""
    from neuroseg.io import load_volume

    begin = time.perf_counter()
    source = {}
    if case.kind == "nifti":  # stamped before reading: a file changed meanwhile is redone next run
        source = {"resolved_path": str(Path(case.source).resolve()), **file_stamp(case.source)}
    volume = load_volume(case.source, series_uid=case.series_uid or None)
    return volume, time.perf_counter() - begin, source


def _write(result, case: Case, case_dir: Path, output_format: str) -> float:
    """Write one case's outputs; report.json (the completeness mark) is removed first and written last."""
    from neuroseg.export.writer import REPORT_FILE, write_outputs

    begin = time.perf_counter()
    report = read_report(case_dir)
    if (case_dir / REPORT_FILE).exists() and (report is None or report_source(report) != case_source(case)):
        raise OutputError(f"{case_dir} holds another source's results; not overwritten")
    remove_stale_parts(case_dir)
    (case_dir / REPORT_FILE).unlink(missing_ok=True)
    fmt = case_format(case, output_format)
    if fmt != output_format:
        result.report.setdefault("warnings", []).append(
            f"--format {output_format} needs DICOM input; wrote NIfTI for this NIfTI case")
    write_outputs(result, case_dir, force=True, output_format=fmt)
    return time.perf_counter() - begin


def _process(todo, rows, output, segmenter, output_format, workers, console, on_case) -> None:
    progress = _progress(console)
    readers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neuroseg-read") if workers else None
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuroseg-write") if workers else None
    loads: deque = deque()
    writes: deque = deque()
    pending = iter(todo)
    task = progress.add_task("Segmenting", total=len(todo)) if progress else None

    def submit_next():
        case = next(pending, None)
        if case is not None:
            loads.append((case, readers.submit(_load, case) if readers else None))

    def finish(case, seconds, error=None):
        row = rows[case.name]
        if error is None:
            _fill_from_report(row, output / case.name, seconds)
            row.update(status=DONE, error="")
        else:
            row.update(status=FAILED, error=_message(error), seconds=round(seconds, 3))
        if progress:
            progress.advance(task)
        if on_case is not None:
            on_case(row)

    def drain(block: bool):
        while writes and (block or writes[0][2].done()):
            case, compute, future = writes.popleft()
            error = future.exception()
            finish(case, compute + (0.0 if error else future.result()), error)

    try:
        if progress:
            progress.start()
        for _ in range(max(workers, 1) + 1):  # read a few cases ahead
            submit_next()
        while loads:
            case, future = loads.popleft()
            submit_next()
            begin = time.perf_counter()
            read_seconds = 0.0
            if progress:
                progress.update(task, description=f"Segmenting {case.name[:40]}")
            try:
                volume, read_seconds, source = future.result() if future else _load(case)
                begin = time.perf_counter()
                result = segmenter.segment(volume)
                result.timings["load"] = read_seconds
                result.report["timings_s"]["load"] = round(read_seconds, 4)
                result.report["input"].update(source)
            except Exception as error:  # the per-case boundary: record it, go on with the next case
                finish(case, read_seconds + time.perf_counter() - begin, error)
                drain(block=False)
                continue
            compute = read_seconds + time.perf_counter() - begin
            case_dir = output / case.name
            if writer is None:
                try:
                    write_seconds = _write(result, case, case_dir, output_format)
                except Exception as error:  # per-case boundary, as above
                    finish(case, compute, error)
                else:
                    finish(case, compute + write_seconds)
            else:
                writes.append((case, compute, writer.submit(_write, result, case, case_dir, output_format)))
                drain(block=len(writes) > 2)  # at most a couple of results wait in memory
        drain(block=True)
    finally:
        for pool in (readers, writer):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if progress:
            progress.stop()


def _message(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, NeurosegError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _progress(console):
    if console is None:
        return None
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)


def write_summary(result: BatchResult, output: Path) -> list[Path]:
    """``summary.csv`` and ``summary.json`` in ``output``, each written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    summary = {"total": result.total_line(), "seconds": round(result.seconds, 3),
               "counts": {s: result.count(s) for s in (DONE, REUSED, FAILED, SKIPPED, NOT_RUN)},
               "ignored_files": result.ignored, "skipped_files": result.skipped_files, "cases": result.rows}
    from neuroseg.export.viewer import write_index

    return [atomic_write_text(output / SUMMARY_CSV, buffer.getvalue()),
            atomic_write_text(output / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n"),
            write_index(result.rows, output)]


__all__ = ["run_batch", "find_cases", "assign_names", "is_complete", "safe_name", "write_summary", "BatchResult",
           "Case", "SUMMARY_CSV", "SUMMARY_JSON"]
