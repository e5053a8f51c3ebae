"""DICOMweb credentials from an option, an environment variable or a file; never printed or logged."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.errors import InputError

PASSWORD_ENV = "NEUROSEG_DICOMWEB_PASSWORD"
TOKEN_ENV = "NEUROSEG_DICOMWEB_TOKEN"


@dataclass(frozen=True)
class WebAuth:
    """Basic (user and password) or bearer (token) authentication, or none."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def apply(self, session) -> None:
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.user:
            session.auth = (self.user, self.password or "")


def _secret(value: str | None, env: str, path: Path | None, what: str) -> str | None:
    if value:
        return value
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as error:
            raise InputError(f"cannot read the {what} file {path}: {error.strerror}") from error
    return os.environ.get(env) or None


def web_auth(user: str | None = None, password: str | None = None, password_file: Path | None = None,
             token: str | None = None, token_file: Path | None = None) -> WebAuth:
    """The option wins, then the file, then the environment (NEUROSEG_DICOMWEB_PASSWORD / _TOKEN)."""
    token = _secret(token, TOKEN_ENV, token_file, "token")
    password = _secret(password, PASSWORD_ENV, password_file, "password") if user else None
    if user and password is None and not token:
        raise InputError(f"--user {user} needs a password: --password, --password-file or ${PASSWORD_ENV}")
    return WebAuth(user, password, token)


def web_client(url: str, auth: WebAuth, timeout: float = 30.0, tls=None):
    """A dicomweb-client client for ``url`` with the credentials and TLS files (neuroseg.net.tls.TlsFiles:
    the CA that verifies the server, our client certificate) set on its session."""
    from dicomweb_client.api import DICOMwebClient

    from neuroseg.net.tls import TlsFiles, web_session_settings
    from neuroseg.net.websession import PinnedSession

    if not url.startswith(("http://", "https://")):
        raise InputError(f"--dicomweb {url!r}: expected an http:// or https:// URL")
    session = PinnedSession()
    for name, value in web_session_settings(tls or TlsFiles(), url).items():
        setattr(session, name, value)
    auth.apply(session)
    client = DICOMwebClient(url.rstrip("/"), session=session, timeout=timeout)
    # dicomweb-client retries every exception, a certificate error too, for ~30 s; neuroseg.net.dicomweb retries
    # what is worth retrying (a dropped connection, a busy server), a bounded number of times
    client.set_http_retry_params(retry=False)
    return client
