"""Whether a DICOM series is FLAIR, from its header: its names and its inversion time."""

from __future__ import annotations

import re

from neuroseg.io.values import as_float, as_list

# Names that mark a FLAIR (fluid-attenuated inversion recovery) series in the text attributes.
FLAIR_PATTERN = re.compile(r"flair|dark[\s_-]*fluid|fluid[\s_-]*att", re.IGNORECASE)
# A T1-weighted FLAIR (T1 FLAIR, T1-FLAIR) is another contrast.
T1_PATTERN = re.compile(r"(^|[^a-z0-9])t1([^a-z0-9]|$)|t1w", re.IGNORECASE)
# FLAIR nulls fluid with a long inversion time; T1-weighted IR (MPRAGE, T1-FLAIR) uses ~0.6–1.2 s, STIR ~0.15 s.
FLAIR_MIN_TI_MS = 1500.0
T1_IR_MAX_TI_MS = 1300.0
TEXT_ATTRIBUTES = ("SeriesDescription", "ProtocolName", "SequenceName")


def flair_evidence(dataset) -> tuple[bool, str]:
    """Whether a series header looks like FLAIR, and the evidence in a few words."""
    texts = {name: str(dataset.get(name, "") or "") for name in TEXT_ATTRIBUTES}
    inversion = as_float(dataset.get("InversionTime"))
    if inversion is None:  # enhanced MR keeps it in a functional group
        inversion = _enhanced_inversion_time(dataset)
    scanning = {str(v).upper() for v in as_list(dataset.get("ScanningSequence"))}
    named = [f"{name} {value!r}" for name, value in texts.items() if value and FLAIR_PATTERN.search(value)]
    if named and inversion is not None and inversion < T1_IR_MAX_TI_MS:
        return False, f"{named[0]} but inversion time {inversion:.0f} ms is a T1-weighted inversion recovery"
    if named and any(T1_PATTERN.search(value) for value in texts.values()):
        return False, f"{named[0]} names a T1-weighted FLAIR"
    if named:
        return True, named[0] + (f", inversion time {inversion:.0f} ms" if inversion else "")
    if inversion is not None and inversion >= FLAIR_MIN_TI_MS and ("IR" in scanning or not scanning):
        return True, f"inversion recovery with inversion time {inversion:.0f} ms (fluid-nulling)"
    label = next((v for v in texts.values() if v), "no description")
    if inversion is not None and "IR" in scanning:
        return False, f"{label!r}: inversion recovery with inversion time {inversion:.0f} ms, not fluid-nulling"
    return False, f"{label!r}: no FLAIR name and no long inversion time"


def _enhanced_inversion_time(dataset) -> float | None:
    groups = [dataset, *(dataset.get("SharedFunctionalGroupsSequence") or [])[:1],
              *(dataset.get("PerFrameFunctionalGroupsSequence") or [])[:1]]
    for group in groups:
        for item in group.get("MRTimingAndRelatedParametersSequence") or []:
            values = as_list(item.get("InversionTimes"))
            if values:
                return as_float(values[0])
    return None
