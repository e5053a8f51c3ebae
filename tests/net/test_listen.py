"""neuroseg listen: end to end with a real Orthanc, and under faults. Each test states what must hold."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest

from tests.net.conftest import NEUROSEG_AE, flair_study
from tests.net.orthanc import free_port, start_orthanc

pytest.importorskip("pynetdicom", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")
pytest.importorskip("dicomweb_client", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")

from neuroseg.net.address import parse_peer  # noqa: E402
from neuroseg.net.listen import FAILED, SENDING, SENT, Listener, ListenerConfig, StudyStates  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


class Running:
    """A Listener serving in this process (its worker in a thread), stopped by close()."""

    def __init__(self, config: ListenerConfig):
        from neuroseg.inference import Segmenter
        from tests.conftest import bright_model

        self.listener = Listener(config, Segmenter(bright_model(), device="cpu"))
        self.listener.start()
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self):
        while not self.listener.stop.is_set():
            if not self.listener.step():
                self.listener.stop.wait(0.05)

    def close(self):
        self.listener.stop.set()
        self.thread.join(10)
        self.listener.server.shutdown()


@pytest.fixture
def listening(tmp_path, listener_port, orthanc):
    started = []

    def start(**overrides):
        settings = dict(spool=tmp_path / "spool", port=listener_port, peer=parse_peer(orthanc.peer),
                        stable_seconds=0.5, retry_seconds=0.3, poll_seconds=0.05)
        settings.update(overrides)
        started.append(Running(ListenerConfig(**settings)))
        return started[-1].listener

    yield start
    for running in started:
        running.close()


def c_store(files, port, ae_title="ORTHANC", abort_after=None, called=NEUROSEG_AE):
    """Send files to the listener in one association; returns the statuses (None: not sent)."""
    from pynetdicom import AE
    from pynetdicom.presentation import StoragePresentationContexts

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 300  # a busy CI machine is slow, not broken
    ae.requested_contexts = StoragePresentationContexts[:120]
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return None
    statuses = []
    for n, path in enumerate(files):
        if abort_after is not None and n == abort_after:
            assoc.abort()
            return statuses
        status = assoc.send_c_store(pydicom.dcmread(path))
        statuses.append(int(status.Status) if status else None)
    assoc.release()
    return statuses


def wait_for(condition, timeout=120.0, what="condition"):  # generous: CI machines may be busy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def state(spool, study_uid):
    return (StudyStates(Path(spool) / "state").get(study_uid) or {}).get("state")


def test_orthanc_forwards_a_study_and_the_seg_comes_back(tmp_path, orthanc, listening):
    """What holds: the SEG arrives in Orthanc once, frame for frame the mask; the spool is named by UIDs only."""
    from tests.net.test_send_pull import check_seg_against_mask, read_back_seg

    files, study = flair_study(tmp_path / "source")
    orthanc.upload(files)
    listening()
    begin = time.perf_counter()
    orthanc.rest("POST", f"/modalities/{NEUROSEG_AE}/store", data=orthanc.study_id(study["study_uid"]))
    wait_for(lambda: state(tmp_path / "spool", study["study_uid"]) == SENT, what="the study to be sent")
    wait_for(lambda: orthanc.instances(study["study_uid"], "SEG"), what="the SEG in Orthanc")
    seconds = time.perf_counter() - begin
    segs = read_back_seg(orthanc, study["study_uid"])
    assert len(segs) == 1
    results = tmp_path / "spool" / "results" / study["study_uid"]
    check_seg_against_mask(segs[0], tmp_path / "spool" / "incoming" / study["study_uid"],
                           results / "mask.nii.gz", tmp_path)
    names = [p.name for p in (tmp_path / "spool").rglob("*")]
    assert not any("Doe" in name or "PID-0001" in name for name in names)
    print(f"study forwarded -> SEG stored in Orthanc: {seconds:.2f} s")


@pytest.mark.slow  # Orthanc forwards a study, the node segments, meshes and sends: 5-8 s here
def test_listen_with_mesh_writes_the_surfaces_and_sends_the_stl_after_the_seg(tmp_path, orthanc, listening):
    """What holds: with ``mesh`` (``listen --mesh``) the study's results hold tumour.stl/.obj/.gii and stl.dcm,
    and Orthanc holds the SEG and the Encapsulated STL (M3D) of that study, once each."""
    pytest.importorskip("skimage", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")
    files, study = flair_study(tmp_path / "source")
    orthanc.upload(files)
    listening(mesh=True)
    orthanc.rest("POST", f"/modalities/{NEUROSEG_AE}/store", data=orthanc.study_id(study["study_uid"]))
    wait_for(lambda: state(tmp_path / "spool", study["study_uid"]) == SENT, what="the study to be sent")
    results = tmp_path / "spool" / "results" / study["study_uid"]
    meshes = ["tumour.stl", "tumour.obj", "tumour.gii", "stl.dcm"]
    assert all((results / name).stat().st_size > 0 for name in meshes)
    assert set(meshes) <= set(json.loads((results / "report.json").read_text())["files"])
    stl = pydicom.dcmread(results / "stl.dcm", stop_before_pixels=True)
    stored = wait_for(lambda: orthanc.instances(study["study_uid"], "M3D"), what="the STL in Orthanc")
    assert [item["MainDicomTags"]["SOPInstanceUID"] for item in stored] == [stl.SOPInstanceUID]
    assert len(orthanc.instances(study["study_uid"], "SEG")) == 1


def test_destination_down_then_up(tmp_path, listening, listener_port):
    """What holds: while the destination is down the study stays queued (retried); once up, it is sent once."""
    dicom_port = free_port()
    files, study = flair_study(tmp_path / "source")
    listener = listening(peer=parse_peer(f"LATER@127.0.0.1:{dicom_port}"))
    import neuroseg.net.dimse as dimse

    dimse.RETRY_DELAYS_S, saved = (), dimse.RETRY_DELAYS_S
    try:
        assert c_store(files, listener_port) == [0] * len(files)
        wait_for(lambda: (StudyStates(tmp_path / "spool" / "state").get(study["study_uid"]) or {}).get("attempts", 0)
                 >= 2, what="two failed attempts")
        assert state(tmp_path / "spool", study["study_uid"]) == SENDING  # queued: started, not confirmed
        later = start_orthanc(tmp_path / "later", dicom_port=dicom_port)
        later.ae_title = "LATER"
        try:
            wait_for(lambda: state(tmp_path / "spool", study["study_uid"]) == SENT, what="the retried send")
            time.sleep(0.5)  # a second send would land now
            assert len(later.instances(study["study_uid"], "SEG")) == 1
        finally:
            later.stop()
    finally:
        dimse.RETRY_DELAYS_S = saved
    assert listener.states.get(study["study_uid"])["attempts"] >= 2


def test_calling_ae_title_not_on_the_allow_list_is_refused(tmp_path, listening, listener_port):
    """What holds: a stranger's association is rejected and nothing of it reaches the spool."""
    files, study = flair_study(tmp_path / "source")
    listening(allow=["ORTHANC"])
    assert c_store(files, listener_port, ae_title="STRANGER") is None
    assert not list((tmp_path / "spool" / "incoming").rglob("*.dcm"))
    assert c_store(files[:1], listener_port, ae_title="ORTHANC") == [0]


