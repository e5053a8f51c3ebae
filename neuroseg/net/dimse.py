"""DIMSE with pynetdicom: C-STORE (send), C-FIND + C-GET (pull), C-ECHO."""

from __future__ import annotations

import time
from pathlib import Path

from neuroseg.net.address import Peer
from neuroseg.net.outcome import NetworkError, Outcome

DEFAULT_AE_TITLE = "NEUROSEG"
RETRY_DELAYS_S = (0.5, 1.0, 2.0)  # a dropped connection is retried this many times, after these pauses
TIMEOUT_S = 30


def _new_ae(ae_title: str):
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    return ae


def _associate(ae, peer: Peer, **kwargs):
    """An established association, retrying a refused or dropped connection a bounded number of times."""
    for delay in (*RETRY_DELAYS_S, None):
        if peer.tls is not None:  # the host name is checked against the peer's certificate
            kwargs["tls_args"] = (peer.tls, peer.host)
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:  # the peer said no: retrying would not change its mind
            raise NetworkError(f"{peer} rejected the association (is this node's AE title allowed there?)")
        if delay is None:
            raise NetworkError(f"cannot reach {peer}: no association (connection refused, dropped or timed out"
                               + (", or the TLS handshake failed: see the log)" if peer.tls is not None else ")"))
        time.sleep(delay)
    raise AssertionError("unreachable")


def store(datasets: list, peer: Peer, ae_title: str = DEFAULT_AE_TITLE, names=None) -> list[Outcome]:
    """C-STORE every dataset to ``peer``; one Outcome each, with the peer's status."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    names = names or [str(ds.SOPInstanceUID) for ds in datasets]
    ae = _new_ae(ae_title)
    for key in {(str(ds.SOPClassUID), str(_syntax(ds))) for ds in datasets}:
        syntaxes = [key[1]] + [s for s in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) if s != key[1]]
        ae.add_requested_context(key[0], syntaxes)
    outcomes: list[Outcome] = []
    pending = list(zip(datasets, names))
    for delay in (*RETRY_DELAYS_S, None):
        assoc = _associate(ae, peer)
        try:
            while pending:
                dataset, name = pending[0]
                status = assoc.send_c_store(dataset)
                if not status:  # no reply: the connection dropped mid-way; retry what is left
                    break
                outcomes.append(_outcome(dataset, name, status))
                pending.pop(0)
        finally:
            if assoc.is_established:
                assoc.release()
        if not pending:
            return outcomes
        if delay is None:
            outcomes += [Outcome(str(ds.SOPInstanceUID), name, False, f"connection to {peer} dropped")
                         for ds, name in pending]
            return outcomes
        time.sleep(delay)
    return outcomes


def held_instances(datasets: list, peer: Peer, ae_title: str = DEFAULT_AE_TITLE) -> set[str]:
    """The SOPInstanceUIDs of ``datasets`` that ``peer`` holds: one C-FIND (study root, IMAGE level, the
    dataset's study, series and instance UIDs) each, in one association. Only a match that names the UID
    counts. NetworkError when the peer cannot be reached or does not answer a query with success."""
    from pydicom.dataset import Dataset
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    ae = _new_ae(ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, peer)
    held = set()
    try:
        for dataset in datasets:
            query = Dataset()
            query.QueryRetrieveLevel = "IMAGE"
            query.StudyInstanceUID = dataset.StudyInstanceUID
            query.SeriesInstanceUID = dataset.SeriesInstanceUID
            query.SOPInstanceUID = uid = str(dataset.SOPInstanceUID)
            try:
                replies = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
            except (ValueError, RuntimeError) as error:  # e.g. the peer accepted no C-FIND context
                raise NetworkError(f"{peer} cannot be queried: {error}") from error
            final = replies[-1][0] if replies else None
            if not final or int(final.Status) != 0x0000:
                code = f"status 0x{int(final.Status):04X}" if final else "no reply"
                raise NetworkError(f"{peer} refused the C-FIND ({code})")
            if any(status.Status in (0xFF00, 0xFF01) and identifier is not None
                   and str(identifier.get("SOPInstanceUID", "")) == uid for status, identifier in replies[:-1]):
                held.add(uid)
    finally:
        if assoc.is_established:
            assoc.release()
    return held


def _syntax(dataset):
    from pydicom.uid import ExplicitVRLittleEndian

    meta = getattr(dataset, "file_meta", None)
    return getattr(meta, "TransferSyntaxUID", None) or ExplicitVRLittleEndian


def _outcome(dataset, name: str, status) -> Outcome:
    from pynetdicom.status import code_to_category

    code = int(status.Status)
    category = code_to_category(code)
    detail = f"status 0x{code:04X} {category}"
    if "ErrorComment" in status:
        detail += f": {status.ErrorComment}"
    return Outcome(str(dataset.SOPInstanceUID), name, category in ("Success", "Warning"), detail)


def echo(peer: Peer, ae_title: str = DEFAULT_AE_TITLE) -> bool:
    from pynetdicom.sop_class import Verification

    ae = _new_ae(ae_title)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, peer)
    try:
        status = assoc.send_c_echo()
        return bool(status) and int(status.Status) == 0
    finally:
        assoc.release()


def get_study(peer: Peer, study_uid: str, folder: Path, ae_title: str = DEFAULT_AE_TITLE) -> list[Path]:
    """C-FIND the study's series at ``peer``, then C-GET the study; every instance saved under ``folder``."""
    from pydicom.dataset import Dataset
    from pynetdicom import build_role, evt
    from pynetdicom.presentation import StoragePresentationContexts
    from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelFind,
                                      StudyRootQueryRetrieveInformationModelGet)

    from neuroseg.net.spool import save_instance

    ae = _new_ae(ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    storage = [c.abstract_syntax for c in StoragePresentationContexts][:126]  # 128 contexts at most
    for uid in storage:
        ae.add_requested_context(uid)
    roles = [build_role(uid, scp_role=True) for uid in storage]
    saved: list[Path] = []

    def on_store(event):
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        saved.append(save_instance(dataset, folder))
        return 0x0000

    assoc = _associate(ae, peer, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = ""
        replies = assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
        found = [identifier for status, identifier in replies
                 if status and status.Status in (0xFF00, 0xFF01) and identifier is not None]
        if not found:
            raise NetworkError(f"{peer} has no study {study_uid} (C-FIND found no series)")
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        failed = 0
        for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
            if status and status.Status not in (0x0000, 0xFF00):
                failed = int(status.get("NumberOfFailedSuboperations", 0) or 0) or 1
    finally:
        if assoc.is_established:
            assoc.release()
    if failed or not saved:
        raise NetworkError(f"C-GET of study {study_uid} from {peer} returned {len(saved)} instances "
                           f"and {failed} failures")
    return saved
