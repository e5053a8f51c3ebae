"""The requests session of DICOMweb: its own CA file (``--tls-ca``) or ``--insecure`` stands, whatever the
environment says.

requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's ``verify`` on every request
(psf/requests#3829): with either set, as many system images do, ``--tls-ca`` would be silently swapped for the
system's bundle. Here the environment's bundle is used only where the session trusts the system's CAs anyway.
"""

from __future__ import annotations

import requests


class PinnedSession(requests.Session):
    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:  # a CA file, or verification off: ours, not the env's
            settings["verify"] = self.verify
        return settings
