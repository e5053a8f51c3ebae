"""The reports an earlier run left in OUTDIR, and the source each one names. Below cases and resume:
naming a case and judging it complete both read them."""

from __future__ import annotations

import json
from pathlib import Path


def earlier_reports(output: Path) -> dict:
    """Folder name -> parsed report.json for every sub-folder of ``output`` holding one (None: unreadable)."""
    from neuroseg.export.writer import REPORT_FILE

    if not output.is_dir():
        return {}
    return {path.parent.name: read_json(path) for path in output.glob(f"*/{REPORT_FILE}")}


def read_json(path: Path) -> dict | None:
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


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
