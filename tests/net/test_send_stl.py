"""``neuroseg send`` sends the Encapsulated STL (stl.dcm, written with --mesh on DICOM input) with the SEG,
and a real Orthanc stores it in the source study."""

from __future__ import annotations

import io

import pydicom
import pytest

from tests.net.conftest import NEUROSEG_AE, flair_study
from tests.net.orthanc import PASSWORD, USER

pytest.importorskip("pynetdicom", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")
pytest.importorskip("skimage", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")

from neuroseg.cli.main import main


def test_send_stores_the_stl_beside_the_seg_in_orthanc(tmp_path, orthanc, capsys, monkeypatch):
    import requests

    from neuroseg.export.writer import write_outputs
    from neuroseg.inference import Segmenter
    from neuroseg.net import dimse
    from tests.conftest import bright_model

    monkeypatch.setattr(dimse, "RETRY_DELAYS_S", (0.05, 0.05))
    files, study = flair_study(tmp_path / "source")
    orthanc.upload(files)
    result = Segmenter(bright_model(), device="cpu").segment(tmp_path / "source")
    assert result.mask.array.any()
    write_outputs(result, tmp_path / "out", output_format="dicom-seg", viewer=False, mesh=True)
    code = main(["send", str(tmp_path / "out"), "--to", orthanc.peer, "--ae-title", NEUROSEG_AE])
    output = capsys.readouterr().out
    assert code == 0, output
    assert "stored: stl.dcm" in output and "NOT stored" not in output
    stored = orthanc.instances(study["study_uid"], modality="M3D")
    sent = pydicom.dcmread(tmp_path / "out" / "stl.dcm", stop_before_pixels=True)
    assert [item["MainDicomTags"]["SOPInstanceUID"] for item in stored] == [sent.SOPInstanceUID]
    reply = requests.get(f"{orthanc.url}/instances/{stored[0]['ID']}/file", auth=(USER, PASSWORD), timeout=30)
    reply.raise_for_status()
    assert bytes(pydicom.dcmread(io.BytesIO(reply.content)).EncapsulatedDocument) == \
        (tmp_path / "out" / "tumour.stl").read_bytes()
