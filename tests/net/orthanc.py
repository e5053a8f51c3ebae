"""A real Orthanc for tests: started in a temporary folder on free local ports, with auth and the DicomWeb plugin."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "neuroseg-test", "not-a-real-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Orthanc:
    folder: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen | None = None
    ae_title: str = "ORTHANC"
    scheme: str = "http"
    verify: object = True  # with HTTPS: the CA file that verifies Orthanc
    cert: tuple | None = None  # with HTTPS: our client certificate and key

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def peer(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.dicom_port}"

    def rest(self, method: str, path: str, **kwargs):
        import requests

        reply = requests.request(method, self.url + path, auth=(USER, PASSWORD), timeout=30, verify=self.verify,
                                 cert=self.cert, **kwargs)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def upload(self, files) -> list[str]:
        """Store files through the REST API; returns Orthanc's instance IDs."""
        return [self.rest("POST", "/instances", data=Path(f).read_bytes())["ID"] for f in files]

    def study_id(self, study_uid: str) -> str:
        found = self.rest("POST", "/tools/lookup", data=study_uid)
        return next(item["ID"] for item in found if item["Type"] == "Study")

    def instances(self, study_uid: str, modality: str | None = None) -> list[dict]:
        """Every instance of the study (its tags), optionally of one modality."""
        query = {"StudyInstanceUID": study_uid}
        if modality:
            query["Modality"] = modality
        return self.rest("POST", "/tools/find", json={"Level": "Instance", "Query": query, "Expand": True})

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)


def start_orthanc(folder: Path, modalities: dict | None = None, http_port: int | None = None,
                  dicom_port: int | None = None, settings: dict | None = None,
                  template: Orthanc | None = None) -> Orthanc:
    """Start ``Orthanc CONFIG.json``; skip when Orthanc is not installed. Ready when its REST API answers."""
    if shutil.which("Orthanc") is None:
        pytest.skip("Orthanc is not installed (Debian packages 'orthanc' and 'orthanc-dicomweb')")
    folder.mkdir(parents=True, exist_ok=True)
    server = template or Orthanc(folder, http_port or free_port(), dicom_port or free_port())
    config = {
        "Name": "neuroseg-test", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": server.http_port, "DicomPort": server.dicom_port, "DicomAet": server.ae_title,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomModalities": modalities or {},  # C-FIND, C-GET and C-MOVE only for these
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
        "DicomAlwaysAllowStore": True, "StableAge": 1, "HttpsVerifyPeers": False,
        **(settings or {}),  # e.g. DICOM TLS and HTTPS (tests/net/test_orthanc_tls.py)
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log = open(folder / "orthanc.log", "w")
    server.process = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=log, stderr=log,
                                      cwd=folder)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"Orthanc exited: {(folder / 'orthanc.log').read_text()[-2000:]}")
        try:
            server.rest("GET", "/system")
            return server
        except Exception:
            time.sleep(0.05)
    server.stop()
    pytest.fail("Orthanc did not answer within 20 s")


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server started by a fixture; kill it if it has not gone after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
