"""Certificates made at test time (never committed): a test CA, server and client certificates, another CA,
an expired certificate. PEM files in a temporary folder; ``cryptography`` makes them."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path
    subject: str  # RFC 4514, as neuroseg reports it


@dataclass(frozen=True)
class TestCertificates:
    ca: Path  # the test CA's certificate: what both ends trust
    server: Pair  # for 127.0.0.1 and localhost, signed by the CA
    client: Pair  # CN=orthanc-client, signed by the CA
    other_ca: Path  # a CA nobody trusts
    stranger: Pair  # CN=stranger, signed by the other CA
    expired: Pair  # CN=expired-client, signed by the test CA, expired yesterday
    ca_key: Path | None = None  # the test CA's private key: for revocation lists (make_crl)


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "neuroseg tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, *, ca=False, hosts=(), days=(-1, 30)):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    if hosts:
        names = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, cert, key=None) -> Path:
    from cryptography.hazmat.primitives import serialization

    path = folder / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
    return path


def make_certificates(folder: Path) -> TestCertificates:
    pytest.importorskip("cryptography", reason="the test certificates are made with the cryptography package")
    folder.mkdir(parents=True, exist_ok=True)

    def authority(name):
        key = _key()
        return _certificate(_name(name), key, _name(name), key, ca=True, days=(-2, 60)), key

    def leaf(name, common_name, ca, ca_key, hosts=(), days=(-1, 30)):
        key = _key()
        cert = _certificate(_name(common_name), key, ca.subject, ca_key, hosts=hosts, days=days)
        _write(folder, name, cert, key)
        return Pair(folder / f"{name}.crt", folder / f"{name}.key", cert.subject.rfc4514_string())

    ca, ca_key = authority("neuroseg test CA")
    other, other_key = authority("some other CA")
    return TestCertificates(
        ca=_write(folder, "ca", ca, ca_key), ca_key=folder / "ca.key",
        server=leaf("server", "localhost", ca, ca_key, hosts=("127.0.0.1", "localhost")),
        client=leaf("client", "orthanc-client", ca, ca_key, hosts=("127.0.0.1", "localhost")),
        other_ca=_write(folder, "other-ca", other),
        stranger=leaf("stranger", "stranger", other, other_key, hosts=("127.0.0.1",)),
        expired=leaf("expired", "expired-client", ca, ca_key, hosts=("127.0.0.1",), days=(-30, -1)),
    )


def make_crl(certs: TestCertificates, revoked: list[Pair], path: Path, days=(-1, 7)) -> Path:
    """A PEM revocation list of the test CA naming ``revoked`` (none: an empty list); ``days``: its last and
    next update, relative to now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    key = serialization.load_pem_private_key(certs.ca_key.read_bytes(), password=None)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(now + datetime.timedelta(days=days[0])).next_update(now + datetime.timedelta(days=days[1])))
    for pair in revoked:
        serial = x509.load_pem_x509_certificate(pair.cert.read_bytes()).serial_number
        builder = builder.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                                  .revocation_date(now - datetime.timedelta(hours=1)).build())
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path
