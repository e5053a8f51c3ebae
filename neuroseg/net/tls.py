"""TLS for DIMSE (pynetdicom's ``ssl_context`` / ``tls_args``) and DICOMweb (a requests session).

TLS 1.2 or later only. A client checks the server's certificate chain and host name; a server given a CA
requires and checks the client's certificate (mutual TLS). Verification is skipped only by ``insecure``,
and never silently: :func:`warn_insecure` says so in the log. With a revocation list (``crl``), the other end's
own certificate must not be on its issuer's list.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from neuroseg.errors import InputError

LOG = logging.getLogger("neuroseg.net.tls")
HANDSHAKE_TIMEOUT_S = 10.0  # a caller that opens a connection and never says hello is dropped after this
# RFC 4514 short names for the attributes Python's ssl module reports
SHORT_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
               "localityName": "L", "stateOrProvinceName": "ST", "domainComponent": "DC"}


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``ca`` verifies the other end; ``cert`` and ``key`` are what this end presents."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False
    crl: Path | None = None  # PEM certificate revocation list(s) of the CA(s) that issue the other end's certificate

    @property
    def enabled(self) -> bool:
        return bool(self.ca or self.cert or self.insecure or self.crl)  # a CRL alone means TLS, not a clear link


def _check_files(files: TlsFiles) -> None:
    if (files.cert is None) != (files.key is None):
        raise InputError("--tls-cert and --tls-key go together: give both, or neither")
    for option, path in (("--tls-ca", files.ca), ("--tls-cert", files.cert), ("--tls-key", files.key),
                         ("--tls-crl", files.crl)):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{option} {path}: no such file")
    if files.crl and files.insecure:
        raise InputError("--tls-crl and --insecure contradict each other: revocation is checked only on a verified "
                         "certificate")


def _load_chain(context: ssl.SSLContext, files: TlsFiles) -> None:
    try:
        context.load_cert_chain(str(files.cert), str(files.key))
    except (ssl.SSLError, OSError) as error:
        raise InputError(f"--tls-cert {files.cert} / --tls-key {files.key}: not a certificate and its key "
                         f"({getattr(error, 'reason', None) or error})") from error


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    try:
        context.load_verify_locations(cafile=str(ca))
    except (ssl.SSLError, OSError) as error:
        raise InputError(f"--tls-ca {ca}: not a PEM certificate file ({error})") from error


def _load_crl(context: ssl.SSLContext, crl: Path) -> None:
    """The other end's own certificate is checked against its issuer's list (VERIFY_CRL_CHECK_LEAF): revoked,
    it is refused; so is one whose issuer has no list in the file, and every one once a list is out of date."""
    try:
        text = Path(crl).read_text(errors="replace")
    except OSError as error:
        raise InputError(f"--tls-crl {crl}: cannot read it ({error.strerror})") from error
    # load_verify_locations takes certificates too: a certificate here would silently become a trusted CA
    if "-----BEGIN X509 CRL-----" not in text or "CERTIFICATE-----" in text:
        raise InputError(f"--tls-crl {crl}: not a PEM certificate revocation list (BEGIN X509 CRL, no certificates)")
    try:
        context.load_verify_locations(cafile=str(crl))
    except (ssl.SSLError, OSError) as error:
        raise InputError(f"--tls-crl {crl}: not a PEM certificate revocation list ({error})") from error
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def warn_insecure(what: str) -> None:
    LOG.warning("--insecure: the certificate of %s is NOT verified; anyone on the network path can pose as "
                "it and read what is sent", what)


def client_context(files: TlsFiles, what: str = "the peer") -> ssl.SSLContext | None:
    """The context with which ``send``/``pull`` (and the listener's sends) connect; None without TLS."""
    if not files.enabled:
        return None
    _check_files(files)
    if files.ca:
        context = _only_ca(files.ca)
    else:  # the system's trusted CAs
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        warn_insecure(what)
    if files.cert:
        _load_chain(context, files)
    if files.crl:
        _load_crl(context, files.crl)
    return context


def _only_ca(ca: Path) -> ssl.SSLContext:
    """A client context that trusts ``ca`` alone (not the system's CAs as well)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ca(context, ca)
    return context


class _LazyHandshakeContext(ssl.SSLContext):
    """pynetdicom wraps each accepted socket in the server's accept loop; a handshake there would let one
    silent caller stall every other. The handshake is left to the connection's own thread
    (:func:`handshake`), with a timeout."""

    def wrap_socket(self, sock, *args, **kwargs):
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def server_context(files: TlsFiles) -> ssl.SSLContext | None:
    """The listener's context: its certificate, and with a CA, client certificates required (mutual TLS)."""
    if not files.enabled:
        return None
    if not files.cert:
        raise InputError("listen needs --tls-cert and --tls-key to serve TLS")
    if files.crl and not files.ca:
        raise InputError("--tls-crl needs --tls-ca: it revokes client certificates, which only --tls-ca makes "
                         "listen require")
    _check_files(files)
    context = _LazyHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, files)
    if files.ca:
        _load_ca(context, files.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    if files.crl:
        _load_crl(context, files.crl)
    return context


def handshake(sock) -> str | None:
    """Finish the TLS handshake of an accepted connection; the client certificate's subject (None without
    one). Raises OSError (ssl.SSLError, TimeoutError) when the caller fails it or stays silent."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    previous = sock.gettimeout()
    sock.settimeout(HANDSHAKE_TIMEOUT_S)
    try:
        sock.do_handshake()
    finally:
        sock.settimeout(previous)
    return subject_of(sock.getpeercert())


def subject_of(certificate: dict | None) -> str | None:
    """RFC 4514 text of a certificate's subject as ``ssl`` reports it, most specific first: CN=...,O=..."""
    if not certificate or "subject" not in certificate:
        return None
    parts = []
    for rdn in certificate["subject"]:
        parts.append("+".join(f"{SHORT_NAMES.get(k, k)}={_escape(v)}" for k, v in rdn))
    return ",".join(reversed(parts))


def _escape(value: str) -> str:
    return "".join("\\" + c if c in ',+"\\<>;' else c for c in value)


def web_session_settings(files: TlsFiles, url: str) -> dict:
    """``verify`` and ``cert`` for a requests session talking to ``url``."""
    if files.enabled and not url.startswith("https://"):
        raise InputError(f"--dicomweb {url}: the TLS options need an https:// URL")
    if files.crl:  # requests takes a CA file, not an SSLContext: it has no place for a revocation list
        raise InputError("--tls-crl is checked on DICOM links (--to, --from, --send-to and listen's callers), not "
                         "over DICOMweb; put the revocation check in the HTTPS proxy in front of the server")
    _check_files(files)
    settings: dict = {"verify": str(files.ca) if files.ca else True}
    if files.insecure:
        settings["verify"] = False
        warn_insecure(url)
    if files.cert:
        settings["cert"] = (str(files.cert), str(files.key))
    return settings


def shutdown_quietly(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
