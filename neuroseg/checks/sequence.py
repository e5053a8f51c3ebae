"""Does the input look like FLAIR? Evidence from the DICOM headers, a BIDS suffix or sidecar, the file
name, and the image's own tissue contrast. Each source that has something to say gives one finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from neuroseg.checks import ranges as R
from neuroseg.checks.findings import OK, WARN, Finding

FLAIR_ONLY = "FLAIR (the model was trained on FLAIR only)"
BIDS_SUFFIX = re.compile(r"_([A-Za-z0-9]+)\.nii(\.gz)?$")
BIDS_NOT_FLAIR = {"T1w", "T2w", "T1rho", "T1map", "T2map", "T2starw", "PDw", "PDT2", "inplaneT1", "inplaneT2",
                  "angio", "dwi", "bold", "asl", "UNIT1", "MP2RAGE", "MEGRE", "T2star", "FLASH", "PD"}
SIDECAR_KEYS = ("SeriesDescription", "ProtocolName", "SequenceName", "InversionTime")
NAME_NOT_FLAIR = {"t1", "t1w", "t1c", "t1ce", "t1gd", "t1post", "mprage", "spgr", "bravo", "t2", "t2w", "t2star",
                  "swi", "dwi", "adc", "pd", "pdw", "bold", "tof", "angio"}

# Image contrast (see image_contrast): tissue within 1-3 mm of CSF is mostly cortex, tissue more than
# 7 mm from any CSF mostly white matter. In FLAIR grey matter is brighter than white, in T1 darker.
CSF_BELOW, TISSUE_ABOVE = 0.5, 0.7  # of the brain's median intensity
NEAR_MM, FAR_MM, BRAIN_DEPTH_MM = (1.0, 3.0), 7.0, 12.0
VALIDATED_IMAGE = ("FLAIR ratio {:.2f}-{:.2f}; 92 real FLAIRs 0.89-1.26, but only 8 non-FLAIRs measured "
                   "(5 flagged): low confidence, a pass does not prove FLAIR")


def dicom_headers(volume, view=None) -> Finding | None:
    meta = volume.meta
    if meta.get("format") != "dicom" or "looks_like_flair" not in meta:
        return None
    reason = meta.get("flair_reason") or meta.get("series_description") or ""
    if meta["looks_like_flair"]:
        return Finding("sequence.dicom_headers", OK, f"FLAIR ({reason})", "", FLAIR_ONLY)
    return Finding("sequence.dicom_headers", WARN, f"NOT FLAIR ({reason})", "", FLAIR_ONLY,
                   "the series headers say this is not a FLAIR")


def bids(volume, view=None) -> Finding | None:
    """A BIDS suffix (``*_FLAIR.nii.gz``, ``_T1w``...) and the sidecar JSON's description or inversion time."""
    path = _path(volume)
    if path is None:
        return None
    match = BIDS_SUFFIX.search(path.name)
    suffix = match.group(1) if match and "-" in path.name else None  # BIDS names are key-value pairs
    sidecar = _sidecar(path)
    if sidecar is not None and any(sidecar.get(key) for key in SIDECAR_KEYS):
        from neuroseg.io.flair import flair_evidence

        flair, why = flair_evidence(_in_dicom_units(sidecar))
        source = f"sidecar {path.name.split('.')[0]}.json: {why}"
    elif suffix == "FLAIR" or suffix in BIDS_NOT_FLAIR:  # a sidecar silent on the sequence: the suffix says
        flair, source = suffix == "FLAIR", f"BIDS suffix _{suffix}"
    else:
        return None
    if flair:
        return Finding("sequence.bids", OK, f"FLAIR ({source})", "", FLAIR_ONLY)
    return Finding("sequence.bids", WARN, f"NOT FLAIR ({source})", "", FLAIR_ONLY,
                   "the BIDS name or sidecar says this is not a FLAIR")


