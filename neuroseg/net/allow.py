"""Who may call the listener: ``--allow AET@HOST`` (a host name, an address or a CIDR range; ``*`` for any
AE title or any host) and ``--allow-subject`` (a client certificate's subject, with mutual TLS).

A caller is admitted when it matches one rule; with no rule at all, any caller is. The calling AE title
alone proves nothing (any sender can claim one), so a rule names where it may come from too.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from neuroseg.errors import InputError
from neuroseg.net.address import check_ae_title


@dataclass(frozen=True)
class Rule:
    ae_title: str  # "*": any
    networks: tuple  # ipaddress networks; empty: any address
    text: str

    def admits(self, ae_title: str, address: str) -> bool:
        if self.ae_title != "*" and ae_title.strip() != self.ae_title:
            return False
        return not self.networks or _in(address, self.networks)


def _in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def _networks(host: str, text: str) -> tuple:
    if host == "*":
        return ()
    try:
        return (ipaddress.ip_network(host, strict=False),)
    except ValueError:
        pass
    try:  # a host name: the addresses it has now, when the listener starts
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        raise InputError(f"--allow {text!r}: cannot resolve host {host!r} ({error})") from error
    return tuple(ipaddress.ip_network(a.split("%")[0]) for a in sorted(found))


def parse_rule(text: str) -> Rule:
    """``AET@HOST``, ``AET@10.0.0.0/24``, ``*@HOST`` or a bare ``AET`` (from any address)."""
    aet, _, host = text.strip().rpartition("@") if "@" in text else (text.strip(), "", "*")
    if not host:
        raise InputError(f"--allow {text!r}: expected AET@HOST or AET@CIDR, e.g. ORTHANC@10.0.0.5")
    aet = "*" if aet == "*" else check_ae_title(aet, "--allow")
    return Rule(aet, _networks(host.strip("[]"), text), text.strip())


@dataclass(frozen=True)
class Gate:
    rules: tuple = ()
    subjects: tuple = ()  # certificate subjects, RFC 4514 ("CN=orthanc,O=Hospital") or a bare CN

    @classmethod
    def of(cls, allow=(), subjects=()) -> "Gate":
        return cls(tuple(parse_rule(a) for a in allow), tuple(s.strip() for s in subjects))

    def refusal(self, ae_title: str, address: str, subject: str | None) -> str | None:
        """Why this caller is refused; None when it may call."""
        if not self.rules and not self.subjects:
            return None
        if any(rule.admits(ae_title, address) for rule in self.rules):
            return None
        if subject and any(_subject_matches(subject, s) for s in self.subjects):
            return None
        who = f"{ae_title.strip()}@{address}" + (f" ({subject})" if subject else "")
        return f"{who} matches no --allow rule" + (" nor --allow-subject" if self.subjects else "")


def _subject_matches(subject: str, allowed: str) -> bool:
    if "=" not in allowed:
        allowed = f"CN={allowed}"
    if subject == allowed:
        return True
    return "," not in allowed and allowed in subject.split(",")  # one attribute, e.g. CN=orthanc
