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
