"""send and pull against a real Orthanc, by DIMSE and by DICOMweb; the SEG read back checked against the mask."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from tests.net.conftest import NEUROSEG_AE, flair_study
from tests.net.orthanc import PASSWORD, USER

pytest.importorskip("pynetdicom", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")
pytest.importorskip("dicomweb_client", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")

from neuroseg.cli.main import main  # noqa: E402


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    import neuroseg.net.dicomweb as dicomweb
    import neuroseg.net.dimse as dimse

    monkeypatch.setattr(dimse, "RETRY_DELAYS_S", (0.05, 0.05))
    monkeypatch.setattr(dicomweb, "RETRY_DELAYS_S", (0.05, 0.05))


@pytest.fixture
def stored_study(tmp_path, orthanc):
    files, study = flair_study(tmp_path / "source")
    orthanc.upload(files)
    return files, study["study_uid"]


def web_client(orthanc):
    from neuroseg.net.auth import WebAuth, web_client

    return web_client(orthanc.dicomweb, WebAuth(USER, PASSWORD))


def segment_into(folder, output):
    from neuroseg.export.writer import write_outputs
    from neuroseg.inference import Segmenter
    from tests.conftest import bright_model

    result = Segmenter(bright_model(), device="cpu").segment(folder)
    write_outputs(result, output, output_format="both", viewer=False)
    return result


def read_back_seg(orthanc, study_uid):
    """QIDO-RS Modality=SEG, then WADO-RS each one."""
    client = web_client(orthanc)
    found = client.search_for_instances(study_instance_uid=study_uid, search_filters={"Modality": "SEG"})
    return [client.retrieve_instance(study_uid, item["0020000E"]["Value"][0], item["00080018"]["Value"][0])
            for item in found]


def check_seg_against_mask(seg_dataset, source_folder, mask_path, tmp_path):
    """dciodvfy-clean, and frame for frame the NIfTI mask over each source image."""
    import highdicom as hd
    import nibabel as nib

    from tests.export.test_dicom_seg import dciodvfy_errors, source_slice_index

    path = tmp_path / "readback.dcm"
    seg_dataset.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []
    nifti = nib.load(mask_path)
    mask = np.asarray(nifti.dataobj)
    assert mask.any()
    seg = hd.seg.segread(path)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(source_folder.rglob("*.dcm"))]
    frames = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], segment_numbers=[1],
                                               ignore_spatial_locations=True)[..., 0]
    for source, frame in zip(sources, frames):
        np.testing.assert_array_equal(frame, mask[:, :, source_slice_index(source, nifti.affine)].T)


def test_pull_dicomweb_segment_send_by_c_store(tmp_path, orthanc, stored_study, capsys):
    files, study_uid = stored_study
    code = main(["pull", "--dicomweb", orthanc.dicomweb, "--user", USER, "--password", PASSWORD,
                 "--study", study_uid, "-o", str(tmp_path / "pulled")])
    assert code == 0
    pulled = tmp_path / "pulled" / study_uid
    assert len(list(pulled.rglob("*.dcm"))) == len(files)
    assert PASSWORD not in capsys.readouterr().out
    segment_into(pulled, tmp_path / "out")
    code = main(["send", str(tmp_path / "out"), "--to", orthanc.peer, "--ae-title", NEUROSEG_AE])
    output = capsys.readouterr().out
    assert code == 0, output
    assert output.count("stored: seg.dcm") == 1 and "NOT stored" not in output
    segs = read_back_seg(orthanc, study_uid)
    assert len(segs) == 1
    check_seg_against_mask(segs[0], pulled, tmp_path / "out" / "mask.nii.gz", tmp_path)


def test_pull_c_get_segment_send_by_stow(tmp_path, orthanc, stored_study, capsys, monkeypatch):
    files, study_uid = stored_study
    code = main(["pull", "--from", orthanc.peer, "--ae-title", NEUROSEG_AE, "--study", study_uid,
                 "-o", str(tmp_path / "pulled")])
    assert code == 0, capsys.readouterr()
    pulled = tmp_path / "pulled" / study_uid
    assert sorted(p.name for p in pulled.rglob("*.dcm")) == sorted(
        f"{pydicom.dcmread(f).SOPInstanceUID}.dcm" for f in files)
    segment_into(pulled, tmp_path / "out")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    code = main(["send", str(tmp_path / "out" / "seg.dcm"), "--dicomweb", orthanc.dicomweb, "--user", USER,
                 "--password-file", str(tmp_path / "pw")])
    output = capsys.readouterr()
    assert code == 0, output
    assert PASSWORD not in output.out + output.err
    segs = read_back_seg(orthanc, study_uid)
    assert len(segs) == 1
    check_seg_against_mask(segs[0], pulled, tmp_path / "out" / "mask.nii.gz", tmp_path)


def test_c_get_refused_for_an_unlisted_ae_title(tmp_path, orthanc, stored_study, capsys):
    _, study_uid = stored_study
    code = main(["pull", "--from", orthanc.peer, "--ae-title", "STRANGER", "--study", study_uid,
                 "-o", str(tmp_path / "pulled")])
    assert code == 7
    assert capsys.readouterr().err.startswith("neuroseg: error: ")


def test_wrong_password_is_one_line_exit_7_and_not_printed(tmp_path, orthanc, stored_study, capsys, monkeypatch):
    _, study_uid = stored_study
    segment_into(tmp_path / "source", tmp_path / "out")
    monkeypatch.setenv("NEUROSEG_DICOMWEB_PASSWORD", "wrong-secret-123")
    code = main(["send", str(tmp_path / "out"), "--dicomweb", orthanc.dicomweb, "--user", USER])
    output = capsys.readouterr()
    assert code == 7
    assert "HTTP 401" in output.err and len(output.err.strip().splitlines()) == 1
    assert "wrong-secret-123" not in output.out + output.err


def test_unreachable_peer_is_retried_then_exit_7(tmp_path, capsys):
    from tests.net.orthanc import free_port

    flair_study(tmp_path / "source")
    segment_into(tmp_path / "source", tmp_path / "out")
    code = main(["send", str(tmp_path / "out"), "--to", f"NOBODY@127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 7 and err.startswith("neuroseg: error: cannot reach NOBODY@127.0.0.1")


def test_send_refuses_a_folder_without_seg(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["send", str(tmp_path / "out"), "--to", "X@127.0.0.1:1"]) == 2
    assert "holds no seg.dcm" in capsys.readouterr().err


def test_pull_run_segments_the_pulled_study_as_run_does(tmp_path, orthanc, stored_study, capsys):
    """`pull --run OUT` as a user types it: the study fetched by DICOMweb, then segmented into OUT
    (mask, SEG, report, QC, viewer) with exit 0."""
    import json

    files, study_uid = stored_study
    code = main(["pull", "--dicomweb", orthanc.dicomweb, "--user", USER, "--password", PASSWORD,
                 "--study", study_uid, "-o", str(tmp_path / "pulled"), "--run", str(tmp_path / "out"),
                 "--device", "cpu"])
    output = capsys.readouterr()
    assert code == 0, output.err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["files"]) >= {"seg.dcm", "mask.nii.gz", "qc.png", "viewer.html", "report.json"}
    assert report["input"]["format"] == "dicom" and report["input_checks"]["forced"] is False


def test_pull_mesh_without_run_is_refused_in_one_line_before_any_network(tmp_path, capsys):
    code = main(["pull", "--dicomweb", "http://127.0.0.1:1/dicom-web", "--study", "1.2.3",
                 "-o", str(tmp_path / "pulled"), "--mesh"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "neuroseg: error: --mesh needs --run: the surface is made from the run's mask"
    assert not (tmp_path / "pulled").exists()


@pytest.mark.slow  # an Orthanc pull, a segmentation and a mesh: 38 s on a busy 2-core machine
def test_pull_run_mesh_writes_the_surfaces_and_the_encapsulated_stl(tmp_path, orthanc, stored_study, capsys,
                                                                    monkeypatch):
    """`pull --run OUT --mesh`: OUT holds tumour.stl/.obj/.gii and stl.dcm (the same STL, in the pulled study),
    all listed in the report. The bright model stands in for the shipped one (a known tumour, in seconds)."""
    import json

    pytest.importorskip("skimage", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")
    import neuroseg.inference
    from tests.conftest import bright_model

    real = neuroseg.inference.Segmenter
    monkeypatch.setattr(neuroseg.inference, "Segmenter", lambda model, **options: real(bright_model(), **options))
    files, study_uid = stored_study
    out = tmp_path / "out"
    code = main(["pull", "--dicomweb", orthanc.dicomweb, "--user", USER, "--password", PASSWORD,
                 "--study", study_uid, "-o", str(tmp_path / "pulled"), "--run", str(out), "--mesh", "--device", "cpu"])
    output = capsys.readouterr()
    assert code == 0, output.err
    report = json.loads((out / "report.json").read_text())
    meshes = {"tumour.stl", "tumour.obj", "tumour.gii", "stl.dcm"}
    assert report["tumour_found"] and meshes <= set(report["files"])
    assert all((out / name).stat().st_size > 0 for name in meshes)
    assert report["mesh"]["lesions"] and not report["mesh"]["lesions"][0]["failures"]
    stl = pydicom.dcmread(out / "stl.dcm")
    assert stl.Modality == "M3D" and stl.StudyInstanceUID == study_uid
    assert bytes(stl.EncapsulatedDocument) == (out / "tumour.stl").read_bytes()
