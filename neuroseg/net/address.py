"""Where a DICOM peer listens: ``AET@HOST:PORT``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from neuroseg.errors import InputError

PEER_PATTERN = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})$")
# AE titles: up to 16 characters of the default repertoire, no backslash or control characters.
AE_TITLE_PATTERN = re.compile(r"^[ -\[\]-~]{1,16}$")


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int
    tls: object = field(default=None, compare=False, repr=False)  # an ssl.SSLContext (neuroseg.net.tls); None: clear text

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_peer(text: str, option: str = "--to") -> Peer:
    """``AET@HOST:PORT`` -> Peer; InputError naming the option otherwise."""
    match = PEER_PATTERN.match(text.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise InputError(f"{option} {text!r}: expected AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242")
    return Peer(check_ae_title(match["aet"], option), match["host"].strip("[]"), int(match["port"]))


def check_ae_title(title: str, option: str = "--ae-title") -> str:
    if not AE_TITLE_PATTERN.match(title) or not title.strip():
        raise InputError(f"{option} {title!r}: an AE title is 1-16 printable characters, no backslash")
    return title.strip()
