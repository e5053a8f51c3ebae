"""A BIDS dataset in: only the FLAIRs are segmented, with their sidecars; BIDS derivatives out, validated."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuroseg.batch import run_batch
from tests.batch.helpers import leftovers
from tests.conftest import blob_volume

SUBJECTS, SESSIONS = ("01", "02", "03"), ("1", "2")


def write_image(path: Path, shape=None):
    volume = blob_volume()
    array = volume.array if shape is None else np.zeros(shape, np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(array.astype(np.int16), volume.affine)
    image.header.set_xyzt_units("mm", "sec")
    image.to_filename(str(path))


def bids_dataset(root: Path) -> Path:
    """3 subjects x 2 sessions: FLAIR (with a sidecar), T1w, dwi (+ bval/bvec) and bold (+ sidecar)."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "synthetic", "BIDSVersion": "1.10.0"}))
    (root / "participants.tsv").write_text("participant_id\n" + "".join(f"sub-{s}\n" for s in SUBJECTS))
    (root / "README").write_text("A synthetic dataset for neuroseg's tests.\n")
    (root / "task-rest_bold.json").write_text(json.dumps({"TaskName": "rest", "RepetitionTime": 2.0}))
    for subject in SUBJECTS:
        for session in SESSIONS:
            base = root / f"sub-{subject}" / f"ses-{session}"
            stem = f"sub-{subject}_ses-{session}"
            write_image(base / "anat" / f"{stem}_FLAIR.nii.gz")
            (base / "anat" / f"{stem}_FLAIR.json").write_text(json.dumps(
                {"MagneticFieldStrength": 3, "SequenceName": "tir2d1_16", "InversionTime": 2.5, "EchoTime": 0.08}))
            write_image(base / "anat" / f"{stem}_T1w.nii.gz")
            write_image(base / "dwi" / f"{stem}_dwi.nii.gz", shape=(8, 8, 4, 3))
            (base / "dwi" / f"{stem}_dwi.bval").write_text("0 1000 1000\n")
            (base / "dwi" / f"{stem}_dwi.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n")
            write_image(base / "func" / f"{stem}_task-rest_bold.nii.gz", shape=(8, 8, 4, 5))
    return root


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, tiny_model):
    pytest.importorskip("bids", reason="needs pybids: pip install 'neuroseg[bids]'")
    root = bids_dataset(tmp_path_factory.mktemp("bids") / "ds")
    out = root / "derivatives" / "neuroseg"
    result = run_batch(root, out, model=tiny_model, device="cpu", workers=2)
    return root, out, result


def test_only_the_flairs_are_segmented(segmented):
    root, out, result = segmented
    assert result.failed == 0 and result.count("done") == 6
    assert sorted(row["case"] for row in result.rows) == [f"sub-{s}_ses-{e}" for s in SUBJECTS for e in SESSIONS]
    assert all(row["source"].endswith("_FLAIR.nii.gz") for row in result.rows)
    assert result.skipped_files == {"T1w (not FLAIR)": 6, "bold (not FLAIR)": 6, "dwi (not FLAIR)": 6}
    assert result.skipped_line.startswith("skipped 18 files: 6 T1w (not FLAIR)")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_files"] == result.skipped_files


