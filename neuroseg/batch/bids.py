"""BIDS datasets in, BIDS derivatives out.

In: a folder with ``dataset_description.json`` at its root is a BIDS dataset. Its FLAIR images
(``sub-*/[ses-*/]anat/*_FLAIR.nii[.gz]``) are the cases, read with their JSON sidecars (the inheritance
principle applies); every other image is skipped and counted by suffix. pybids parses the entities.

Out: OUTDIR is a derivatives dataset: ``dataset_description.json`` (``DatasetType: derivative``,
``GeneratedBy`` neuroseg, its version and model), and for each FLAIR
``sub-X/[ses-Y/]anat/sub-X[_ses-Y][_...]_desc-tumour_mask.nii.gz`` with its sidecar JSON, the report and
the QC picture beside it (those two are not BIDS files: ``.bidsignore`` lists them).

With ``--mesh``, the tumour surface too: ``..._desc-tumour_surface.stl``, ``.obj`` (LPS mm) and ``.gii`` (RAS
mm). BIDS (up to 1.11) defines no surface-geometry file in derivatives: no name for a ``.stl``, ``.obj``,
``.gii`` or ``.surf.gii`` passes bids-validator-deno 3.0 (BEP011, which would name ``.surf.gii`` surfaces, is
not merged, and its ``hemi-`` surfaces are cortical anyway; ``_dseg.label.gii`` passes but is per-vertex
labels on a surface, not the surface). So the three keep the case's entities, to stay
attributable, and ``.bidsignore`` lists them, as it lists the report. A BIDS case is NIfTI, so no DICOM
(``_seg.dcm``, ``_surface.dcm``) is ever written here.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from neuroseg.batch.cases import Case
from neuroseg.batch.paths import BIDS_DESC
from neuroseg.errors import InputError, NeurosegError
from neuroseg.io.atomic import atomic_write_text

DESCRIPTION = "dataset_description.json"
BIDS_VERSION = "1.10.0"
BIDS_HINT = "pip install 'neuroseg[bids]'"
IMAGE_EXTENSIONS = (".nii", ".nii.gz")
# sidecar fields worth keeping in the report: what the scan was and on what
SIDECAR_FIELDS = ("MagneticFieldStrength", "Manufacturer", "ManufacturersModelName", "SequenceName",
                  "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "SeriesDescription", "ProtocolName",
                  "RepetitionTime", "EchoTime", "InversionTime", "SliceThickness")
IGNORED_OUTPUTS = ("*_report.json", "*_qc.png", "*_viewer.html", "*_surface.stl", "*_surface.obj", "*_surface.gii",
                   "index.html", "summary.csv", "summary.json", "summary.shard-*", ".neuroseg-*")

README = """Tumour (FLAIR abnormality) masks made by neuroseg {version}, model {model}.

Each FLAIR of the raw dataset has, in its subject's folder:
- *_desc-tumour_mask.nii.gz: the mask (uint8, 0 or 1) on the FLAIR's own grid, with its sidecar JSON;
- *_desc-tumour_report.json: tumour volume (mL), tumour slices, the model and its settings;
- *_desc-tumour_qc.png: the tumour slices with the outline drawn, to check by eye;
- with --mesh, *_desc-tumour_surface.stl and .obj (LPS mm, tagged SPACE=LPS for 3D Slicer) and
  *_desc-tumour_surface.gii (RAS mm): the tumour surface. BIDS has no surface-geometry files yet, so
  .bidsignore lists these, as it lists the report, the QC picture and the viewer page.
