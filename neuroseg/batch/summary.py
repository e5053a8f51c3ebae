"""The batch's rows and its summaries: ``summary.csv`` and ``summary.json`` list every case.

Everything a summary holds is decided here: the columns (:data:`SUMMARY_FIELDS`), a case's row before
it runs (:func:`new_row`) and after (:func:`row_from_report`), and the files (:func:`write_summary`).
A shard writes ``summary.shard-K-of-N.json`` instead; :func:`merge_shards` makes the one summary of all.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.errors import BatchIncompleteError, InputError
from neuroseg.io.atomic import atomic_write_text

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
SUMMARY_FIELDS = ("case", "source", "series_uid", "series_description", "looks_like_flair", "tumour_found",
                  "volume_ml", "tumour_slices", "seconds", "status", "error", "output",
                  "input_checks")  # input_checks: the checks that warned or refused (see neuroseg.checks)
# Statuses of a case: done now, done by an earlier run, failed, skipped (nothing to segment), not run (interrupted).
DONE, REUSED, FAILED, SKIPPED, NOT_RUN = "done", "done earlier", "failed", "skipped", "not run"
STATUSES = (DONE, REUSED, FAILED, SKIPPED, NOT_RUN)
SHARD_SUMMARY = re.compile(r"^summary\.shard-(\d+)-of-(\d+)\.json$")


@dataclass
class BatchResult:
    rows: list = field(default_factory=list)  # one dict per case, SUMMARY_FIELDS
    seconds: float = 0.0
    ignored: list = field(default_factory=list)  # unreadable files found while scanning
    skipped_files: dict = field(default_factory=dict)  # why -> count of image files not taken for scans
    shard: tuple | None = None  # (K, N) when this run did one shard
    order: list = field(default_factory=list)  # each row's place among all shards' cases (shards only)

    def count(self, *statuses) -> int:
        return sum(row["status"] in statuses for row in self.rows)

    @property
    def skipped_line(self) -> str:
        from neuroseg.batch.walk import describe_skipped

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
        shard = f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        return f"{len(self.rows)} cases{shard}: " + ", ".join(parts) + f"; {self.seconds:.1f} s"

    @property
    def summary_path(self) -> str:
        return shard_summary_name(*self.shard) if self.shard else SUMMARY_CSV


def new_row(case, output: str) -> dict:
    """A case's row before it runs (status: not run)."""
    return {"case": case.name, "source": case.source, "series_uid": case.series_uid,
            "series_description": case.series_description,
            "looks_like_flair": "" if case.looks_like_flair is None else case.looks_like_flair,
            "tumour_found": "", "volume_ml": "", "tumour_slices": "", "seconds": "", "status": NOT_RUN,
            "error": "", "output": output, "input_checks": ""}


def row_from_report(report: dict, seconds: float | None = None) -> dict:
    """The columns a case's report fills in (``seconds``: this run's time; None: the report's timings)."""
    source = report.get("input", {})
    row = {"tumour_found": report.get("tumour_found"), "volume_ml": report.get("tumour_volume_ml"),
           "tumour_slices": ranges(report.get("tumour_slices", [])),
           "seconds": round(seconds if seconds is not None else sum(report.get("timings_s", {}).values()), 3)}
    for key in ("series_uid", "series_description"):
        if source.get(key):
            row[key] = source[key]
    if "looks_like_flair" in source:
        row["looks_like_flair"] = source["looks_like_flair"]
    row["input_checks"] = input_checks_cell(report)
    return row


def input_checks_cell(report: dict) -> str:
    """The summary's input_checks column: the checks that warned or refused, '' when all were ok."""
    section = report.get("input_checks") or {}
    flagged = " ".join(section.get("flagged") or [])
    return f"{flagged} (forced)" if flagged and section.get("forced") and section.get("level") == "refuse" else flagged


def ranges(indices) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5 9"``."""
    runs, start = [], None
    for a, b in zip(indices, list(indices[1:]) + [None]):
        start = a if start is None else start
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}-{a}")
            start = None
    return " ".join(runs)


def summary_document(result: BatchResult) -> dict:
    document = {"total": result.total_line(), "seconds": round(result.seconds, 3),
                "counts": {s: result.count(s) for s in STATUSES},
                "ignored_files": result.ignored, "skipped_files": result.skipped_files, "cases": result.rows}
    if result.shard:
        document["shard"] = {"index": result.shard[0], "count": result.shard[1], "order": result.order}
    return document


def write_summary(result: BatchResult, output: Path) -> list[Path]:
    """``summary.csv`` and ``summary.json`` in ``output`` (a shard: its ``summary.shard-K-of-N.json``), atomically."""
    document = json.dumps(summary_document(result), indent=2, default=str) + "\n"
    if result.shard:
        return [atomic_write_text(Path(output) / shard_summary_name(*result.shard), document)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    from neuroseg.export.viewer import write_index

    return [atomic_write_text(Path(output) / SUMMARY_CSV, buffer.getvalue()),
            atomic_write_text(Path(output) / SUMMARY_JSON, document),
            write_index(result.rows, output)]  # index.html links every case's viewer page


def shard_summary_name(index: int, count: int) -> str:
    return f"summary.shard-{index}-of-{count}.json"


def merge_shards(output) -> BatchResult:
    """The one summary of all shards' ``summary.shard-K-of-N.json`` in ``output``; written there, and returned.

    Refuses (nothing written) when a shard's summary is missing or shards of different N are mixed.
    """
    output = Path(output)
    found = {}
    for path in sorted(output.glob("summary.shard-*-of-*.json")) if output.is_dir() else []:
        match = SHARD_SUMMARY.match(path.name)
        if match:
            found[(int(match[1]), int(match[2]))] = path
    if not found:
        raise InputError(f"{output}: no shard summaries (summary.shard-K-of-N.json) to merge")
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        raise InputError(f"{output}: shard summaries of different shard counts ({', '.join(map(str, counts))}); "
                         f"remove the stale ones")
    missing = [k for k in range(1, counts[0] + 1) if (k, counts[0]) not in found]
    if missing:
        raise BatchIncompleteError(f"{output}: shard{'s' if len(missing) > 1 else ''} "
                                   f"{', '.join(f'{k}/{counts[0]}' for k in missing)} not run yet; nothing merged")
    result, placed = BatchResult(), []
    for key in sorted(found):
        document = json.loads(found[key].read_text())
        placed += zip(document["shard"]["order"], document["cases"])
        result.seconds = max(result.seconds, document["seconds"])  # shards run side by side
        result.ignored += [note for note in document["ignored_files"] if note not in result.ignored]
        result.skipped_files = document["skipped_files"]  # every shard scans the whole folder
    result.rows = [row for _, row in sorted(placed, key=lambda pair: pair[0])]
    write_summary(result, output)
    return result