def test_association_aborted_mid_study_keeps_what_was_accepted(tmp_path, orthanc, listening, listener_port):
    """What holds: instances acknowledged before the abort are on disk; the resent study gives one SEG."""
    files, study = flair_study(tmp_path / "source")
    listening(stable_seconds=1.0)
    assert c_store(files, listener_port, abort_after=5) == [0] * 5
    incoming = tmp_path / "spool" / "incoming" / study["study_uid"]
    assert len(list(incoming.rglob("*.dcm"))) == 5
    assert c_store(files, listener_port) == [0] * len(files)  # the sender retries the whole study
    wait_for(lambda: state(tmp_path / "spool", study["study_uid"]) == SENT, what="the study to be sent")
    assert len(list(incoming.rglob("*.dcm"))) == len(files)
    assert len(orthanc.instances(study["study_uid"], "SEG")) == 1


def test_500_instances_as_fast_as_possible(tmp_path, orthanc, listening, listener_port):
    """What holds: every one of 500 instances (a FLAIR and a 488-slice T2 series of one study) is stored;
    the study is segmented once (its FLAIR) and one SEG is sent."""
    from tests.conftest import blob_volume
    from tests.dicom_factory import write_series

    files, study = flair_study(tmp_path / "flair")
    files += write_series(blob_volume(shape=(16, 16, 488), centre=(8, 8, 200)), tmp_path / "t2", study=study,
                          description="AX T2", inversion_time=None, number=4)
    listening(stable_seconds=1.0)
    statuses = c_store(files, listener_port)
    assert statuses == [0] * 500
    assert len(list((tmp_path / "spool" / "incoming").rglob("*.dcm"))) == 500
    wait_for(lambda: state(tmp_path / "spool", study["study_uid"]) == SENT, what="the study sent")
    assert len(orthanc.instances(study["study_uid"], "SEG")) == 1


