"""Fixtures for the network tests: a real Orthanc (session-wide), a DICOM FLAIR study with a known tumour."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.net.orthanc import free_port, start_orthanc

NEUROSEG_AE = "NEUROSEG"


@pytest.fixture(scope="session")
def listener_port() -> int:
    """The port the listener tests use; Orthanc knows neuroseg's node there (C-FIND/C-GET/forwarding)."""
    return free_port()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory, listener_port):
    modalities = {NEUROSEG_AE: {"AET": NEUROSEG_AE, "Host": "127.0.0.1", "Port": listener_port}}
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"), modalities)
    yield server
    server.stop()


def flair_study(folder, description: str = "AX T2 FLAIR", inversion_time=2500.0, study=None):
    """A small FLAIR series with one bright blob (the bright model's tumour); returns (files, study dict)."""
    from tests.conftest import blob_volume
    from tests.dicom_factory import new_study, write_series

    study = study or new_study()
    files = write_series(blob_volume(), folder, study=study, description=description, inversion_time=inversion_time)
    return files, study


@contextmanager
def listeners(tmp_path, **defaults):
    """``start(**overrides) -> (listener, port)``: a listener on a free port that never segments unless told
    (stable for an hour), with ``defaults`` (e.g. its TLS files); every one started is closed on exit."""
    from neuroseg.net.address import parse_peer
    from neuroseg.net.listen import ListenerConfig
    from tests.net.test_listen import Running

    started = []

    def start(**overrides):
        port = free_port()
        settings = dict(spool=tmp_path / "spool", port=port, peer=parse_peer(f"NOWHERE@127.0.0.1:{free_port()}"),
                        stable_seconds=3600, poll_seconds=0.05, **defaults)
        settings.update(overrides)
        started.append(Running(ListenerConfig(**settings)))
        return started[-1].listener, port

    try:
        yield start
    finally:
        for running in started:
            running.close()
