"""What the batch tests compare, and code they run inside Dask workers (importable there by name)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np

VARYING = ("seconds", "output")  # a run's time and its OUTDIR differ between otherwise equal runs


def comparable_summary(out: Path) -> list[dict]:
    rows = json.loads((out / "summary.json").read_text())["cases"]
    return [{k: v for k, v in row.items() if k not in VARYING} for row in rows]


def comparable_outputs(out: Path) -> dict:
    """Every case folder's file names, mask voxels and report (less timings and paths)."""
    found = {}
    for report_path in sorted(out.rglob("*report.json")):
        folder = report_path.parent
        report = json.loads(report_path.read_text())
        for key in ("timings_s",):
            report.pop(key)
        report["model"].pop("path")
        masks = sorted(folder.glob("*mask.nii.gz"))
        found[str(report_path.relative_to(out))] = {
            "files": sorted(p.name for p in folder.iterdir()), "report": report,
            "masks": [np.asarray(nib.load(m).dataobj).tobytes() for m in masks]}
    return found


def leftovers(out: Path) -> list[str]:
    """Temporary files or staging folders an interrupted write could leave."""
    return [str(p) for p in out.rglob(".*") if ".part" in p.name or p.name.endswith(".old")
            or p.name.startswith(".neuroseg-")]


def slow_qc(markers: str, seconds: float = 1.5) -> None:
    """On a worker: each QC picture waits ``seconds`` after marking ``markers/<pid>-<case>``.

    The mask is already in place by then and the report not yet: a kill there leaves a half-done case.
    """
    import neuroseg.export.qc as qc

    original = qc.render_qc

    def slow(result, path, *args):
        (Path(markers) / f"{os.getpid()}-{Path(path).parent.name}").write_text("")
        time.sleep(seconds)
        return original(result, path, *args)

    qc.render_qc = slow


def model_loads() -> int:
    """Models this worker process has loaded: the executor keeps each (model, device) it loads, once."""
    from neuroseg.batch import executors

    return len(executors._SEGMENTERS)


def warm_slowly(markers: str, model, device, threads):
    """A process pool's initializer: :func:`slow_qc` in this worker, then the executor's own warm-up."""
    from neuroseg.batch.executors import _warm

    slow_qc(markers)
    return _warm(model, device, threads)


def die_in_qc(case: str, markers: str, model, device, threads):
    """A process pool's initializer: this worker kills itself (SIGKILL) in the QC picture of ``case``.

    Each attempt marks ``markers/<pid>-<ns>-<case>`` first (unique even where a pid is reused), so a test
    can count them.
    """
    import signal

    import neuroseg.export.qc as qc
    from neuroseg.batch.executors import _warm

    original = qc.render_qc

    def deadly(result, path, *args):
        name = Path(path).parent.name
        (Path(markers) / f"{os.getpid()}-{time.time_ns()}-{name}").write_text("")
        if name == case:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(result, path, *args)

    qc.render_qc = deadly
    return _warm(model, device, threads)
