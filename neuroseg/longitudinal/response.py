"""Lesions matched across two visits, and the response category they suggest (FLAIR alone).

Pure functions of label maps and :mod:`neuroseg.measure` measurements: no files, no printing.

RANO-LGG on the sum of bidimensional products (SPD) of the baseline's measurable lesions (the targets):
complete response when every lesion is gone, partial response at a decrease of 50 % or more, minor
response at 25 % to 50 %, progression at an increase of 25 % or more or a new measurable lesion, stable
otherwise. Beside it the volumetric thresholds of RANO 2.0 tools: progression at +40 % of the total
volume, partial response at -65 %. Boundaries count as reached (a decrease of exactly 50 % is a partial
response); products are compared to within 1e-9 of a percent, so rounding cannot move a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CAVEAT = ("Suggested from FLAIR alone: RANO also weighs contrast enhancement, the clinical status and the "
          "steroid dose, which this tool does not see. Not a medical device; a reader decides.")

COMPLETE, PARTIAL, MINOR, STABLE, PROGRESSION = ("complete response", "partial response", "minor response",
                                                  "stable disease", "progression")
RANO_PROGRESSION = 25.0  # % increase of the SPD
RANO_MINOR = -25.0  # % decrease
RANO_PARTIAL = -50.0
VOLUME_PROGRESSION = 40.0  # % of the total volume (RANO 2.0 volumetric equivalents)
VOLUME_PARTIAL = -65.0
_EPS = 1e-9

STABLE_LABEL, NEW_LABEL, RESOLVED_LABEL = 1, 2, 3  # change.nii.gz


@dataclass
class Matching:
    """Lesions across the visits, by label (1 = each visit's largest, as :mod:`neuroseg.measure` numbers them).

    ``pairs``: (baseline label, follow-up label, overlapping voxels on the baseline grid); a lesion that split
    or merged appears in several pairs. ``new``: follow-up lesions that overlap no baseline lesion;
    ``resolved``: baseline lesions that overlap no follow-up lesion.
    """

    pairs: list = field(default_factory=list)
    new: list = field(default_factory=list)
    resolved: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"matched": [{"baseline": b, "followup": f, "overlap_voxels_baseline_grid": n} for b, f, n in self.pairs],
                "new": self.new, "resolved": self.resolved,
                "rule": "lesions (26-connected components) that overlap after registration, on the baseline grid"}


def lesion_labels(mask: np.ndarray) -> np.ndarray:
    """Label map whose labels are :func:`neuroseg.measure.measure_lesions`' (26-connected, largest = 1;
    equal sizes keep scipy's scan order, as its stable sort does)."""
    from scipy import ndimage

    from neuroseg.measure import CONNECTIVITY

    structure = ndimage.generate_binary_structure(3, 3 if CONNECTIVITY == 26 else 1)
    labels, count = ndimage.label(np.asarray(mask) > 0, structure=structure)
    if count == 0:
        return labels.astype(np.int32)
    sizes = np.bincount(labels.ravel())[1:]
    order = sorted(range(count), key=lambda n: -sizes[n])  # stable, like measure_lesions' list.sort
    relabel = np.zeros(count + 1, dtype=np.int32)
    relabel[np.array(order) + 1] = np.arange(1, count + 1)
    return relabel[labels]


def match_lesions(baseline_labels: np.ndarray, followup_labels_on_baseline: np.ndarray, followup_count: int
                  ) -> Matching:
    """Match by overlap on the baseline grid. ``followup_labels_on_baseline``: the follow-up's label map
    brought onto the baseline grid (nearest neighbour); ``followup_count``: its lesions on its own grid (a small
    lesion may vanish in the resampling: it still counts, as new)."""
    a, b = np.asarray(baseline_labels), np.asarray(followup_labels_on_baseline)
    both = (a > 0) & (b > 0)
    pairs = {}
    keys, counts = np.unique(np.stack([a[both], b[both]]), axis=1, return_counts=True)
    for (bl, fl), n in zip(keys.T, counts):
        pairs[(int(bl), int(fl))] = int(n)
    matched_b = {p[0] for p in pairs}
    matched_f = {p[1] for p in pairs}
    return Matching(pairs=[(bl, fl, n) for (bl, fl), n in sorted(pairs.items())],
                    new=[f for f in range(1, followup_count + 1) if f not in matched_f],
                    resolved=[bl for bl in range(1, int(a.max()) + 1) if bl not in matched_b])


def change_map(baseline_mask: np.ndarray, followup_on_baseline: np.ndarray) -> np.ndarray:
    """uint8 on the baseline grid: 1 tumour at both visits, 2 only at follow-up (new or grown),
    3 only at baseline (resolved or shrunk), 0 neither."""
    a, b = np.asarray(baseline_mask) > 0, np.asarray(followup_on_baseline) > 0
    out = np.zeros(a.shape, dtype=np.uint8)
    out[a & b] = STABLE_LABEL
    out[b & ~a] = NEW_LABEL
    out[a & ~b] = RESOLVED_LABEL
    return out


def percent_change(before: float, after: float) -> float | None:
    return None if before <= 0 else 100.0 * (after - before) / before


def rano_category(baseline, followup, matching: Matching) -> dict:
    """The RANO-LGG category from two :class:`~neuroseg.measure.LesionMeasurements` and their matching."""
    targets = [lesion for lesion in baseline.lesions if lesion.measurable]
    target_labels = {lesion.label for lesion in targets}
    followed = sorted({f for b, f, _ in matching.pairs if b in target_labels})
    by_label = {lesion.label: lesion for lesion in followup.lesions}
    spd_before = sum(lesion.bidimensional.product_mm2 for lesion in targets)
    spd_after = sum(by_label[f].bidimensional.product_mm2 for f in followed)
    new_measurable = [f for f in matching.new if by_label[f].measurable]
    change = percent_change(spd_before, spd_after)
    category, rule = _rano_rule(baseline, followup, change, new_measurable)
    return {"category": category, "rule": rule, "spd_baseline_mm2": round(spd_before, 1),
            "spd_followup_mm2": round(spd_after, 1), "change_percent": _round(change),
            "target_lesions_baseline": sorted(target_labels), "target_lesions_followup": followed,
            "new_measurable_lesions": new_measurable,
            "thresholds_percent": {"progression": RANO_PROGRESSION, "minor_response": RANO_MINOR,
                                   "partial_response": RANO_PARTIAL}}


def _rano_rule(baseline, followup, change, new_measurable) -> tuple[str | None, str]:
    if baseline.lesions and not followup.lesions:
        return COMPLETE, "every baseline lesion is gone"
    if new_measurable:
        return PROGRESSION, f"new measurable lesion(s) {new_measurable} (both diameters >= the RANO minimum, on two or more slices)"
    if change is None:
        return None, "no measurable lesion at baseline: the bidimensional rule needs one"
    return classify_change(change), f"SPD change {change:+.1f} %"


def classify_change(change_percent: float) -> str:
    """RANO-LGG on the percentage change of the SPD (boundaries count as reached)."""
    if change_percent >= RANO_PROGRESSION - _EPS:
        return PROGRESSION
    if change_percent <= RANO_PARTIAL + _EPS:
        return PARTIAL
    if change_percent <= RANO_MINOR + _EPS:
        return MINOR
    return STABLE


def volumetric_category(volume_before_ml: float, volume_after_ml: float) -> dict:
    """The RANO 2.0 volumetric equivalents on the total volume (each visit's on its own grid)."""
    change = percent_change(volume_before_ml, volume_after_ml)
    if volume_before_ml > 0 and volume_after_ml == 0:
        category = COMPLETE
    elif change is None:
        category = None
    elif change >= VOLUME_PROGRESSION - _EPS:
        category = PROGRESSION
    elif change <= VOLUME_PARTIAL + _EPS:
        category = PARTIAL
    else:
        category = STABLE
    return {"category": category, "volume_baseline_ml": round(volume_before_ml, 3),
            "volume_followup_ml": round(volume_after_ml, 3), "change_percent": _round(change),
            "thresholds_percent": {"progression": VOLUME_PROGRESSION, "partial_response": VOLUME_PARTIAL}}


def _round(value):
    return None if value is None else round(value, 2)


def withheld(category: dict, problems: list[str]) -> dict:
    """The same section with no category: the registration is poor or the heads differ."""
    return {**category, "category": None, "withheld": True,
            "rule": "no category: the two scans may not be the same head, or are not aligned (" +
                    "; ".join(problems) + ")"}
