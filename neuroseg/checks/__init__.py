"""Input checks: say when the answer should not be trusted, before the network runs.

``check_input(volume)`` measures coverage, resolution, sequence and content on the input Volume
and returns :class:`InputChecks` (one :class:`Finding` per check: ok, warn or refuse, the measured
value and the range the model was validated on). No model is needed. Adding a check is adding a
function ``(view) -> Finding`` (or ``(volume, view) -> Finding | None`` for sequence evidence) to a
module's ``CHECKS``.
"""

from __future__ import annotations

from neuroseg.checks.findings import LEVELS, OK, REFUSE, WARN, Finding, InputChecks, InputRefused


def check_input(volume, force: bool = False) -> InputChecks:
    """Every finding on ``volume``; ``force`` marks a run the user forced past a refusal."""
    from neuroseg.checks import content, geometry, sequence
    from neuroseg.checks.head import head_view

    checks = InputChecks(forced=force)
    size = geometry.field_of_view_only(volume)
    if size.level == REFUSE:  # too small to be a head: nothing else is worth measuring
        checks.findings.append(size)
        return checks
    view = head_view(volume)
    checks.findings.extend(check(view) for check in geometry.CHECKS)
    checks.findings.extend(f for f in (check(volume, view) for check in sequence.CHECKS) if f is not None)
    checks.findings.extend(check(view) for check in content.CHECKS)
    return checks


# What every output says after the flagged checks (console, viewer page).
DO_NOT_TRUST = "this input differs from what the model was validated on; do not trust the result unchecked"


def qc_title(report: dict) -> str:
    """The QC picture's title line for a report whose input checks warned or refused ('' when all ok)."""
    section = report.get("input_checks") or {}
    flagged = section.get("flagged") or []
    if not flagged:
        return ""
    forced = "FORCED past a refusal; " if section.get("forced") and section.get("level") == REFUSE else ""
    return f"INPUT CHECKS {section.get('level', WARN).upper()}: {forced}" + ", ".join(flagged)


__all__ = ["check_input", "qc_title", "DO_NOT_TRUST", "Finding", "InputChecks", "InputRefused", "LEVELS", "OK", "WARN", "REFUSE"]
