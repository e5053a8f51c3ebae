"""neuroseg compare on real scans: test-retest of the sample scan moved by a known transform, two different
patients, a DICOM pair, a BIDS dataset, and the command's refusals."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroseg.cli.main import app
from neuroseg.export.nifti import write_nifti
from neuroseg.io import load_volume
from neuroseg.longitudinal.compare import TimePoint, compare, compare_time_points
from neuroseg.longitudinal.register import head_mask, rotation_angle
from neuroseg.longitudinal.response import CAVEAT, STABLE
from neuroseg.longitudinal.simulate import moved_copy, rigid_matrix
from tests.conftest import REPO, blob_volume, bright_model, shared_path

SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"
runner = CliRunner()


def moved_sample(motion_degrees=(10.0, 0.0, 0.0), shift=(8.0, 0.0, 0.0), spacing=(1.0, 1.0, 5.0)):
    """The sample scan, its head turned about its centre and shifted, on a 1 x 1 x 5 mm grid."""
    volume = load_volume(SAMPLE)
    centre = (volume.affine @ np.r_[np.argwhere(head_mask(volume)).mean(axis=0), 1.0])[:3]
    motion = rigid_matrix(motion_degrees, shift, centre)
    return volume, moved_copy(volume, motion, spacing), motion


@pytest.mark.slow
def test_retest_recovers_the_motion_at_the_tumour_and_is_stable(tmp_path):
    baseline, followup, motion = moved_sample()
    path = write_nifti(followup, tmp_path / "followup.nii.gz", np.float32)
    comparison, written = compare(SAMPLE, path, tmp_path / "out", device="cpu")  # the shipped model
    tumour = np.argwhere(comparison.baseline.mask.array > 0)
    assert len(tumour) > 1000
    world = np.c_[tumour, np.ones(len(tumour))] @ baseline.affine.T
    found = comparison.registration.matrix_ras()
    error = np.linalg.norm((world @ found.T - world @ motion.T)[:, :3], axis=1)
    assert error.max() < 1.0, error.max()
    assert rotation_angle(np.linalg.inv(motion) @ found) < 1.0
    assert comparison.registration.trusted
    assert comparison.category == STABLE
    # well inside the volumetric progression threshold (40 %): the shipped v2 model gave 18 % on this 5.5 mm scan
    # moved and resampled to 1 x 1 x 5 mm (v1 stayed under 15 %; retest on real scans: scripts/compare_retest.py)
    assert abs(comparison.volumetric["change_percent"]) < 25
    report = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert report["caveat"] == CAVEAT and report["response"]["rano_lgg"]["category"] == STABLE
    assert report["registration"]["same_head"] is True
    assert sorted(report["files"]) == sorted(p.name for p in written)
    change = nib.load(str(tmp_path / "out" / "change.nii.gz"))
    assert change.shape == baseline.shape and np.allclose(change.affine, baseline.affine, atol=1e-4)
    assert set(np.unique(np.asarray(change.dataobj))) <= {0, 1, 2, 3}
    # each visit's volume is from its own voxel size: the follow-up has 1 x 1 x 5 mm voxels
    assert report["followup"]["source"]["spacing_mm"] == [1.0, 1.0, 5.0]


def _labelled(case: str) -> TimePoint:
    image = load_volume(shared_path("lgg-flair", "imagesTr", f"{case}.nii.gz"))
    mask = load_volume(shared_path("lgg-flair", "labelsTr", f"{case}.nii.gz"))
    return TimePoint(image, image.with_array((mask.array > 0).astype(np.uint8)), {"path": case})


@pytest.mark.slow
def test_two_different_patients_are_flagged_and_get_no_category():
    comparison = compare_time_points(_labelled("TCGA_CS_4941_19960909"), _labelled("TCGA_CS_4942_19970222"))
    assert not comparison.registration.trusted
    assert comparison.category is None and comparison.volumetric["category"] is None
    assert comparison.rano["withheld"] and "not be the same head" in comparison.rano["rule"]
    assert any("NOT COMPARED" in w for w in comparison.warnings)
    assert comparison.to_json()["registration"]["same_head"] is False


def _head_shaped(point: TimePoint) -> TimePoint:
    """An lgg-flair case with a plausible voxel size (the release records none; its 1 mm is nominal): 0.9 mm
    pixels and slices spanning 143 mm, as scripts/compare_retest.py gives them."""
    from neuroseg.volume import Volume

    affine = np.diag([-0.9, -0.9, 143.0 / point.image.shape[2], 1.0])
    image = Volume(point.image.array, affine, point.image.meta)
    return TimePoint(image, image.with_array(point.mask.array), point.source)


@pytest.mark.slow
def test_a_real_patient_against_itself_moved_gets_a_category():
    """The other side of the verdict on real data: one lgg-flair patient against the same scan turned 10
    degrees and shifted 8 mm onto a 1 x 1 x 5 mm grid (its label moved with it) is one head, and is given
    a category; two different patients (above) are not."""
    baseline = _head_shaped(_labelled("TCGA_HT_7602_19951103"))
    centre = (baseline.image.affine @ np.r_[np.argwhere(head_mask(baseline.image)).mean(axis=0), 1.0])[:3]
    motion = rigid_matrix((0.0, 0.0, 10.0), (8.0, 0.0, 0.0), centre)
    image = moved_copy(baseline.image, motion)
    label = moved_copy(baseline.mask.with_array(baseline.mask.array.astype(np.float32)), motion)
    followup = TimePoint(image, image.with_array((label.array > 0.5).astype(np.uint8)), {"path": "moved"})
    comparison = compare_time_points(baseline, followup)
    assert comparison.registration.trusted, comparison.registration.problems
    assert comparison.category is not None and comparison.volumetric["category"] is not None
    assert not any("NOT COMPARED" in w for w in comparison.warnings)


@pytest.mark.slow
def test_a_dicom_pair_from_the_sample_scan_one_moved(tmp_path):
    from tests.dicom_factory import new_study, write_series

    baseline, followup, _ = moved_sample(motion_degrees=(0.0, 0.0, 6.0), shift=(5.0, -4.0, 0.0),
                                         spacing=(0.9, 0.9, 5.5))
    study = new_study()
    write_series(baseline.with_array(np.clip(baseline.array, 0, 4000)), tmp_path / "visit1", study=study)
    write_series(followup.with_array(np.clip(followup.array, 0, 4000)), tmp_path / "visit2",
                 study=new_study(date="20250102"))
    out = tmp_path / "out"
    # the shipped model: a random one marks specks everywhere, thousands of lesions to measure
    result = runner.invoke(app, ["compare", str(tmp_path / "visit1"), str(tmp_path / "visit2"), "-o", str(out),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "compare.json").read_text())
    assert report["baseline"]["source"]["format"] == "dicom" and report["baseline"]["source"]["series_uid"]
    assert report["registration"]["same_head"] is True, report["registration"]["quality"]
    assert abs(report["registration"]["rotation_degrees"] - 6.0) < 1.0
    assert "RANO also weighs" in result.output
    assert nib.load(str(out / "change.nii.gz")).shape == baseline.shape
    assert (out / "change.dcm").is_file() and "change.dcm" in report["files"]  # the change map as a SEG
    assert (out / "compare.html").is_file()


def _textured_head(radius: float) -> np.ndarray:
    """A head-like ellipsoid with grey/white-like texture (what a registration aligns) and a bright blob."""
    volume = blob_volume(shape=(48, 56, 16), centre=(16, 30, 8), radius=radius)
    i, j, k = np.indices(volume.shape)
    texture = 30 * np.sin(i / 3.0) * np.cos(j / 4.0) + 10 * np.cos(k / 2.0)
    return np.where(volume.array > 0, volume.array + texture, 0).astype(np.int16)


def _bids(root, sessions=("1", "2", "3")):
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.10.0"}))
    for subject, count in (("01", 3), ("02", 1)):
        for session in sessions[:count]:
            path = root / f"sub-{subject}" / f"ses-{session}" / "anat" / f"sub-{subject}_ses-{session}_FLAIR.nii.gz"
            path.parent.mkdir(parents=True)
            nib.Nifti1Image(_textured_head(4.0 + 0.75 * int(session)), np.diag([-0.9, -0.9, 4.0, 1.0])).to_filename(str(path))
    return root


def test_bids_compares_each_session_with_the_first_and_the_previous(tmp_path):
    pytest.importorskip("bids", reason="needs pybids: pip install 'neuroseg[bids]'")
    from neuroseg.inference import Segmenter
    from neuroseg.longitudinal.bids import compare_bids

    root = _bids(tmp_path / "ds")
    out = tmp_path / "out"
    segmented = []
    segmenter = Segmenter(bright_model(), device="cpu")  # marks the bright blob: a known mask
    counting = type("Counting", (), {"segment": lambda self, v, **kw: segmented.append(v) or segmenter.segment(v, **kw)})()
    compare_bids(root, out, model=counting, log=lambda row: None)
    assert len(segmented) == 3  # each session once, though session 1 and 2 are in two pairs each
    rows = list(csv.DictReader((out / "longitudinal.csv").open()))
    assert [(r["subject"], r["baseline_session"], r["followup_session"], r["against"]) for r in rows] == \
        [("01", "1", "2", "first+previous"), ("01", "1", "3", "first"), ("01", "2", "3", "previous")]
    assert all(r["status"] == "done" and r["same_head"] == "True" for r in rows), [(r["status"], r["same_head"], r.get("head_dice"), r.get("error")) for r in rows]
    for row in rows:
        assert (out / row["folder"] / "compare.json").is_file() and (out / row["folder"] / "compare.png").is_file()
    assert [float(r["volume_change_percent"]) > 0 for r in rows] == [True, True, True]  # the blob grows
    assert len({r["volume_baseline_ml"] for r in rows}) == 2


def test_compare_refuses_bad_arguments_in_one_line(tmp_path):
    missing = runner.invoke(app, ["compare", str(tmp_path / "nothing.nii.gz"), str(SAMPLE), "-o", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "Input not found" in missing.output
    alone = runner.invoke(app, ["compare", str(SAMPLE), "-o", str(tmp_path / "o")])
    assert alone.exit_code == 2 and "BASELINE and FOLLOWUP" in alone.output
    both = runner.invoke(app, ["compare", str(SAMPLE), str(SAMPLE), "--bids", str(tmp_path), "-o", str(tmp_path / "o")])
    assert both.exit_code == 2
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "compare.json").write_text("{}")
    exists = runner.invoke(app, ["compare", str(SAMPLE), str(SAMPLE), "-o", str(tmp_path / "o")])
    assert exists.exit_code == 3 and "--force" in exists.output
    assert not (tmp_path / "o" / "change.nii.gz").exists()


@pytest.mark.slow
def test_a_thin_slice_patient_moved_onto_5mm_slices_is_recovered_within_1mm_at_the_tumour():
    """TCGA_DU_7014 has 2.4 mm slices, two of them to a 5 mm slice of its moved copy: the retest once found
    it 1.2 mm off, an offset of the simulated copy (an off-centre box), not of the registration."""
    from neuroseg.longitudinal.register import register

    baseline = _head_shaped(_labelled("TCGA_DU_7014_19860618"))
    centre = (baseline.image.affine @ np.r_[np.argwhere(head_mask(baseline.image)).mean(axis=0), 1.0])[:3]
    motion = rigid_matrix((0.0, 10.0, 0.0), (0.0, 0.0, 8.0), centre)
    found = register(baseline.image, moved_copy(baseline.image, motion)).matrix_ras()
    tumour = np.argwhere(baseline.mask.array > 0)
    points = np.c_[tumour, np.ones(len(tumour))] @ baseline.image.affine.T
    error = np.linalg.norm((points @ found.T - points @ motion.T)[:, :3], axis=1)
    assert error.max() < 1.0
    assert rotation_angle(np.linalg.inv(motion) @ found) < 1.0