summary.csv and summary.json list every case. A research tool, not a medical device.
"""


def is_bids_dataset(folder) -> bool:
    return (Path(folder) / DESCRIPTION).is_file()


def find_bids_cases(folder) -> tuple[list[Case], dict]:
    """The FLAIR images of a BIDS dataset as cases, and why -> count of the images skipped."""
    try:
        from bids import BIDSLayout
    except ImportError:
        raise NeurosegError(f"{folder} is a BIDS dataset; reading one needs pybids: {BIDS_HINT}") from None
    folder = Path(folder)
    try:  # derivatives/, sourcedata/, code/ are not indexed
        layout = BIDSLayout(str(folder), validate=False)
    except Exception as error:  # pybids raises its own errors for a malformed dataset_description.json
        raise InputError(f"{folder}: not a readable BIDS dataset ({type(error).__name__}: {error})") from error
    cases, skipped = [], Counter()
    for image in layout.get(extension=list(IMAGE_EXTENSIONS)):
        entities = image.get_entities()
        relative = Path(os.path.relpath(image.path, layout.root))
        suffix, datatype = entities.get("suffix"), entities.get("datatype")
        if suffix == "FLAIR" and datatype == "anat":
            cases.append(_case(layout, image, entities, relative))
        else:
            skipped[f"{suffix or 'no suffix'} (not FLAIR)"] += 1
    return sorted(cases, key=lambda case: case.key), dict(sorted(skipped.items()))


def _case(layout, image, entities: dict, relative: Path) -> Case:
    name = relative.name
    prefix = name[: name.rindex("_FLAIR")]  # the source entities, in the order BIDS gives them
    metadata = layout.get_metadata(image.path)
    sidecar = {key: metadata[key] for key in SIDECAR_FIELDS if key in metadata}
    keep = {key: value for key, value in entities.items() if key not in ("extension",)}
    description = metadata.get("SeriesDescription") or metadata.get("ProtocolName") or "FLAIR"
    return Case(prefix, str(image.path), "nifti", series_description=str(description), looks_like_flair=True,
                key=f"bids:{relative.as_posix()}",
                bids={"folder": relative.parent.as_posix(), "prefix": prefix, "entities": keep,
                      "sidecar": sidecar, "relative_path": relative.as_posix()})


def mask_sidecar(case: Case) -> dict:
    """The mask's sidecar JSON (BIDS derivatives: masks, and the common derivative fields)."""
    return {"Description": "Tumour (FLAIR abnormality) mask on the grid of the source FLAIR, by neuroseg",
            "Type": "Lesion", "Sources": [f"bids:raw:{case.bids['relative_path']}"],
            "SpatialReference": f"bids:raw:{case.bids['relative_path']}",  # the source's own grid
            "SourceSidecar": case.bids["sidecar"]}


def write_description(output: Path, dataset: Path, model_name: str, model_version: str) -> Path:
    """OUTDIR's ``dataset_description.json`` (a derivative dataset), README and ``.bidsignore``.

    The description and README are kept when present; a present ``.bidsignore`` (an earlier neuroseg's, or
    edited by hand) is kept too, with the patterns it lacks added at its end.
    """
    from neuroseg import __version__

    output.mkdir(parents=True, exist_ok=True)
    raw = json.loads((dataset / DESCRIPTION).read_text()) if (dataset / DESCRIPTION).is_file() else {}
    description = {
        "Name": f"neuroseg tumour masks of {raw.get('Name', dataset.name)}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "neuroseg", "Version": __version__,
                         "Description": f"FLAIR tumour segmentation (desc-{BIDS_DESC}); model {model_name} "
                                        f"{model_version}"}],
        "DatasetLinks": {"raw": _link(output, dataset)},
    }
    target = output / DESCRIPTION
    if not target.exists():
        atomic_write_text(target, json.dumps(description, indent=2) + "\n")
    readme = output / "README"
    if not readme.exists():
        atomic_write_text(readme, README.format(version=__version__, model=f"{model_name} {model_version}"))
    _update_bidsignore(output / ".bidsignore")
    return target


def _update_bidsignore(path: Path) -> None:
    """Write ``.bidsignore`` with IGNORED_OUTPUTS, or add to the one present the patterns it lacks."""
    present = path.read_text() if path.exists() else ""
    missing = [pattern for pattern in IGNORED_OUTPUTS if pattern not in present.splitlines()]
    if missing:
        separator = "\n" if present and not present.endswith("\n") else ""
        atomic_write_text(path, present + separator + "\n".join(missing) + "\n")


def _link(output: Path, dataset: Path) -> str:
    """Where the raw dataset is, relative when OUTDIR lies inside it (``derivatives/neuroseg``), else a file URI."""
    output, dataset = output.resolve(), dataset.resolve()
    if output.is_relative_to(dataset):
        return os.path.relpath(dataset, output) + "/"
    return dataset.as_uri()


def model_identity(model) -> tuple[str, str]:
    """The model's name and version from its metadata.json, read without loading torch."""
    import neuroseg

    folder = Path(model) if model is not None else Path(neuroseg.__file__).resolve().parent / "weights"
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
    except (OSError, ValueError):
        return "unknown", "unknown"
    return str(metadata.get("name", "unknown")), str(metadata.get("neuroseg_version", "unknown"))
