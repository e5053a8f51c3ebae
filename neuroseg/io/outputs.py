"""How the readers recognise an earlier neuroseg output folder (never taken for input)."""

from __future__ import annotations

import json
from pathlib import Path

REPORT_FILE = "report.json"


def is_output_folder(folder) -> bool:
    """True when ``folder`` holds a report.json that neuroseg wrote: an earlier run's outputs."""
    try:
        report = json.loads((Path(folder) / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and "neuroseg_version" in report