def test_derivatives_are_named_by_the_bids_spec(segmented, tiny_model):
    root, out, _ = segmented
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    generated = description["GeneratedBy"][0]
    assert generated["Name"] == "neuroseg" and generated["Version"] and "tiny-test-model" in generated["Description"]
    anat = out / "sub-02" / "ses-1" / "anat"
    stem = "sub-02_ses-1_desc-tumour"
    assert (out / "README").is_file() and "*_qc.png" in (out / ".bidsignore").read_text()
    assert sorted(p.name for p in anat.iterdir()) == sorted(
        f"{stem}_{suffix}" for suffix in ("mask.nii.gz", "mask.json", "qc.png", "report.json", "viewer.html"))
    mask = nib.load(anat / f"{stem}_mask.nii.gz")
    source = nib.load(root / "sub-02" / "ses-1" / "anat" / "sub-02_ses-1_FLAIR.nii.gz")
    assert mask.shape == source.shape and np.allclose(mask.affine, source.affine)
    sidecar = json.loads((anat / f"{stem}_mask.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-02/ses-1/anat/sub-02_ses-1_FLAIR.nii.gz"]
    report = json.loads((anat / f"{stem}_report.json").read_text())
    assert report["input"]["bids"]["sidecar"]["MagneticFieldStrength"] == 3
    assert report["input"]["bids"]["entities"]["subject"] == "02"
    assert sorted(report["files"]) == sorted(p.name for p in anat.iterdir())
    assert leftovers(out) == [] and not (out / "sub-01" / "ses-1" / "func").exists()
    # a rerun reuses every case
    again = run_batch(root, out, model=tiny_model, device="cpu")
    assert again.count("done earlier") == 6


def validator() -> list[str] | None:
    """The BIDS validator's command: its PyPI build, ``bids-validator-deno`` (the same program as npm's 2.x)."""
    return ["bids-validator-deno"] if shutil.which("bids-validator-deno") else None


def test_derivatives_pass_the_bids_validator(segmented):
    command = validator()
    if command is None:
        pytest.skip("no BIDS validator installed (pip install bids-validator-deno)")
    _, out, _ = segmented
    codes, errors = validate(command, out)
    assert not errors, errors[:3]
    assert codes <= {"TOO_FEW_AUTHORS"}, codes  # a warning: who the authors are, neuroseg cannot know
    stray = out / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_tumourmask.nii.gz"  # the validator does check
    shutil.copy(out / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_desc-tumour_mask.nii.gz", stray)
    try:
        assert "NOT_INCLUDED" in {issue["code"] for issue in validate(command, out)[1]}
    finally:
        stray.unlink()


def validate(command, folder) -> tuple[set, list]:
    """The codes of every issue, and the errors, the validator finds in ``folder``."""
    run = subprocess.run([*command, "--format", "json", str(folder)], capture_output=True, text=True, timeout=120)
    issues = json.loads(run.stdout)["issues"]["issues"]
    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert (run.returncode == 0) == (not errors)
    return {issue["code"] for issue in issues}, errors


def test_without_pybids_a_bids_dataset_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from neuroseg.errors import NeurosegError

    root = tmp_path / "ds"
    write_image(root / "sub-01" / "anat" / "sub-01_FLAIR.nii.gz")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0"}))
    monkeypatch.setitem(sys.modules, "bids", None)
    with pytest.raises(NeurosegError, match=r"is a BIDS dataset; reading one needs pybids: pip install"):
        run_batch(root, tmp_path / "out")


def test_every_output_has_a_bids_name_with_the_case_entities():
    """Each file a case can write (the DICOM ones and the meshes, stl.dcm included) gets the case's BIDS
    prefix: an unprefixed name would be shared by every FLAIR of the subject's folder."""
    from neuroseg.batch.cases import Case
    from neuroseg.batch.paths import case_paths
    from neuroseg.export.dicom_stl import STL_DICOM_FILE
    from neuroseg.export.writer import output_names

    prefix = "sub-01_ses-1_acq-2d"
    case = Case(prefix, "in.nii.gz", "nifti", bids={"folder": "sub-01/ses-1/anat", "prefix": prefix})
    paths = case_paths(case, Path("out"))
    standard = set(output_names("both", probabilities=True, mesh=True)) | set(output_names("nifti", mesh=True))
    assert STL_DICOM_FILE in standard
    names = {name: paths.name(name) for name in standard}
    assert all(name.startswith(f"{prefix}_desc-tumour_") for name in names.values()), names
    assert len(set(names.values())) == len(names)
    assert paths.path(STL_DICOM_FILE) == Path("out/sub-01/ses-1/anat") / f"{prefix}_desc-tumour_surface.dcm"


# the .bidsignore of neuroseg before --mesh, and a line of the user's
OLD_BIDSIGNORE = ("*_report.json\n*_qc.png\n*_viewer.html\nindex.html\nsummary.csv\nsummary.json\nsummary.shard-*\n"
                  ".neuroseg-*\nnotes/\n")


def test_a_present_bidsignore_is_kept_and_completed(tmp_path):
    from neuroseg.batch.bids import IGNORED_OUTPUTS, write_description

    dataset, out = tmp_path / "ds", tmp_path / "ds" / "derivatives" / "neuroseg"
    dataset.mkdir()
    out.mkdir(parents=True)
    (out / ".bidsignore").write_text(OLD_BIDSIGNORE.rstrip("\n"))  # no final newline
    write_description(out, dataset, "m", "1")
    lines = (out / ".bidsignore").read_text().splitlines()
    assert lines[:9] == OLD_BIDSIGNORE.splitlines()
    assert sorted(lines) == sorted({*IGNORED_OUTPUTS, "notes/"}) and len(lines) == len(set(lines))
    assert {"*_surface.stl", "*_surface.obj", "*_surface.gii"} <= set(lines)
    write_description(out, dataset, "m", "1")  # nothing left to add: unchanged
    assert (out / ".bidsignore").read_text().splitlines() == lines


@pytest.mark.slow  # a segmentation, its mesh and two validator runs: about 15 s on a busy 2-core machine
def test_mesh_derivatives_pass_the_bids_validator(tmp_path):
    """``batch --mesh`` over a BIDS dataset whose derivatives folder holds an older neuroseg's .bidsignore:
    the surfaces carry the case's entities, and the derivatives pass the validator, which does flag them
    when .bidsignore does not list them (BIDS has no surface-geometry files)."""
    command = validator()
    if command is None:
        pytest.skip("no BIDS validator installed (pip install bids-validator-deno)")
    pytest.importorskip("bids", reason="needs pybids: pip install 'neuroseg[bids]'")
    pytest.importorskip("skimage", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")
    from neuroseg.inference import Segmenter
    from tests.conftest import bright_model

    root = tmp_path / "ds"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "synthetic", "BIDSVersion": "1.10.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-01\n")
    (root / "README").write_text("A synthetic dataset for neuroseg's tests.\n")
    write_image(root / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_FLAIR.nii.gz")
    out = root / "derivatives" / "neuroseg"
    out.mkdir(parents=True)
    (out / ".bidsignore").write_text(OLD_BIDSIGNORE)
    result = run_batch(root, out, segmenter=Segmenter(bright_model(), device="cpu"), workers=0, mesh=True)
    assert result.count("done") == 1, result.rows
    anat = out / "sub-01" / "ses-1" / "anat"
    surfaces = [anat / f"sub-01_ses-1_desc-tumour_surface.{ext}" for ext in ("stl", "obj", "gii")]
    assert all(path.stat().st_size > 1000 for path in surfaces)  # the blob's surface, not an empty mesh
    assert "notes/" in (out / ".bidsignore").read_text()
    codes, errors = validate(command, out)
    assert not errors, errors[:3]
    assert codes <= {"TOO_FEW_AUTHORS"}, codes
    (out / ".bidsignore").write_text(OLD_BIDSIGNORE)  # without the surface patterns, the validator objects
    flagged = {issue["location"] for issue in validate(command, out)[1] if issue["code"] == "NOT_INCLUDED"}
    assert flagged == {"/" + path.relative_to(out).as_posix() for path in surfaces}