def file_name(volume, view=None) -> Finding | None:
    """Words in the file name such as ``flair``, ``t1``, ``t2``, ``mprage`` (when BIDS did not say)."""
    path = _path(volume)
    if path is None or bids(volume) is not None:
        return None
    name = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
    words = [w for w in re.split(r"[^a-z0-9]+", Path(name).stem.lower()) if w]
    flair = [w for w in words if "flair" in w and not w.startswith("t1")]
    other = [w for w in words if w in NAME_NOT_FLAIR or (w.startswith("t1") and "flair" in w)]
    if flair and not other:
        return Finding("sequence.file_name", OK, f"FLAIR (named {flair[0]!r})", "", FLAIR_ONLY)
    if other and not flair:
        return Finding("sequence.file_name", WARN, f"NOT FLAIR (named {other[0]!r})", "", FLAIR_ONLY,
                       "the file name says this is not a FLAIR")
    return None


def image_contrast(volume, view) -> Finding:
    validated = VALIDATED_IMAGE.format(R.IMAGE_T1_BELOW, R.IMAGE_T2_ABOVE)
    ratio = cortex_to_white_ratio(view)
    if ratio is None:
        return Finding("sequence.image_contrast", OK, "not measurable", "", validated)
    if ratio < R.IMAGE_T1_BELOW:
        return Finding("sequence.image_contrast", WARN, f"NOT FLAIR (ratio {ratio:.2f}, T1-like)", "", validated,
                       "grey matter is darker than white matter, as in T1: the image does not look like a FLAIR")
    if ratio > R.IMAGE_T2_ABOVE:
        return Finding("sequence.image_contrast", WARN, f"NOT FLAIR (ratio {ratio:.2f}, T2-like)", "", validated,
                       "tissue beside the fluid is far brighter than white matter, as in T2: it does not look "
                       "like a FLAIR")
    return Finding("sequence.image_contrast", OK, f"ratio {ratio:.2f}", "", validated)


def cortex_to_white_ratio(view) -> float | None:
    """Median of tissue 1-3 mm from CSF over the mode of tissue more than 7 mm from CSF (middle slices)."""
    from neuroseg.checks.slicewise import distance_mm

    brain = view.depth > BRAIN_DEPTH_MM
    if brain.sum() < 1000:
        return None
    values = view.middle_array
    median = float(np.median(values[brain]))
    if median <= 0:
        return None
    csf = brain & (values < CSF_BELOW * median)
    tissue = brain & (values > TISSUE_ABOVE * median)
    distance = np.zeros(csf.shape, dtype=np.float32)
    for n in range(csf.shape[2]):  # read within the brain only, where the CSF is
        distance[:, :, n] = distance_mm(~csf[:, :, n], view.spacing[:2], within=brain[:, :, n])
    near = values[tissue & (distance > NEAR_MM[0]) & (distance <= NEAR_MM[1])]
    far = values[tissue & (distance > FAR_MM)]
    if near.size < 200 or far.size < 200:
        return None
    return float(np.median(near)) / _mode(far)


def _mode(values: np.ndarray) -> float:
    from scipy import ndimage

    counts, edges = np.histogram(values, bins=100, range=tuple(np.percentile(values, [1, 99])))
    peak = int(np.argmax(ndimage.gaussian_filter1d(counts.astype(float), 2)))
    return float((edges[peak] + edges[peak + 1]) / 2)


def _in_dicom_units(sidecar: dict) -> dict:
    """BIDS gives InversionTime in seconds, DICOM (and flair_evidence) in milliseconds."""
    out = dict(sidecar)
    value = out.get("InversionTime")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out["InversionTime"] = value * 1000.0
    return out


def _path(volume) -> Path | None:
    path = volume.meta.get("path")
    return Path(path) if path and volume.meta.get("format") == "nifti" else None


def _sidecar(path: Path) -> dict | None:
    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else name[: -len(".nii")]
    sidecar = path.with_name(stem + ".json")
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


CHECKS = (dicom_headers, bids, file_name, image_contrast)