def test_sr_and_non_flair_studies_fail_with_why_and_nothing_is_sent(tmp_path, orthanc, listening, listener_port):
    """What holds: both are kept in the spool, recorded failed with the reason, and no SEG is sent for them."""
    from pydicom.uid import generate_uid

    from tests.dicom_factory import new_instance

    t1_files, t1_study = flair_study(tmp_path / "t1", description="AX T1 SE", inversion_time=None)
    report = new_instance("1.2.840.10008.5.1.4.1.1.88.11")  # Basic Text SR
    report.StudyInstanceUID, report.SeriesInstanceUID = generate_uid(), generate_uid()
    report.Modality, report.PatientName, report.PatientID = "SR", "Doe^Jane", "PID-0001"
    report.ValueType, report.ContinuityOfContent = "CONTAINER", "SEPARATE"
    report.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    listening()
    assert c_store([*t1_files, tmp_path / "sr.dcm"], listener_port) == [0] * (len(t1_files) + 1)
    states = StudyStates(tmp_path / "spool" / "state")
    for uid in (t1_study["study_uid"], str(report.StudyInstanceUID)):
        wait_for(lambda: (states.get(uid) or {}).get("state") == FAILED, what=f"study {uid} to fail")
    assert "no usable series looks like FLAIR" in states.get(t1_study["study_uid"])["error"]
    assert "no usable series looks like FLAIR" in states.get(str(report.StudyInstanceUID))["error"]
    assert orthanc.instances(t1_study["study_uid"], "SEG") == []
    assert len(list((tmp_path / "spool" / "incoming").rglob("*.dcm"))) == len(t1_files) + 1


def test_spool_full_refuses_with_a_dicom_status(tmp_path, listening, listener_port):
    """What holds: past the maximum, instances are refused with 0xA700 (out of resources); the spool stays under it."""
    files, _ = flair_study(tmp_path / "source")
    limit = 6 * files[0].stat().st_size
    listening(max_spool_bytes=limit)
    statuses = c_store(files, listener_port)
    assert 0xA700 in statuses and statuses[0] == 0
    from neuroseg.net.spool import folder_bytes

    assert folder_bytes(tmp_path / "spool") <= limit


# --- killed and restarted: a real process, SIGKILL, then a restart ---

# ``python -c`` this instead of ``-m neuroseg``: the same listener, which exits hard (as a kill would)
# right after the destination confirmed a send and before the ``sent`` state is written
EXIT_AFTER_CONFIRMATION = """
import os, runpy, sys
from neuroseg.net import listen
write = listen.StudyStates.set
def set_state(self, study, state, **details):
    if state == listen.SENT:
        print("test: exiting hard after the destination confirmed", file=sys.stderr, flush=True)
        os._exit(9)
    return write(self, study, state, **details)
listen.StudyStates.set = set_state
runpy.run_module("neuroseg", run_name="__main__", alter_sys=True)
"""


