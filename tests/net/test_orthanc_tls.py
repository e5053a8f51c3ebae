"""Against a real Orthanc with TLS on: DICOM TLS requiring our certificate, and HTTPS requiring it too.

Orthanc -> neuroseg by TLS C-STORE, the SEG back by TLS C-STORE; STOW-RS over HTTPS with a client certificate
(HTTPS terminated by a TLS proxy, stunnel, in front of Orthanc's HTTP: Orthanc 1.10.1's own HTTPS crashes here);
and the refusals: no client certificate, a certificate from another CA, a good one from a host not allowed,
an expired one."""

from __future__ import annotations

import json

import pytest

from tests.net.certs import make_certificates
from tests.net.conftest import NEUROSEG_AE, flair_study
from tests.net.orthanc import free_port, start_orthanc

pytest.importorskip("pynetdicom", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")
pytest.importorskip("dicomweb_client", reason="needs the pacs extra: pip install 'neuroseg[pacs]'")

from neuroseg.cli.main import main  # noqa: E402
from neuroseg.net.address import parse_peer  # noqa: E402
from neuroseg.net.tls import TlsFiles, client_context  # noqa: E402

pytestmark = pytest.mark.slow  # an Orthanc of its own, started with TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def neuroseg_port():
    return free_port()


@pytest.fixture(scope="module")
def tls_orthanc(tmp_path_factory, certs, neuroseg_port):
    """Orthanc with DICOM TLS, our certificate required. (Its HTTPS is off: ``SslEnabled`` makes the Debian
    Orthanc 1.10.1 here die with a segmentation fault on the first HTTPS request, RSA or EC key alike.)"""
    folder = tmp_path_factory.mktemp("orthanc-tls")
    settings = {
        "DicomTlsEnabled": True, "DicomTlsCertificate": str(certs.server.cert),
        "DicomTlsPrivateKey": str(certs.server.key), "DicomTlsTrustedCertificates": str(certs.ca),
        "DicomTlsRemoteCertificateRequired": True,
    }
    modalities = {NEUROSEG_AE: {"AET": NEUROSEG_AE, "Host": "127.0.0.1", "Port": neuroseg_port, "UseDicomTls": True}}
    import tests.net.orthanc as orthanc_module

    server = orthanc_module.Orthanc(folder, free_port(), free_port())
    started = start_orthanc(folder, modalities, http_port=server.http_port, dicom_port=server.dicom_port,
                            settings=settings, template=server)
    yield started
    started.stop()


def tls_peer(orthanc, certs, pair=None):
    files = TlsFiles(ca=certs.ca, cert=pair and pair.cert, key=pair and pair.key)
    from dataclasses import replace

    return replace(parse_peer(orthanc.peer), tls=client_context(files))


def test_orthanc_forwards_by_tls_and_the_seg_comes_back_by_tls(tmp_path, tls_orthanc, certs, neuroseg_port):
    """What holds: Orthanc -> neuroseg (mutual TLS, Orthanc's certificate checked and allowed by subject),
    the SEG -> Orthanc (mutual TLS, ours checked by Orthanc); the audit trail names Orthanc's certificate."""
    from neuroseg.net.listen import SENT, ListenerConfig, StudyStates
    from tests.net.test_listen import Running, wait_for

    files, study = flair_study(tmp_path / "source")
    tls_orthanc.upload(files)
    running = Running(ListenerConfig(
        spool=tmp_path / "spool", port=neuroseg_port, stable_seconds=0.5, retry_seconds=0.3, poll_seconds=0.05,
        peer=tls_peer(tls_orthanc, certs, certs.client), allow_subjects=["CN=localhost"],
        tls=TlsFiles(ca=certs.ca, cert=certs.server.cert, key=certs.server.key)))
    try:
        tls_orthanc.rest("POST", f"/modalities/{NEUROSEG_AE}/store", data=tls_orthanc.study_id(study["study_uid"]))
        wait_for(lambda: (StudyStates(tmp_path / "spool" / "state").get(study["study_uid"]) or {}).get("state")
                 == SENT, what="the study sent")
    finally:
        running.close()
    assert len(tls_orthanc.instances(study["study_uid"], "SEG")) == 1
    lines = [json.loads(x) for x in (tmp_path / "spool" / "audit.jsonl").read_text().splitlines()]
    association = next(r for r in lines if r["event"] == "association" and r["outcome"] == "accepted")
    assert association["tls"] is True and association["cert_subject"] == "CN=localhost,O=neuroseg tests"
    assert association["instances"] == len(files)
    assert any(r["event"] == "study" and r["outcome"] == "sent" for r in lines)


@pytest.mark.parametrize("who", ["no certificate", "another CA", "expired"])
def test_orthanc_refuses_our_store_without_a_good_certificate(tmp_path, tls_orthanc, certs, who):
    from neuroseg.net import dimse
    from neuroseg.net.outcome import NetworkError
    from tests.net.test_send_pull import segment_into

    files, _ = flair_study(tmp_path / "source")
    segment_into(tmp_path / "source", tmp_path / "out")
    pair = {"no certificate": None, "another CA": certs.stranger, "expired": certs.expired}[who]
    saved, dimse.RETRY_DELAYS_S = dimse.RETRY_DELAYS_S, ()
    try:
        import pydicom

        with pytest.raises(NetworkError, match="TLS handshake failed"):
            dimse.store([pydicom.dcmread(tmp_path / "out" / "seg.dcm")], tls_peer(tls_orthanc, certs, pair))
    finally:
        dimse.RETRY_DELAYS_S = saved


@pytest.fixture(scope="module")
def https_proxy(tmp_path_factory, tls_orthanc, certs):
    """A TLS proxy (stunnel) in front of Orthanc's plain HTTP, requiring a client certificate from the test CA."""
    from tests.net.tls_proxy import start_tls_proxy

    proxy = start_tls_proxy(tmp_path_factory.mktemp("proxy"), tls_orthanc.http_port, certs.server.cert,
                            certs.server.key, ca=certs.ca)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def https_orthanc(https_proxy, tls_orthanc, certs):
    """The same Orthanc reached by HTTPS through the proxy, with the test CA and our client certificate."""
    from dataclasses import replace

    return replace(tls_orthanc, http_port=https_proxy.port, scheme="https", process=None, verify=str(certs.ca),
                   cert=(str(certs.client.cert), str(certs.client.key)))


def test_send_stow_rs_over_https_with_a_client_certificate(tmp_path, https_orthanc, https_proxy, tls_orthanc, certs,
                                                           capsys, monkeypatch):
    """What holds: `neuroseg send --dicomweb https://...` with our CA and client certificate stores the SEG;
    trusting another CA our client refuses the proxy; without a client certificate the proxy refuses us (its
    log says so); each refusal is one line and exit 7; Orthanc holds the SEG once."""
    from neuroseg.net import dicomweb
    from tests.net.test_listen import wait_for
    from tests.net.test_send_pull import segment_into

    monkeypatch.setattr(dicomweb, "RETRY_DELAYS_S", (0.05,))
    _, study = flair_study(tmp_path / "source")
    segment_into(tmp_path / "source", tmp_path / "out")
    base = ["send", str(tmp_path / "out"), "--dicomweb", https_orthanc.dicomweb, "--user", "neuroseg-test",
            "--password", "not-a-real-secret"]
    client = ["--tls-cert", str(certs.client.cert), "--tls-key", str(certs.client.key)]
    assert https_orthanc.dicomweb.startswith("https://127.0.0.1:")

    assert main([*base, "--tls-ca", str(certs.other_ca), *client]) == 7
    err = capsys.readouterr().err
    assert "TLS with" in err and "certificate verify failed" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    assert main([*base, "--tls-ca", str(certs.ca)]) == 7
    err = capsys.readouterr().err
    assert "certificate required" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    wait_for(lambda: "peer did not return a certificate" in https_proxy.log.read_text(),
             timeout=15, what="the proxy's log of the refusal")
    assert tls_orthanc.instances(study["study_uid"], "SEG") == []  # nothing got through the refusals

    assert main([*base, "--tls-ca", str(certs.ca), *client]) == 0
    assert "stored: seg.dcm" in capsys.readouterr().out
    (seg,) = tls_orthanc.instances(study["study_uid"], "SEG")  # Orthanc's REST API, behind the proxy
    import pydicom

    assert seg["MainDicomTags"]["SOPInstanceUID"] == str(pydicom.dcmread(tmp_path / "out" / "seg.dcm").SOPInstanceUID)
    assert https_orthanc.rest("GET", "/system")["Name"] == "neuroseg-test"  # the REST API through the proxy too
