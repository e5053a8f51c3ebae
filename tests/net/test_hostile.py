"""Hostile input over the wire, and PHI kept out of every log: each item is refused or stored, never crashes the
node, never writes outside the spool nor past its limit. Each test states the outcome it asserts."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from tests.net.conftest import NEUROSEG_AE, flair_study, listeners
from tests.net.orthanc import free_port

pytest.importorskip("pynetdicom", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")

from neuroseg.net.address import parse_peer  # noqa: E402
from neuroseg.net.listen import SENT, StudyStates  # noqa: E402

SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000
PHI = {"PatientName": "Qwertyson^Zelda", "PatientID": "PHI-ID-98765", "PatientBirthDate": "19311231",
       "AccessionNumber": "ACC-PHI-4242"}


@pytest.fixture
def node(tmp_path):
    """A clear-text listener that never segments (stable for an hour) unless told; returns (listener, port)."""
    with listeners(tmp_path) as start:
        yield start


def associate(port, syntaxes=(ExplicitVRLittleEndian,)):
    from pynetdicom import AE
    from pynetdicom.sop_class import MRImageStorage, SecondaryCaptureImageStorage

    ae = AE(ae_title="ORTHANC")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for sop_class in (MRImageStorage, SecondaryCaptureImageStorage):
        ae.add_requested_context(sop_class, list(syntaxes))
    assoc = ae.associate("127.0.0.1", port, ae_title=NEUROSEG_AE)
    assert assoc.is_established
    return assoc


def store(assoc, what) -> int | None:
    status = assoc.send_c_store(what)
    return int(status.Status) if status else None


def spooled(tmp_path) -> list[Path]:
    return list((tmp_path / "spool" / "incoming").rglob("*.dcm"))


def tiny(study_uid: str, series_uid: str, sop_uid: str | None = None, pixels: int = 4):
    """A small secondary-capture instance; ``pixels`` x ``pixels`` 8-bit pixels."""
    from tests.dicom_factory import new_instance

    ds = new_instance("1.2.840.10008.5.1.4.1.1.7")
    if sop_uid:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, series_uid, "OT"
    ds.Rows = ds.Columns = pixels
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(pixels * pixels)
    return ds


def test_truncated_dataset_is_refused(tmp_path, node):
    """Outcome: 0xC000 (cannot understand), nothing written; the node goes on storing the next instance."""
    _, port = node()
    good = tiny(generate_uid(), generate_uid(), pixels=64)
    path = tmp_path / "whole.dcm"
    good.save_as(path, enforce_file_format=True)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-1000])  # the file meta is whole; the pixel data is 1000 bytes short
    assoc = associate(port)
    try:
        assert store(assoc, cut) == CANNOT_UNDERSTAND
        assert spooled(tmp_path) == []
        assert store(assoc, path) == SUCCESS
    finally:
        assoc.release()
    assert len(spooled(tmp_path)) == 1


def test_dataset_in_another_transfer_syntax_than_the_negotiated_one_is_refused(tmp_path, node, monkeypatch):
    """Outcome: an explicit-VR dataset sent on an implicit-VR context is refused (0xC000), nothing written."""
    import pynetdicom.association as association
    from pynetdicom.dsutils import encode

    _, port = node()
    # a sender that encodes in explicit VR whatever the context says
    monkeypatch.setattr(association, "encode", lambda ds, implicit, little, *a, **k: encode(ds, False, little))
    ds = tiny(generate_uid(), generate_uid())
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    assoc = associate(port, syntaxes=(ImplicitVRLittleEndian,))
    try:
        assert store(assoc, ds) == CANNOT_UNDERSTAND
    finally:
        assoc.release()
    assert spooled(tmp_path) == []


@pytest.mark.parametrize("bad", ["../../../../tmp/neuroseg-escape", "1.2.3/../4", "1.2.3a", "1.2.3 4"])
def test_uid_with_a_path_or_a_non_uid_character_is_refused(tmp_path, node, bad):
    """Outcome: 0xC000 for a bad SOP, series or study UID; nothing written in the spool or outside it."""
    from pydicom import config

    _, port = node()
    config.settings.writing_validation_mode = config.IGNORE
    try:
        cases = [tiny(generate_uid(), generate_uid(), sop_uid=bad), tiny(bad, generate_uid()),
                 tiny(generate_uid(), bad)]
    finally:
        config.settings.writing_validation_mode = config.WARN
    assoc = associate(port)
    try:
        assert [store(assoc, ds) for ds in cases] == [CANNOT_UNDERSTAND] * 3
        assert store(assoc, tiny(generate_uid(), generate_uid())) == SUCCESS  # the node goes on
    finally:
        assoc.release()
    assert len(spooled(tmp_path)) == 1
    assert not Path("/tmp/neuroseg-escape.dcm").exists() and not list(Path("/tmp").glob("neuroseg-escape*"))
    assert [p.name for p in (tmp_path / "spool").iterdir() if p.name not in ("incoming", "results", "state",
                                                                            "audit.jsonl")] == []


def test_huge_pixel_data_is_refused_at_the_spool_limit(tmp_path, node):
    """Outcome: a 24 MB instance at a 16 MB spool limit: 0xA700 (out of resources); the spool stays under the
    limit and a small instance after it is stored."""
    from neuroseg.net.spool import folder_bytes

    limit = 16 * 2**20
    _, port = node(max_spool_bytes=limit)
    huge = tiny(generate_uid(), generate_uid(), pixels=5000)  # 25 000 000 bytes of pixels
    assoc = associate(port)
    try:
        assert store(assoc, huge) == OUT_OF_RESOURCES
        assert store(assoc, tiny(generate_uid(), generate_uid())) == SUCCESS
    finally:
        assoc.release()
    assert folder_bytes(tmp_path / "spool") <= limit


def test_a_spool_that_cannot_be_written_refuses_with_a_status_and_keeps_nothing(tmp_path, node, monkeypatch):
    """Outcome: a write that fails halfway (a full disk) answers 0xA700, leaves no file (finished or partial) and
    does not count against the spool limit; the instance after it is stored, byte for byte as sent, readable by
    the owner only (it holds patient data)."""
    import errno

    from neuroseg.io.atomic import temporary_files

    listener, port = node()
    study, series = generate_uid(), generate_uid()
    full, good = tiny(study, series), tiny(study, series)
    original = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(f".{full.SOPInstanceUID}.dcm."):
            original(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    before = listener.spool_bytes
    assoc = associate(port)
    try:
        assert store(assoc, full) == OUT_OF_RESOURCES
        assert listener.spool_bytes == before
        assert temporary_files(tmp_path / "spool") == [] and spooled(tmp_path) == []
        assert store(assoc, good) == SUCCESS
    finally:
        assoc.release()
    (path,) = spooled(tmp_path)
    assert path.stem == str(good.SOPInstanceUID) and path.stat().st_mode & 0o777 == 0o600
    sent = pydicom.dcmread(path)
    assert sent.SOPInstanceUID == good.SOPInstanceUID and sent.PixelData == good.PixelData
    assert sent.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_partial_files_left_by_a_kill_are_removed_at_start(tmp_path, node):
    """Outcome: atomic_path's temporary files in the spool (a kill mid-write) are removed when the node starts;
    finished instances stay."""
    from neuroseg.net.spool import save_instance

    ds = tiny(generate_uid(), generate_uid())
    kept = save_instance(ds, tmp_path / "spool" / "incoming")
    left = kept.parent / f".{kept.name}.k1ll3d_0.part"
    left.write_bytes(b"half")
    node()
    assert not left.exists() and kept.exists()


def test_the_listener_refuses_to_start_with_pynetdicoms_chunked_receiving(tmp_path, monkeypatch):
    """Outcome: with STORE_RECV_CHUNKED_DATASET on, pynetdicom writes each instance whole to the system's temp
    folder before the handler runs and hands it an empty stream: the spool limit would see 0 bytes. So the node
    does not start (one error), rather than accept any size."""
    from pynetdicom import _config

    from neuroseg.errors import NeurosegError
    from neuroseg.net.listen import Listener, ListenerConfig

    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", True)
    listener = Listener(ListenerConfig(spool=tmp_path / "spool", port=free_port(),
                                       peer=parse_peer(f"NOWHERE@127.0.0.1:{free_port()}")), segmenter=None)
    with pytest.raises(NeurosegError, match="STORE_RECV_CHUNKED_DATASET is on"):
        listener.start()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def many_tiny(count: int, port: int, tmp_path) -> tuple[float, list[str], int]:
    """Send ``count`` tiny instances of one study, in one association unless a store gets no answer: then, as a
    real sender would, the same instance again on a new association. Returns the seconds taken, the SOP Instance
    UIDs sent and how many were sent again.

    pynetdicom's *requestor* can lose a C-STORE response: its reactor thread may take the response off the queue
    between send_c_store's "is the reactor paused?" check and its wait ("Received unexpected C-STORE service
    message", logged by the RequestorThread); the store then times out (60 s). Seen once in 200 and once in
    ~4 000 instances on a CPU-starved machine. Each instance sent again must be such a loss on the sender's side,
    never a request the node dropped."""
    study, series = generate_uid(), generate_uid()
    instances = [tiny(study, series) for _ in range(count)]
    records = _Records()
    logging.getLogger("pynetdicom").addHandler(records)
    assoc = associate(port)
    statuses, resent = [], 0
    begin = time.perf_counter()
    try:
        for ds in instances:
            status = store(assoc, ds)
            if status is None:  # no answer: pynetdicom aborted the association
                resent += 1
                assoc.abort()
                assoc = associate(port)
                status = store(assoc, ds)
            statuses.append(status)
    finally:
        assoc.release()
        logging.getLogger("pynetdicom").removeHandler(records)
    seconds = time.perf_counter() - begin
    assert statuses == [SUCCESS] * count
    assert len(spooled(tmp_path)) == count
    lost = [r.threadName for r in records.records if "Received unexpected" in r.getMessage()]
    assert len(lost) == resent and all(name.startswith("RequestorThread") for name in lost), lost
    return seconds, [str(ds.SOPInstanceUID) for ds in instances], resent


def test_many_tiny_instances_are_all_stored(tmp_path, node):
    """Outcome: 200 tiny instances, every one stored (10 000: the slow test below; pynetdicom takes ~55-95 ms an
    instance on a loaded 2-core machine, most of it polling sleeps and thread hand-overs, ~2 ms in the handler)."""
    _, port = node()
    seconds, _, resent = many_tiny(200, port, tmp_path)
    print(f"200 tiny instances stored in {seconds:.1f} s ({resent} sent again after a lost response)")


@pytest.mark.skipif(not os.environ.get("NEUROSEG_STRESS"),
                    reason="the 10 000-instance stress run takes 15-20 minutes on a busy 2-core machine: "
                           "NEUROSEG_STRESS=1 runs it")
@pytest.mark.slow
def test_ten_thousand_tiny_instances_are_all_stored(tmp_path, node):
    """Outcome: 10 000 tiny instances, every one stored in the spool; the audit trail names every one of their
    UIDs, an instance sent again (see many_tiny) counted in both associations."""
    import json

    _, port = node()
    seconds, uids, resent = many_tiny(10_000, port, tmp_path)
    print(f"10000 tiny instances stored in {seconds:.1f} s ({resent} sent again after a lost response)")
    audit = tmp_path / "spool" / "audit.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(audit.read_text().splitlines() if audit.exists() else []) < resent + 1:
        time.sleep(0.1)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    audited = {uid for line in lines for study in line.get("studies", []) for series in study["series"]
               for uid in series["instance_uids"]}
    assert audited == set(uids)
    assert sum(line["instances"] for line in lines) == 10_000 + resent


def test_a_connection_that_never_speaks_is_dropped(tmp_path, node):
    """Outcome: a TCP connection that sends no A-ASSOCIATE-RQ, and an association that goes silent after it,
    are closed by the node after --idle-timeout (1 s here); meanwhile another caller is served."""
    _, port = node(idle_timeout=1.0)
    mute = socket.create_connection(("127.0.0.1", port))
    assoc = associate(port)  # established, then silent
    begin = time.monotonic()
    quiet = associate(port)
    assert store(quiet, tiny(generate_uid(), generate_uid())) == SUCCESS
    quiet.release()
    mute.settimeout(10)
    assert mute.recv(1) == b""  # the node closed it
    deadline = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not assoc.is_established
    assert time.monotonic() - begin < 8
    mute.close()


# --- PHI: never in the audit trail nor any log ---

def test_a_study_full_of_phi_leaves_none_in_any_log(tmp_path, orthanc, caplog):
    """Outcome: a study with a patient name, ID, birth date and accession number is received, segmented and its
    SEG sent to Orthanc; not one of those values is in any log record (every logger, DEBUG and up, pynetdicom's
    included), nor in the audit trail, nor in a spool file name."""
    from neuroseg.net.listen import ListenerConfig
    from tests.net.test_listen import Running, c_store, wait_for

    files, study = flair_study(tmp_path / "source")
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
        ds.OtherPatientIDs = PHI["PatientID"]
        ds.save_as(path, enforce_file_format=True)
    port = free_port()
    caplog.set_level(logging.DEBUG)  # every logger, at every level
    running = Running(ListenerConfig(spool=tmp_path / "spool", port=port, peer=parse_peer(orthanc.peer),
                                     stable_seconds=0.5, retry_seconds=0.3, poll_seconds=0.05))
    try:
        assert c_store(files, port) == [0] * len(files)
        wait_for(lambda: (StudyStates(tmp_path / "spool" / "state").get(study["study_uid"]) or {}).get("state")
                 == SENT, what="the study sent")
    finally:
        running.close()
    audit = (tmp_path / "spool" / "audit.jsonl").read_text()
    assert '"event": "study"' in audit and '"event": "association"' in audit and study["study_uid"] in audit
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert "listening on" in logs and study["study_uid"] in logs  # the logs were captured
    names = "\n".join(str(p) for p in (tmp_path / "spool").rglob("*"))
    for value in (*PHI.values(), "Qwertyson", "Zelda"):
        assert value not in logs, value
        assert value not in audit, value
        assert value not in names, value
    # the birth year alone, as a date formatter would write it; not inside a longer run of digits, where a
    # random UID (pynetdicom logs every one) holds "1931" in a few percent of runs
    year = re.compile(r"(?<!\d)1931(?!\d)")
    for text in (logs, audit, names):
        assert not year.search(text), year.search(text)
    for path in (tmp_path / "spool").rglob("*.json"):  # the study states too
        assert not any(value in path.read_text() for value in PHI.values())