def start_process(spool, port, orthanc, model, exit_after_confirmation=False):
    program = ["-c", EXIT_AFTER_CONFIRMATION] if exit_after_confirmation else ["-m", "neuroseg"]
    command = [sys.executable, *program, "listen", "--spool", str(spool), "--port", str(port),
               "--send-to", orthanc.peer, "--stable-seconds", "2", "--retry-seconds", "0.5",
               "--model", str(model), "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    lines = []

    def read():
        for line in process.stderr:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    wait_for(lambda: any("listening on" in line for line in lines) or process.poll() is not None, timeout=300,
             what="the listener to start")
    assert process.poll() is None, "".join(lines)
    return process, lines


def test_killed_while_receiving_and_while_segmenting_then_restarted(tmp_path, orthanc, tiny_model, listener_port):
    """What holds: after each SIGKILL and a restart every accepted study finishes and none is sent twice;
    SIGTERM then stops the node cleanly (exit 0)."""
    spool = tmp_path / "spool"
    first, first_study = flair_study(tmp_path / "a")
    second, second_study = flair_study(tmp_path / "b")
    process, lines = start_process(spool, listener_port, orthanc, tiny_model)
    try:
        # killed while receiving: part of the first study is acknowledged, then the process dies
        assert c_store(first, listener_port, abort_after=6) == [0] * 6
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process, lines = start_process(spool, listener_port, orthanc, tiny_model)
        assert c_store(first, listener_port) == [0] * len(first)  # the sender retries the study
        wait_for(lambda: state(spool, first_study["study_uid"]) == SENT, what="the first study sent")
        # killed while segmenting: as soon as the worker says it is segmenting the second study
        assert c_store(second, listener_port) == [0] * len(second)
        wait_for(lambda: any("segmenting" in line and second_study["study_uid"] in line for line in lines)
                 or state(spool, second_study["study_uid"]) == SENT, what="segmenting the second study")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process, lines = start_process(spool, listener_port, orthanc, tiny_model)
        wait_for(lambda: state(spool, second_study["study_uid"]) == SENT, what="the second study sent")
        time.sleep(1.0)  # a second send would land now
        for study in (first_study, second_study):
            assert len(orthanc.instances(study["study_uid"], "SEG")) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert any("stopped" in line for line in lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = "".join(lines)
    assert "Doe" not in log and "PID-0001" not in log
    assert json.loads((spool / "state" / f"{first_study['study_uid']}.json").read_text())["state"] == SENT


def test_killed_between_the_confirmation_and_the_sent_state_then_restarted(tmp_path, orthanc, tiny_model,
                                                                             listener_port):
    """What holds: the SEG's UID was recorded before the C-STORE; the restarted node finds it in Orthanc
    (C-FIND) and marks the study sent without storing it again; Orthanc holds the SEG once."""
    spool = tmp_path / "spool"
    files, study = flair_study(tmp_path / "a")
    uid = study["study_uid"]
    process, lines = start_process(spool, listener_port, orthanc, tiny_model, exit_after_confirmation=True)
    try:
        assert c_store(files, listener_port) == [0] * len(files)
        assert process.wait(300) == 9, "".join(lines)
        record = StudyStates(spool / "state").get(uid)
        assert record["state"] == SENDING
        segs = orthanc.instances(uid, "SEG")
        assert [seg["MainDicomTags"]["SOPInstanceUID"] for seg in segs] == record["sending_uids"]
        process, lines = start_process(spool, listener_port, orthanc, tiny_model)
        wait_for(lambda: state(spool, uid) == SENT, what="the study marked sent")
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = "".join(lines)
    assert "1 studies to finish from before" in log
    assert f"already holds {record['sending_uids'][0]} from the interrupted send" in log
    assert " sent 1 instance" not in log and "sending the same instance" not in log
    assert [seg["ID"] for seg in orthanc.instances(uid, "SEG")] == [seg["ID"] for seg in segs]


class Crash(Exception):
    """Stands for a kill: raised where the ``sent`` state would be written."""


def crash_at_sent(monkeypatch):
    write = StudyStates.set

    def set_state(self, study, state, **details):
        if state == SENT:
            raise Crash(study)
        return write(self, study, state, **details)

    monkeypatch.setattr(StudyStates, "set", set_state)
    return write


def work_until(listener, condition, what):
    """Drive the listener's worker in this thread until ``condition()``."""
    def done():
        listener.step()
        return condition()

    return wait_for(done, what=what)


def crashed_then_restarted(tmp_path, listener_port, monkeypatch, sends, **settings):
    """A study received and sent by one listener that 'dies' at the ``sent`` write; then a second listener
    on the same spool, with ``sends`` counting what it sends, runs until the study is sent; (study, record)."""
    from neuroseg.inference import Segmenter
    import neuroseg.net.send as send
    from tests.conftest import bright_model

    settings = dict(spool=tmp_path / "spool", port=listener_port, stable_seconds=0.3, retry_seconds=0.3,
                    **settings)
    files, study = flair_study(tmp_path / "source")
    uid = study["study_uid"]
    write = crash_at_sent(monkeypatch)
    first = Listener(ListenerConfig(**settings), Segmenter(bright_model(), device="cpu"))
    first.start()
    try:
        assert c_store(files, listener_port, called=settings.get("ae_title", NEUROSEG_AE)) == [0] * len(files)
        with pytest.raises(Crash):
            work_until(first, lambda: False, "the crash")
    finally:
        first.server.shutdown()
    record = StudyStates(tmp_path / "spool" / "state").get(uid)
    assert record["state"] == SENDING
    monkeypatch.setattr(StudyStates, "set", write)
    real_send = send.send_datasets

    def counted(datasets, names, **kwargs):
        sends.extend(str(ds.SOPInstanceUID) for ds in datasets)
        return real_send(datasets, names, **kwargs)

    monkeypatch.setattr(send, "send_datasets", counted)
    second = Listener(ListenerConfig(**settings), Segmenter(bright_model(), device="cpu"))
    second.start()
    try:
        work_until(second, lambda: state(tmp_path / "spool", uid) == SENT, "the study marked sent")
    finally:
        second.server.shutdown()
    return uid, record


def test_stow_crash_between_the_confirmation_and_the_sent_state(tmp_path, orthanc, listener_port, monkeypatch,
                                                                caplog):
    """What holds: after the crash the restarted node finds the SEG by QIDO-RS and does not STOW it again."""
    from tests.net.test_send_pull import web_client

    caplog.set_level(logging.INFO, logger="neuroseg")
    sends = []
    uid, record = crashed_then_restarted(tmp_path, listener_port, monkeypatch, sends, client=web_client(orthanc))
    assert sends == []
    assert "marked sent without sending again" in caplog.text
    segs = orthanc.instances(uid, "SEG")
    assert [seg["MainDicomTags"]["SOPInstanceUID"] for seg in segs] == record["sending_uids"]


def test_query_refused_after_a_crash_resends_the_same_instance_once(tmp_path, orthanc, listener_port,
                                                                      monkeypatch, caplog):
    """What holds: when the destination refuses the C-FIND (an AE title it does not list), the restarted node
    says so in one line and sends the same SEG again, same UID; Orthanc still holds it once."""
    caplog.set_level(logging.INFO, logger="neuroseg")
    sends = []
    uid, record = crashed_then_restarted(tmp_path, listener_port, monkeypatch, sends, ae_title="STRANGER",
                                         peer=parse_peer(orthanc.peer))
    assert sends == record["sending_uids"]
    err = caplog.text
    assert err.count("sending the same instance(s) again") == 1 and "refused the C-FIND" in err
    segs = orthanc.instances(uid, "SEG")
    assert [seg["MainDicomTags"]["SOPInstanceUID"] for seg in segs] == record["sending_uids"]


def test_an_unexpected_error_while_sending_is_retried_and_the_node_goes_on(tmp_path, orthanc, listener_port,
                                                                           monkeypatch, caplog):
    """What holds: an error that is not neuroseg's own (a bug, an unwrapped network error) while sending leaves
    the study queued with why, the worker loop goes on, and the next try stores the SEG once."""
    from neuroseg.inference import Segmenter
    import neuroseg.net.send as send
    from tests.conftest import bright_model

    caplog.set_level(logging.INFO, logger="neuroseg")
    files, study = flair_study(tmp_path / "source")
    uid = study["study_uid"]
    real_send, calls = send.send_datasets, []

    def fails_once(datasets, names, **kwargs):
        calls.append(len(datasets))
        if len(calls) == 1:
            raise RuntimeError("connection reset by a proxy")
        return real_send(datasets, names, **kwargs)

    monkeypatch.setattr(send, "send_datasets", fails_once)
    node = Listener(ListenerConfig(spool=tmp_path / "spool", port=listener_port, stable_seconds=0.3,
                                   retry_seconds=0.3, peer=parse_peer(orthanc.peer)),
                    Segmenter(bright_model(), device="cpu"))
    node.start()
    try:
        assert c_store(files, listener_port) == [0] * len(files)
        work_until(node, lambda: len(calls) >= 1, "the first send")
        record = StudyStates(tmp_path / "spool" / "state").get(uid)
        assert record["state"] == SENDING and "internal error: RuntimeError" in record["error"]
        work_until(node, lambda: state(tmp_path / "spool", uid) == SENT, "the study sent on the retry")
    finally:
        node.server.shutdown()
    assert len(orthanc.instances(uid, "SEG")) == 1
    assert "retry in" in caplog.text


def test_a_state_being_written_is_not_taken_for_a_study(tmp_path):
    """The worker lists the states while the receiving threads write them: atomic_path's temporary file
    (``.UID.json.<random>.part…json``) ends in .json too, and once stopped the node with a bad-UID error."""
    states = StudyStates(tmp_path / "state")
    states.set("1.2.3", SENT)
    (tmp_path / "state" / ".1.2.4.json.abcd1234.part.2.4.json").write_text("{}")
    assert list(states.all()) == ["1.2.3"]
