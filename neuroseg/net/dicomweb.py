"""DICOMweb with dicomweb-client: STOW-RS (send), QIDO-RS + WADO-RS (pull, read back)."""

from __future__ import annotations

import time
from pathlib import Path

from neuroseg.net.outcome import NetworkError, Outcome

RETRY_DELAYS_S = (0.5, 1.0, 2.0)
BUSY_CODES = (408, 429, 503, 504)  # a server that may answer later: retried like a dropped connection


def _retrying(call, what: str):
    """Run ``call()``, retrying a dropped or refused connection, or a busy server, a bounded number of times."""
    import requests

    for delay in (*RETRY_DELAYS_S, None):
        try:
            return call()
        except requests.exceptions.SSLError as error:  # retrying would not make a certificate trusted
            raise NetworkError(f"TLS with {what} failed: {_tls_reason(error)} (check --tls-ca, --tls-cert)") from error
        except (requests.ConnectionError, requests.Timeout) as error:
            if delay is None:
                raise NetworkError(f"cannot reach {what}: {type(error).__name__}") from error
            time.sleep(delay)
        except requests.HTTPError as error:
            code = error.response.status_code if error.response is not None else "?"
            if code in BUSY_CODES and delay is not None:
                time.sleep(delay)
                continue
            hint = " (check --user/--password or --token)" if code in (401, 403) else ""
            raise NetworkError(f"{what} answered HTTP {code}{hint}") from error


def _tls_reason(error) -> str:
    text = str(error)
    for known in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "hostname mismatch", "certificate required",
                  "unknown ca", "certificate expired", "handshake failure"):
        if known.lower() in text.lower():
            return known.lower().replace("_", " ")
    # TLS 1.3: a server that wants a client certificate sends its alert after the handshake, and the client
    # often sees only the connection closing under it (most often for that reason, so the hint names it)
    if "unexpected_eof" in text.lower() or "eof occurred in violation of protocol" in text.lower():
        return "connection closed by the server during TLS (client certificate required?)"
    return type(error).__name__


def stow(datasets: list, client, names=None) -> list[Outcome]:
    """STOW-RS every dataset; the reply's ReferencedSOPSequence and FailedSOPSequence decide each instance."""
    names = names or [str(ds.SOPInstanceUID) for ds in datasets]
    reply = _retrying(lambda: client.store_instances(datasets), client.base_url)
    stored = {str(item.ReferencedSOPInstanceUID) for item in (reply.get("ReferencedSOPSequence") or [])}
    failed = {str(item.ReferencedSOPInstanceUID): int(item.get("FailureReason", 0) or 0)
              for item in (reply.get("FailedSOPSequence") or [])}  # Orthanc sends it even when empty
    outcomes = []
    for dataset, name in zip(datasets, names):
        uid = str(dataset.SOPInstanceUID)
        if uid in failed:
            outcomes.append(Outcome(uid, name, False, f"failure reason 0x{failed[uid]:04X}"))
        elif uid in stored:
            outcomes.append(Outcome(uid, name, True, "in ReferencedSOPSequence"))
        else:
            outcomes.append(Outcome(uid, name, False, "not named in the STOW-RS reply"))
    return outcomes


def held_instances(datasets: list, client) -> set[str]:
    """The SOPInstanceUIDs of ``datasets`` that the server holds: QIDO-RS, the dataset's study searched for
    its SOPInstanceUID. Only a match that names the UID counts. NetworkError when the server cannot be
    reached or answers with an HTTP error."""
    held = set()
    for dataset in datasets:
        study, uid = str(dataset.StudyInstanceUID), str(dataset.SOPInstanceUID)
        found = _retrying(lambda: client.search_for_instances(study_instance_uid=study,
                                                              search_filters={"SOPInstanceUID": uid}),
                          client.base_url)
        if any(uid in ((item.get("00080018") or {}).get("Value") or []) for item in found or []):
            held.add(uid)
    return held


def fetch_study(client, study_uid: str, folder: Path) -> list[Path]:
    """QIDO-RS the study's instances, WADO-RS the study; every instance saved under ``folder`` by UIDs."""
    from neuroseg.net.spool import save_instance

    found = _retrying(lambda: client.search_for_instances(study_instance_uid=study_uid), client.base_url)
    if not found:
        raise NetworkError(f"{client.base_url} has no study {study_uid} (QIDO-RS found no instances)")
    datasets = _retrying(lambda: client.retrieve_study(study_uid), client.base_url)
    saved = [save_instance(_with_file_meta(ds), folder) for ds in datasets]
    if len(saved) < len(found):
        raise NetworkError(f"WADO-RS returned {len(saved)} of the {len(found)} instances of study {study_uid}")
    return saved


def _with_file_meta(dataset):
    """WADO-RS datasets may lack file meta: add it so the file is a valid Part 10 file."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    return dataset


def find_instances(client, study_uid: str, modality: str | None = None) -> list[dict]:
    filters = {"Modality": modality} if modality else None
    return _retrying(lambda: client.search_for_instances(study_instance_uid=study_uid, search_filters=filters),
                     client.base_url)
