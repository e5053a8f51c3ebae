"""A TLS proxy for tests: stunnel (Debian ``stunnel4``) terminating HTTPS in front of a plain-HTTP server.

Orthanc 1.10.1's own HTTPS (``SslEnabled``) segfaults here on its first request, so HTTPS is tested the way a
site would deploy it: a proxy holding the certificate, Orthanc's HTTP on 127.0.0.1 behind it. The configuration
is written at test time beside the certificates it names; the proxy requires a client certificate from the CA
when one is given (mutual TLS)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.net.orthanc import free_port, stop_process


@dataclass
class TlsProxy:
    port: int
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process(self.process)


def stunnel_config(port: int, target_port: int, cert: Path, key: Path, ca: Path | None, log: Path) -> str:
    lines = ["foreground = yes", "pid =", f"output = {log}", "debug = notice", "",
             "[https]", f"accept = 127.0.0.1:{port}", f"connect = 127.0.0.1:{target_port}",
             f"cert = {cert}", f"key = {key}", "sslVersionMin = TLSv1.2"]
    if ca is not None:  # mutual TLS: a certificate from this CA, checked, or no connection
        lines += [f"CAfile = {ca}", "verifyChain = yes", "requireCert = yes"]
    return "\n".join(lines) + "\n"


def start_tls_proxy(folder: Path, target_port: int, cert: Path, key: Path, ca: Path | None = None) -> TlsProxy:
    """Start stunnel on a free port forwarding to ``127.0.0.1:target_port``; skip, saying why, when it cannot."""
    binary = shutil.which("stunnel4") or shutil.which("stunnel")
    if binary is None:
        pytest.skip("stunnel is not installed (Debian package 'stunnel4'): no TLS proxy in front of Orthanc")
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "stunnel.log"
    config = folder / "stunnel.conf"
    config.write_text(stunnel_config(port, target_port, cert, key, ca, log))
    process = subprocess.Popen([binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    proxy = TlsProxy(port, process, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-500:] if log.exists() else ""
            pytest.skip(f"stunnel exited with {process.returncode} at start: {tail.strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proxy
        except OSError:
            time.sleep(0.05)
    proxy.stop()
    pytest.skip("stunnel did not listen within 15 s")
