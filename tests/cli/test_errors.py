"""friendly_errors: a user's mistake is one line; a bug (RuntimeError included) is reported as ours."""

from __future__ import annotations

import pytest
import typer

from neuroseg.cli.main import friendly_errors


def fails_with(error):
    @friendly_errors
    def command():
        raise error

    return command


@pytest.mark.parametrize("error, code, text", [
    (ValueError("bad value"), 1, "neuroseg: error: bad value"),
    (RuntimeError("shape mismatch [3, 4]"), 1, "neuroseg: error: internal error, please report it: RuntimeError"),
    (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory"), 1, "out of GPU memory"),
])
def test_errors_are_classified(error, code, text, capsys, monkeypatch):
    monkeypatch.delenv("NEUROSEG_DEBUG", raising=False)
    with pytest.raises(typer.Exit) as exit_:
        fails_with(error)()
    assert exit_.value.exit_code == code
    assert text in capsys.readouterr().err


def test_runtime_error_keeps_its_traceback_with_debug(monkeypatch):
    monkeypatch.setenv("NEUROSEG_DEBUG", "1")
    with pytest.raises(RuntimeError, match="shape"):
        fails_with(RuntimeError("shape"))()


def test_missing_pacs_extra_is_one_line_saying_what_to_install(monkeypatch, capsys):
    import importlib.util

    from neuroseg.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pynetdicom" else real(name, *a))
    assert main(["send", "out", "--to", "PACS@127.0.0.1:4242"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neuroseg: error: neuroseg send needs pynetdicom: pip install 'neuroseg[pacs]'")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["PACS@host", "@host:1", "PACS@host:70000", "A\\B@host:1", "TOO-LONG-AE-TITLE-X@h:1"])
def test_bad_peer_addresses_are_refused(text):
    from neuroseg.errors import InputError
    from neuroseg.net.address import parse_peer

    with pytest.raises(InputError, match="AET@HOST:PORT|AE title"):
        parse_peer(text)


def test_peer_address_is_parsed():
    from neuroseg.net.address import parse_peer

    peer = parse_peer("ORTHANC@127.0.0.1:4242")
    assert (peer.ae_title, peer.host, peer.port) == ("ORTHANC", "127.0.0.1", 4242)
