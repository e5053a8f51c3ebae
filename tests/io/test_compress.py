"""gzip_bytes: a gzip stream of the same bytes with isal or, where it is missing, the standard library."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from neuroseg.io.compress import gzip_bytes

DATA = np.random.default_rng(0).integers(0, 40, 200_000, dtype=np.int16).tobytes() + bytes(100_000)


def test_the_stream_decompresses_to_the_same_bytes_and_is_the_same_each_time():
    assert gzip.decompress(gzip_bytes(DATA)) == DATA
    assert gzip_bytes(DATA) == gzip_bytes(DATA)  # no timestamp in the header
    assert len(gzip_bytes(DATA)) < len(DATA) / 2


def test_isal_compresses_when_it_is_installed(monkeypatch):
    igzip = pytest.importorskip("isal.igzip")
    calls = []
    monkeypatch.setattr(igzip, "compress", lambda data, level, mtime: calls.append(level) or gzip.compress(data))
    gzip_bytes(DATA)
    assert calls == [1]


def test_without_isal_the_standard_library_gives_the_same_bytes_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "isal", None)  # import isal raises ImportError
    with pytest.raises(ImportError):
        from isal import igzip  # noqa: F401
    stream = gzip_bytes(DATA)
    assert stream == gzip.compress(DATA, 1, mtime=0)
    assert gzip.decompress(stream) == DATA
