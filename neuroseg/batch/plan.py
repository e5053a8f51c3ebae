"""The plan of a batch, made before any work: the cases, their output names, which are complete already,
and which shard of them this run does. Reads DIR and OUTDIR; writes nothing."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.batch.cases import Case, find_cases
from neuroseg.batch.paths import case_paths
from neuroseg.batch.reports import read_json
from neuroseg.batch.resume import case_format, is_complete
from neuroseg.batch.summary import FAILED, REUSED, SKIPPED, new_row, row_from_report
from neuroseg.batch.work import Task
from neuroseg.errors import InputError, OutputError

SHARD_PATTERN = re.compile(r"^(\d+)/(\d+)$")


@dataclass
class Plan:
    cases: list  # this run's cases (this shard's, with --shard), in the order of the summary
    rows: dict  # case name -> row (SUMMARY_FIELDS)
    tasks: list  # the cases to segment now
    ignored: list = field(default_factory=list)
    skipped_files: dict = field(default_factory=dict)
    bids: bool = False
    shard: tuple | None = None
    order: list = field(default_factory=list)  # each case's place among all cases (to merge shards)


def parse_shard(text: str | None) -> tuple | None:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; None stays None."""
    if text is None:
        return None
    match = SHARD_PATTERN.match(text.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InputError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/8")
    return int(match[1]), int(match[2])


def shard_of(case: Case, count: int) -> int:
    """The shard (1..count) a case belongs to, from what identifies its source only: adding a case moves no other."""
    digest = hashlib.sha256((case.key or case.name).encode()).hexdigest()
    return int(digest[:16], 16) % count + 1


def plan_batch(folder, output, *, output_format: str = "nifti", series_uids=(), force: bool = False,
               shard: tuple | None = None, viewer: bool = True, mesh: bool = False) -> Plan:
    from neuroseg.batch.bids import find_bids_cases, is_bids_dataset
    from neuroseg.export.writer import output_names
    from neuroseg.batch.walk import describe_skipped

    output_names(output_format)  # validates the format before any work
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputError(f"Output path exists and is not a folder: {output}")
    bids = is_bids_dataset(folder)
    if bids:
        if series_uids:
            raise InputError("--series picks DICOM series; a BIDS dataset holds NIfTI files")
        cases, skipped = find_bids_cases(folder)
        ignored = []
        if not cases:
            raise InputError(f"{folder}: BIDS dataset without a FLAIR image (sub-*/[ses-*/]anat/*_FLAIR.nii[.gz])"
                             + (f"; {describe_skipped(skipped)}" if skipped else ""))
    else:
        cases, ignored, walk = find_cases(folder, exclude=[output], series_uids=series_uids, output=output)
        skipped = walk.skipped
        if not cases:
            extra = f" ({describe_skipped(skipped)})" if skipped else ""
            raise InputError(f"{folder}: no NIfTI volume and no DICOM series found{extra}")
    order = list(range(len(cases)))
    if shard is not None:
        picked = [(n, case) for n, case in enumerate(cases) if shard_of(case, shard[1]) == shard[0]]
        order, cases = [n for n, _ in picked], [case for _, case in picked]
    plan = Plan(cases, {}, [], ignored, skipped, bids, shard, order)
    for case in cases:
        plan.tasks += _plan_case(plan, case, output, output_format, force, viewer, mesh)
    return plan


def _plan_case(plan: Plan, case: Case, output: Path, output_format: str, force: bool, viewer: bool,
               mesh: bool = False) -> list:
    paths = case_paths(case, output)
    row = plan.rows[case.name] = new_row(case, str(paths.report if case.bids else paths.folder))
    fmt = case_format(case, output_format)
    if case.skip:
        row.update(status=SKIPPED, error=case.skip)
    elif case.error:
        row.update(status=FAILED, error=case.error)
    elif not force and is_complete(paths.folder, fmt, case, paths, viewer=viewer, mesh=mesh):
        row.update(row_from_report(read_json(paths.report)), status=REUSED)
    else:
        return [Task(case, paths, output_format, viewer=viewer, mesh=mesh)]
    return []
