"""Where a case's outputs go: its own folder (``OUTDIR/<case>/mask.nii.gz`` ...), or, for a BIDS dataset,
BIDS derivative names in the subject's folder (``OUTDIR/sub-X/ses-Y/anat/sub-X_ses-Y_desc-tumour_mask.nii.gz``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.export.viewer import VIEWER_FILE
from neuroseg.export.writer import MASK_FILE, PROBABILITIES_FILE, QC_FILE, REPORT_FILE, SEG_FILE

# BIDS derivatives: a segmentation mask is ``<source entities>[_desc-<label>]_mask``; a probability map
# ``_probseg``. The report and QC picture keep the same entities (listed in the dataset's .bidsignore).
# The mesh files are named here, not imported, so that batch's paths load no mesh or DICOM code; the
# Encapsulated STL (stl.dcm) is the same surface as surface.stl, in DICOM: surface.dcm.
BIDS_DESC = "tumour"
BIDS_SUFFIXES = {MASK_FILE: "mask.nii.gz", PROBABILITIES_FILE: "probseg.nii.gz", QC_FILE: "qc.png",
                 REPORT_FILE: "report.json", SEG_FILE: "seg.dcm", VIEWER_FILE: "viewer.html",
                 "tumour.stl": "surface.stl", "tumour.obj": "surface.obj", "tumour.gii": "surface.gii",
                 "stl.dcm": "surface.dcm"}
MASK_SIDECAR = "mask.json"
STAGING_PREFIX = ".neuroseg-staging-"  # a BIDS case's outputs are written here, then renamed to their names


@dataclass(frozen=True)
class CasePaths:
    """A case's output folder and the file name each standard output (``mask.nii.gz`` ...) has there."""

    folder: Path
    names: dict = field(default_factory=dict)  # standard name -> file name; missing: the standard name

    def name(self, standard: str) -> str:
        return self.names.get(standard, standard)

    def path(self, standard: str) -> Path:
        return self.folder / self.name(standard)

    @property
    def report(self) -> Path:
        return self.path(REPORT_FILE)


def case_paths(case, output) -> CasePaths:
    """The paths of ``case``'s outputs under ``output``."""
    output = Path(output)
    if not case.bids:
        return CasePaths(output / case.name)
    prefix = f"{case.bids['prefix']}_desc-{BIDS_DESC}_"
    names = {standard: prefix + suffix for standard, suffix in BIDS_SUFFIXES.items()}
    names[MASK_SIDECAR] = prefix + MASK_SIDECAR
    return CasePaths(output / case.bids["folder"], names)
