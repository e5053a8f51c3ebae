"""The audit trail: one JSON line per association and per study, in a file that is rotated.

Only the fields named in ``FIELDS`` are written: UIDs, AE titles, addresses, certificate subjects, counts
and outcomes. Nothing read from a dataset's patient or visit modules is ever passed here, and a field that
is not on the list is refused, so a patient name, ID, birth date or accession number cannot reach the file.
"""

from __future__ import annotations

import json
import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from neuroseg.errors import NeurosegError

LOGGER_NAME = "neuroseg.audit"
MAX_BYTES, BACKUPS = 10 * 2**20, 10
FIELDS = frozenset({
    "event", "outcome", "reason", "peer_address", "peer_port", "calling_ae", "called_ae", "cert_subject", "tls",
    "study_uid", "series_uids", "instance_uids", "instances", "refused", "late", "studies", "series_uid",
    "seg_sop_instance_uids", "destination", "seconds", "node_ae",
})


class Audit:
    """Writes audit records; with no path it writes nowhere (and still checks every field)."""

    def __init__(self, path: Path | None, max_bytes: int = MAX_BYTES, backups: int = BACKUPS):
        self.logger = logging.getLogger(f"{LOGGER_NAME}.{id(self)}")
        self.logger.propagate = False  # the audit trail is its own file, not the console's log
        self.logger.setLevel(logging.INFO)
        self.path = Path(path) if path else None
        if self.path:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
            except OSError as error:
                raise NeurosegError(f"cannot open the audit log {self.path}: {error.strerror}") from error
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)

    def record(self, event: str, **fields) -> dict:
        unknown = set(fields) - FIELDS
        if unknown:  # a programming error: a field that was not reviewed for PHI
            raise ValueError(f"audit fields not on the list: {sorted(unknown)}")
        now = time.time()
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
                "event": event, **{k: v for k, v in fields.items() if v is not None}}
        self.logger.info(json.dumps(line, sort_keys=False, default=_plain))
        return line

    def close(self) -> None:
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)


def _plain(value):
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value)
    return str(value)
