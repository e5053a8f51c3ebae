"""``neuroseg compare --bids DS``: every subject with two or more sessions, each session against the first
and against the one before; one row a pair in ``longitudinal.csv``.

A pair's outputs go to ``OUT/sub-X/ses-A_to_ses-B/``. Each session is read and segmented once, however many
pairs it is in. A failed pair is a row with its error; the others go on.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from neuroseg.errors import InputError

CSV_FILE = "longitudinal.csv"
COLUMNS = ("subject", "baseline_session", "followup_session", "against", "status", "error", "same_head",
           "head_dice", "head_correlation", "volume_baseline_ml", "volume_followup_ml", "volume_change_percent",
           "spd_baseline_mm2", "spd_followup_mm2", "spd_change_percent", "rano_lgg", "volumetric",
           "lesions_baseline", "lesions_followup", "new", "resolved", "folder", "baseline", "followup")


def session_flairs(dataset) -> dict:
    """subject -> [(session, FLAIR path)] sorted by session; a session's first FLAIR (by name) is its scan."""
    from neuroseg.batch.bids import find_bids_cases, is_bids_dataset

    if not is_bids_dataset(dataset):
        raise InputError(f"{dataset}: not a BIDS dataset (no dataset_description.json)")
    cases, _ = find_bids_cases(dataset)
    sessions = defaultdict(dict)
    for case in cases:
        entities = case.bids["entities"]
        subject, session = entities.get("subject"), entities.get("session")
        if subject is None or session is None:
            continue
        sessions[subject].setdefault(str(session), case.source)
    return {subject: sorted(found.items()) for subject, found in sorted(sessions.items()) if len(found) >= 2}


def pairs_of(sessions: list) -> list[tuple]:
    """(baseline index, follow-up index, against) for each session after the first: against the first and
    against the previous one (one pair when they are the same session)."""
    out = []
    for k in range(1, len(sessions)):
        out.append((0, k, "first" if k > 1 else "first+previous"))
        if k > 1:
            out.append((k - 1, k, "previous"))
    return out


def compare_bids(dataset, output, *, model=None, device: str = "auto", force: bool = False,
                 force_input: bool = False, log=print) -> list[dict]:
    """Compare every subject's sessions; write each pair's folder and ``longitudinal.csv``; return the rows."""
    from neuroseg.export.files import prepare_output_dir
    from neuroseg.io.atomic import atomic_write_text
    from neuroseg.longitudinal.compare import LazySegmenter

    dataset, output = Path(dataset), Path(output)
    subjects = session_flairs(dataset)
    if not subjects:
        raise InputError(f"{dataset}: no subject has FLAIR images in two or more sessions")
    prepare_output_dir(output, [CSV_FILE], force)
    segmenter = LazySegmenter(model, device, force_input)
    cache: dict = {}
    rows = []
    for subject, sessions in subjects.items():
        for a, b, against in pairs_of(sessions):
            row = _pair(subject, sessions[a], sessions[b], against, output, segmenter, cache, force)
            log(row)
            rows.append(row)
    atomic_write_text(output / CSV_FILE, _csv(rows))
    return rows


def _pair(subject, baseline, followup, against, output, segmenter, cache, force) -> dict:
    from neuroseg.batch.work import message
    from neuroseg.longitudinal.compare import compare_time_points, read_time_point, write_comparison

    folder = output / f"sub-{subject}" / f"ses-{baseline[0]}_to_ses-{followup[0]}"
    row = {"subject": subject, "baseline_session": baseline[0], "followup_session": followup[0],
           "against": against, "folder": folder.relative_to(output).as_posix(), "baseline": baseline[1],
           "followup": followup[1]}
    try:
        points = []
        for _, path in (baseline, followup):
            if path not in cache:
                cache[path] = read_time_point(path, segmenter)
            points.append(cache[path])
        comparison = compare_time_points(*points)
        write_comparison(comparison, folder, force)
    except Exception as error:  # the per-pair boundary: record it, the others go on
        return {**row, "status": "failed", "error": message(error)}
    return {**row, **summary_row(comparison), "status": "done", "error": ""}


def summary_row(comparison) -> dict:
    """The numbers of one comparison, as a CSV row's columns."""
    rano, volumetric, registration = comparison.rano, comparison.volumetric, comparison.registration
    before, after = comparison.measurements
    return {"same_head": registration.trusted, "head_dice": round(registration.head_dice, 4),
            "head_correlation": round(registration.correlation, 4),
            "volume_baseline_ml": volumetric["volume_baseline_ml"], "volume_followup_ml": volumetric["volume_followup_ml"],
            "volume_change_percent": volumetric["change_percent"], "spd_baseline_mm2": rano["spd_baseline_mm2"],
            "spd_followup_mm2": rano["spd_followup_mm2"], "spd_change_percent": rano["change_percent"],
            "rano_lgg": rano["category"] or "", "volumetric": volumetric["category"] or "",
            "lesions_baseline": before.foci, "lesions_followup": after.foci,
            "new": len(comparison.matching.new), "resolved": len(comparison.matching.resolved)}


def _csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key, "") for key in COLUMNS})
    return text.getvalue()
