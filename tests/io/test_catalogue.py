"""The series catalogue (io.catalogue), the FLAIR classifier (io.flair), the choice of the series
(io.selection) and batch's NIfTI walk (batch.walk)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset

from neuroseg.errors import InputError
from neuroseg.io import load_volume
from neuroseg.batch.walk import EARLIER_OUTPUTS, LABEL_MAPS, describe_skipped, walk_nifti
from neuroseg.io.catalogue import load_dicom_series, orientation_label, scan_dicom
from neuroseg.io.flair import flair_evidence
from tests.conftest import blob_volume, shared_path
from tests.dicom_factory import axial_affine, new_study, oblique_affine, sagittal_affine, write_series


def header(**fields) -> Dataset:
    ds = Dataset()
    for name, value in fields.items():
        setattr(ds, name, value)
    return ds


@pytest.mark.parametrize("fields, expected", [
    ({"SeriesDescription": "AX T2 FLAIR"}, True),
    ({"SeriesDescription": "t2_tirm_tra_dark-fluid", "ScanningSequence": ["SE", "IR"], "InversionTime": 2500}, True),
    ({"ProtocolName": "Sag CUBE FLAIR", "InversionTime": 1800}, True),
    ({"SeriesDescription": "ax 5mm", "ScanningSequence": ["SE", "IR"], "InversionTime": 2200}, True),
    ({"SeriesDescription": "AX T1 FLAIR", "InversionTime": 860}, False),
    ({"SeriesDescription": "T1-FLAIR post"}, False),
    ({"SeriesDescription": "t1_MPRAGE", "ScanningSequence": ["GR", "IR"], "InversionTime": 850}, False),
    ({"SeriesDescription": "STIR cor", "ScanningSequence": ["SE", "IR"], "InversionTime": 160}, False),
    ({"SeriesDescription": "AX T2 FSE", "ScanningSequence": "SE"}, False),
    ({}, False),
])
def test_flair_evidence(fields, expected):
    looks, reason = flair_evidence(header(**fields))
    assert looks is expected, reason
    assert reason


def test_orientation_labels():
    assert orientation_label([0, 0, 1]) == "axial"
    assert orientation_label([-1, 0, 0]) == "sagittal"
    assert orientation_label([0, 0.99, 0.14]) == "coronal"
    assert orientation_label([0, 0.5, 0.866]) == "oblique axial"


def test_preference_among_flair_series_and_listing(tmp_path):
    study = new_study()
    write_series(blob_volume(affine=sagittal_affine()), tmp_path / "sag", study=study, series_uid="1.2.5", number=5,
                 description="SAG FLAIR")
    write_series(blob_volume(affine=oblique_affine()), tmp_path / "ax", study=study, series_uid="1.2.6", number=6)
    write_series(blob_volume(), tmp_path / "gap", study=study, series_uid="1.2.7", number=7, skip=(4,))
    catalogue = scan_dicom(tmp_path)
    (only,) = catalogue.studies
    assert only.chosen.uid == "1.2.6" and "preferred over 1 other FLAIR" in only.reason
    summary = {s["series_uid"]: s for s in only.summary()["series"]}
    assert summary["1.2.6"]["action"] == "process" and summary["1.2.6"]["orientation"] == "oblique axial"
    assert summary["1.2.5"]["orientation"] == "sagittal" and "preferred" in summary["1.2.5"]["why"]
    assert "missing slice" in summary["1.2.7"]["why"] and summary["1.2.7"]["slices"] == 11
    assert summary["1.2.6"]["spacing_mm"] == [0.9, 0.9, 4.0]


def test_two_studies_with_flair_need_a_choice(tmp_path):
    write_series(blob_volume(), tmp_path / "one", series_uid="1.2.1")
    write_series(blob_volume(affine=axial_affine()), tmp_path / "two", series_uid="1.2.2")
    with pytest.raises(InputError, match="2 studies with a FLAIR series; choose one with --series"):
        load_dicom_series(tmp_path)
    assert load_dicom_series(tmp_path, series_uid="1.2.2").meta["series_uid"] == "1.2.2"


def test_real_study_listing():
    catalogue = scan_dicom(shared_path("dicom", "study-trio-b17"))
    (study,) = catalogue.studies
    assert study.chosen is None and "no usable series looks like FLAIR" in study.reason
    rows = {s.number: s for s in study.series}
    assert sorted(rows) == [2, 3, 19]
    assert not any(s.looks_like_flair for s in study.series)
    assert rows[19].orientation == "sagittal" and rows[19].n_slices == 176 and rows[19].size == "256x256"
    assert "850 ms" in rows[19].flair_reason
    assert rows[2].n_slices == 36 and rows[2].spacing == [3.0, 3.0, 3.6]
    assert catalogue.unreadable == []  # the .nfo text files are not DICOM and are passed over


def test_walk_nifti_leaves_out_label_maps_and_earlier_outputs(tmp_path):
    for name in ("imagesTr/a.nii.gz", "labelsTr/a.nii.gz", "labelsTs/sub/b.nii", "notes/c.nii.gz",
                 "results/scan/mask.nii.gz", "results/scan/seg.dcm", "current/x/mask.nii.gz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "results" / "scan" / "report.json").write_text('{"neuroseg_version": "0.1"}')
    (tmp_path / "current" / "x" / "report.json").write_text('{"neuroseg_version": "0.1"}')
    (tmp_path / "notes" / "report.json").write_text('{"title": "some other tool"}')  # not ours: searched
    walk = walk_nifti(tmp_path, exclude=[tmp_path / "current"])
    assert walk.nifti == [tmp_path / "imagesTr" / "a.nii.gz", tmp_path / "notes" / "c.nii.gz"]
    assert sorted(walk.left_out) == [tmp_path / "labelsTr", tmp_path / "labelsTs", tmp_path / "results" / "scan"]
    assert walk.skipped == {LABEL_MAPS: 2, EARLIER_OUTPUTS: 2}  # the excluded folder is not counted
    assert describe_skipped(walk.skipped).startswith("skipped 4 files: 2 in labelsTr/labelsTs (label maps, not "
                                                     "scans), 2 in earlier neuroseg output folders")
    assert describe_skipped(walk_nifti(tmp_path / "imagesTr").skipped) == ""


def test_run_refuses_a_folder_that_holds_nifti_files_besides_dicom(tmp_path):
    volume = blob_volume()
    write_series(volume, tmp_path / "dicom", series_uid="1.2.9")
    (tmp_path / "nifti").mkdir()
    nib.Nifti1Image(volume.array, volume.affine).to_filename(tmp_path / "nifti" / "scan.nii.gz")
    with pytest.raises(InputError, match=r"holds 1 NIfTI file \(nifti/scan\.nii\.gz\) besides DICOM series; "
                                         r"'neuroseg run' reads one input.*'neuroseg batch'"):
        load_volume(tmp_path)
    assert load_volume(tmp_path, series_uid="1.2.9").meta["series_uid"] == "1.2.9"  # named: nothing is hidden
    empty = tmp_path / "nifti"
    with pytest.raises(InputError, match=r"no DICOM series found; it holds 1 NIfTI file \(scan\.nii\.gz\)"):
        load_volume(empty)


@pytest.mark.parametrize("same_study", [False, True], ids=["two-studies", "one-study"])
def test_run_refuses_when_a_flair_series_was_passed_over_as_unreadable(tmp_path, same_study):
    study = new_study()
    write_series(blob_volume(), tmp_path / "good", study=study, series_uid="1.2.1", number=3)
    write_series(blob_volume(affine=axial_affine()), tmp_path / "gap", study=study if same_study else None,
                 series_uid="1.2.2", number=4, description="AX FLAIR 2", skip=(5,))
    with pytest.raises(InputError, match=r"FLAIR series 4 'AX FLAIR 2' 1\.2\.2 cannot be read \(1 missing slice.*"
                                         r"would process only series 3 .*--series 1\.2\.1.*neuroseg scan"):
        load_dicom_series(tmp_path)
    assert load_dicom_series(tmp_path, series_uid="1.2.1").meta["series_uid"] == "1.2.1"
    assert [s.chosen.uid for s in scan_dicom(tmp_path).studies if s.chosen] == ["1.2.1"]  # scan still lists it


def test_run_cli_refusal_is_one_line_with_exit_code_2(tmp_path, tiny_model):
    from typer.testing import CliRunner

    from neuroseg.cli.main import app

    write_series(blob_volume(), tmp_path / "in" / "dicom")
    nib.Nifti1Image(blob_volume().array, np.eye(4)).to_filename(tmp_path / "in" / "other.nii.gz")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                      "--model", str(tiny_model)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("neuroseg: error: ") and "1 NIfTI file (other.nii.gz)" in line
    assert not (tmp_path / "out").exists()


def test_a_seg_naming_flair_in_the_folder_is_no_flair_series(tmp_path):
    import dataclasses

    from neuroseg.export.dicom_seg import write_dicom_seg
    from neuroseg.inference import Segmenter
    from tests.conftest import bright_model

    write_series(blob_volume(), tmp_path / "flair", series_uid="1.2.3")
    result = Segmenter(bright_model(), device="cpu").segment(tmp_path / "flair")
    result = dataclasses.replace(result, model=dataclasses.replace(result.model, name="lgg-flair"))  # a FLAIR-named model
    write_dicom_seg(result, tmp_path / "flair" / "seg.dcm")
    (study,) = scan_dicom(tmp_path).studies
    seg = next(s for s in study.series if s.modality == "SEG")
    assert "flair" in seg.description and not seg.looks_like_flair and seg.problem == "modality SEG is not MR"
    assert load_dicom_series(tmp_path).meta["series_uid"] == "1.2.3"


def test_linked_folders_are_searched_once_and_a_link_loop_ends(tmp_path):
    archive, elsewhere = tmp_path / "archive", tmp_path / "elsewhere"
    write_series(blob_volume(), elsewhere / "study" / "flair", series_uid="1.2.77.1")
    volume = blob_volume()
    (elsewhere / "nifti").mkdir()
    nib.Nifti1Image(volume.array, volume.affine).to_filename(str(elsewhere / "nifti" / "scan.nii.gz"))
    archive.mkdir()
    (archive / "study").symlink_to(elsewhere / "study", target_is_directory=True)
    (archive / "nifti").symlink_to(elsewhere / "nifti", target_is_directory=True)
    (elsewhere / "nifti" / "loop").symlink_to(archive, target_is_directory=True)  # back up the tree
    assert [s.uid for s in scan_dicom(archive).series] == ["1.2.77.1"]
    assert [p.name for p in walk_nifti(archive).nifti] == ["scan.nii.gz"]
