"""``neuroseg listen``: a DICOM node that receives studies, segments each study's FLAIR and sends the SEG on.

Spool layout (everything named by UIDs, never by patient data)::

    SPOOL/incoming/STUDY/SERIES/SOP.dcm   every accepted instance, written atomically before success is answered
    SPOOL/results/STUDY/                  seg.dcm, qc.png, report.json of the study
    SPOOL/state/STUDY.json                received -> segmented -> sending -> sent, or failed (with why)

Nothing is lost: an instance is acknowledged only once it is on disk; a study's state is written only
after the step it names is complete (``sending`` alone is written as its step starts), so a restart
redoes at most the step that was interrupted.

A study is not sent twice. Before the first byte of a send, the SOPInstanceUIDs of its results are
recorded (state ``sending``, with ``sending_uids``); the state becomes ``sent`` as soon as the
destination confirms. A study found ``sending`` -- after a kill between the confirmation and that
write, or on a retry after a failed attempt -- is first looked up at the destination (C-FIND at IMAGE
level, or QIDO-RS by SOPInstanceUID in the study): what it holds is not sent again, and when it holds
everything the study is marked ``sent`` without sending. Only when that query is refused or fails (a
PACS that does not let this AE title query, a destination that is down, an unexpected answer) is the
*same* instance, same SOPInstanceUID, sent again, which a destination stores once; one log line says
so. The check trusts the destination: one that confirms a store before it can find the instance
would get it once more, under the same UID. A destination that is down leaves the study queued
(``sending``) and it is retried every ``retry_seconds``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.errors import InputError, NeurosegError, OutputError, first_line
from neuroseg.io.atomic import atomic_write_text
from neuroseg.net.spool import check_uid, folder_bytes, instance_path, remove_partial_files, save_instance
from neuroseg.net.tls import TlsFiles

LOG = logging.getLogger("neuroseg.net.listen")

RECEIVED, SEGMENTED, SENDING, SENT, FAILED = "received", "segmented", "sending", "sent", "failed"
# DICOM C-STORE statuses (PS3.4 B.2.3)
SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000


@dataclass
class ListenerConfig:
    spool: Path
    port: int = 11112
    ae_title: str = "NEUROSEG"
    bind: str = "127.0.0.1"
    allow: list = field(default_factory=list)  # AET@HOST, AET@CIDR or AET (neuroseg.net.allow); empty: any
    allow_subjects: list = field(default_factory=list)  # client certificate subjects (mutual TLS)
    tls: TlsFiles = field(default_factory=TlsFiles)  # cert + key: serve TLS; ca: require client certificates
    audit_log: Path | None = None  # default: SPOOL/audit.jsonl
    idle_timeout: float = 120.0  # a caller silent this long (before or during an association) is dropped
    peer: object = None  # neuroseg.net.address.Peer, for C-STORE
    client: object = None  # a DICOMwebClient, for STOW-RS
    stable_seconds: float = 10.0
    max_spool_bytes: int = 10 * 2**30
    retry_seconds: float = 30.0
    poll_seconds: float = 0.2
    mesh: bool = False  # also write the tumour surface; its stl.dcm is sent after the SEG


def log(message: str, level: int = logging.INFO) -> None:
    """One line per event, with UIDs, AE titles and addresses only (never a dataset's patient data)."""
    LOG.log(level, message)


class StudyStates:
    """Each study's state, one small JSON file per study, written atomically."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def path(self, study: str) -> Path:
        return self.folder / f"{check_uid(study, 'StudyInstanceUID')}.json"

    def get(self, study: str) -> dict | None:
        try:
            return json.loads(self.path(study).read_text())
        except (OSError, ValueError):
            return None

    def set(self, study: str, state: str, **details) -> dict:
        with self.lock:
            record = dict(self.get(study) or {"study_uid": study, "attempts": 0}, state=state,
                          updated=time.time(), **details)
            atomic_write_text(self.path(study), json.dumps(record, indent=1) + "\n")
        return record

    def all(self) -> dict[str, dict]:
        records = {}
        for path in sorted(self.folder.glob("*.json")):
            if path.name.startswith("."):  # a state being written (atomic_path's temporary name) is not a study
                continue
            record = self.get(path.stem)
            if record:
                records[path.stem] = record
        return records


class Listener:
    """The C-STORE SCP (threads of pynetdicom) and one worker that segments and sends, study by study."""

    def __init__(self, config: ListenerConfig, segmenter):
        if config.peer is None and config.client is None:
            raise InputError("neuroseg listen needs a destination: --send-to AET@HOST:PORT or --dicomweb URL")
        self.config = config
        self.segmenter = segmenter  # loaded once, used for every study
        spool = Path(config.spool)
        self.incoming, self.results = spool / "incoming", spool / "results"
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
            self.results.mkdir(parents=True, exist_ok=True)
            self.states = StudyStates(spool / "state")
        except OSError as error:
            raise NeurosegError(f"cannot create the spool {spool}: {error.strerror}") from error
        self.stop = threading.Event()
        self.last_received: dict[str, float] = {}
        self.size_lock = threading.Lock()
        self.spool_bytes = 0
        self.associations: dict[int, dict] = {}
        self.server = None
        self.started = time.time()
        from neuroseg.net.allow import Gate
        from neuroseg.net.audit import Audit

        self.gate = Gate.of(config.allow, config.allow_subjects)
        self.tls_enabled = config.tls.enabled
        self.audit = Audit(config.audit_log or spool / "audit.jsonl")

    # --- receiving (pynetdicom's threads) ---

    def on_open(self, event) -> None:
        """A connection: finish its TLS handshake here, in its own thread, with a timeout."""
        from neuroseg.net.tls import handshake, shutdown_quietly

        info = self._association(event)
        sock = event.assoc.dul.socket.socket
        try:
            info["cert_subject"] = handshake(sock)
        except (OSError, ValueError) as error:  # no certificate, another CA, expired, silent, not TLS at all
            # verify_message says which check failed (certificate revoked, has expired, ...), reason only its kind
            why = getattr(error, "verify_message", None) or getattr(error, "reason", None) or type(error).__name__
            reason = f"TLS handshake failed: {why}"
            info.update(outcome="refused", reason=reason)
            log(f"refused a connection from {info['peer_address']}: {reason}", logging.WARNING)
            shutdown_quietly(sock)

    def on_requested(self, event) -> None:
        """An A-ASSOCIATE-RQ: the caller (AE title, address, certificate) and the Called AE title checked."""
        info = self._association(event)
        request = event.assoc.requestor.primitive
        calling, called = request.calling_ae_title.strip(), request.called_ae_title.strip()
        info.update(calling_ae=calling, called_ae=called)
        reason = self.gate.refusal(calling, info["peer_address"], info.get("cert_subject"))
        diagnostic = 0x03  # calling AE title not recognised
        if reason is None and called != self.config.ae_title:
            reason, diagnostic = f"called AE title {called!r} is not this node's ({self.config.ae_title})", 0x07
        if reason:
            info.update(outcome="refused", reason=reason)
            log(f"refused an association from {calling}@{info['peer_address']}: {reason}", logging.WARNING)
            event.assoc.acse.send_reject(0x01, 0x01, diagnostic)

    def _association(self, event) -> dict:
        key = id(event.assoc)
        if key not in self.associations:
            host, port = event.assoc.requestor.address, event.assoc.requestor.port
            self.associations[key] = {"peer_address": host, "peer_port": port, "tls": self.tls_enabled,
                                      "stored": 0, "refused": 0, "late": 0, "studies": {}, "outcome": "accepted"}
        return self.associations[key]

    def on_store(self, event) -> int:
        from neuroseg.net.inbound import check_instance, decoded

        try:
            dataset = decoded(event)
            check_instance(dataset, event.request)
            path = instance_path(dataset, self.incoming)
        except InputError as error:
            log(f"refused an instance from {event.assoc.requestor.ae_title}: {error}", logging.WARNING)
            self._count(event, "refused")
            return CANNOT_UNDERSTAND
        study = path.parent.parent.name
        # the encoded dataset, plus the file's preamble and meta and the study's state file
        size = (len(event.request.DataSet.getvalue()) if hasattr(event.request.DataSet, "getvalue") else 0) + 1024
        with self.size_lock:
            if self.spool_bytes + size > self.config.max_spool_bytes:
                self._count(event, "refused")
                return OUT_OF_RESOURCES
            self.spool_bytes += size
        status = self._save(event, dataset, study)
        if status != SUCCESS:
            with self.size_lock:  # nothing of it was kept
                self.spool_bytes -= size
            self._count(event, "refused")
            return status
        self.last_received[study] = time.time()
        record = self.states.get(study)
        if record is None or record["state"] == FAILED:
            self.states.set(study, RECEIVED, error="")
        elif record["state"] in (SEGMENTED, SENDING, SENT):
            self._count(event, "late")
        self._count(event, "stored", study, path)
        return SUCCESS

    def _save(self, event, dataset, study: str) -> int:
        """Write an accepted instance to the spool, as received: SUCCESS once it is there whole; out of resources
        (and nothing of it on disk) when the spool cannot take it (a full disk, no permission)."""
        try:
            save_instance(dataset, self.incoming, encoded=event.encoded_dataset())
        except OutputError as error:
            log(f"study {study}: cannot write an instance ({first_line(error)}); refused", logging.WARNING)
            return OUT_OF_RESOURCES
        return SUCCESS

    def _count(self, event, what: str, study: str | None = None, path: Path | None = None) -> None:
        info = self._association(event)
        info[what] += 1
        if study:  # study -> series -> instance UIDs, for the audit trail
            series = info["studies"].setdefault(study, {}).setdefault(path.parent.name, [])
            series.append(path.stem)

    def on_closed(self, event) -> None:
        info = self.associations.pop(id(event.assoc), None)
        if not info:
            return
        studies = sorted(info["studies"])
        if info["outcome"] == "accepted":
            log(f"association from {info.get('calling_ae', '?')}@{info['peer_address']} closed: {info['stored']} "
                f"instances stored (study {', '.join(studies) or '-'}), {info['refused']} refused, {info['late']} "
                f"arrived after their study was segmented (kept, not processed again)")
        fields = {k: info.get(k) for k in ("outcome", "reason", "peer_address", "peer_port", "calling_ae",
                                           "called_ae", "cert_subject", "tls", "refused", "late")}
        self.audit.record("association", node_ae=self.config.ae_title, instances=info["stored"],
                          studies=[{"study_uid": study, "series": [
                              {"series_uid": series, "instances": len(uids), "instance_uids": uids}
                              for series, uids in sorted(info["studies"][study].items())]} for study in studies],
                          **fields)

    # --- the worker ---

    def is_stable(self, study: str) -> bool:
        """Quiet for ``stable_seconds``, and no open association is still sending it."""
        if any(study in counts["studies"] for counts in list(self.associations.values())):
            return False
        last = self.last_received.get(study)
        if last is None:  # after a restart the sender gets a full quiet period to resume the study
            folder = self.incoming / study
            times = [p.stat().st_mtime for p in folder.rglob("*.dcm")] if folder.is_dir() else []
            last = self.last_received[study] = max([*times, self.started])
        return time.time() - last >= self.config.stable_seconds

    def step(self) -> bool:
        """Advance every study that can move on; True when something was done."""
        did = False
        for study, record in self.states.all().items():
            if self.stop.is_set():
                break
            if record["state"] == RECEIVED and self.is_stable(study):
                self.segment(study)
                did = True
            elif record["state"] in (SEGMENTED, SENDING) and time.time() >= record.get("next_try", 0):
                self.send(study)
                did = True
        return did

    def segment(self, study: str) -> None:
        from neuroseg.export.writer import write_outputs
        from neuroseg.io.catalogue import scan_dicom

        begin = time.perf_counter()
        try:
            series = self._flair_series(scan_dicom(self.incoming / study), study)
            log(f"study {study}: quiet for {self.config.stable_seconds:g} s; segmenting series {series.uid}")
            result = self.segmenter.segment(series.load())
            write_outputs(result, self.results / study, force=True, output_format="both", viewer=False,
                          mesh=self.config.mesh)
        except NeurosegError as error:
            self.states.set(study, FAILED, error=first_line(error))
            self._audit_study(study, "failed", reason=first_line(error))
            log(f"study {study}: failed: {first_line(error)}")
            return
        except Exception as error:  # a bug must not stop the node; it is recorded, with its type
            self.states.set(study, FAILED, error=f"internal error: {type(error).__name__}: {error}")
            self._audit_study(study, "failed", reason=f"internal error: {type(error).__name__}")
            log(f"study {study}: failed: internal error: {type(error).__name__}: {error}")
            return
        report = result.report
        self.states.set(study, SEGMENTED, series_uid=series.uid, next_try=0, tumour_found=report["tumour_found"],
                        volume_ml=report["tumour_volume_ml"])
        log(f"study {study}: segmented series {series.uid} in {time.perf_counter() - begin:.1f} s "
            f"({report['tumour_volume_ml']:.1f} mL)")

    @staticmethod
    def _flair_series(catalogue, study: str):
        """The study's FLAIR series, chosen as ``scan`` chooses it; InputError with scan's reason when none."""
        found = [s for s in catalogue.studies if s.uid == study]
        if not found:
            raise InputError("no DICOM image series in the study")
        if found[0].chosen is None:
            raise InputError(found[0].reason)
        return found[0].chosen

    def send(self, study: str) -> None:
        """Send the study's results. The SOPInstanceUIDs are recorded (state ``sending``) before the first
        byte goes out; a study found ``sending`` (a restart, or a retry) first asks the destination which
        of them it already holds, and sends only the others."""
        from neuroseg.net.send import read_datasets, result_files, send_datasets

        record = self.states.get(study) or {}
        state = record.get("state", SEGMENTED)
        try:
            files = result_files(self.results / study)
            datasets = read_datasets(files)
            uids = [str(ds.SOPInstanceUID) for ds in datasets]
            held = self._held(study, datasets) if state == SENDING else set()
            if state != SENDING:
                state = SENDING
                self.states.set(study, SENDING, sending_uids=uids)
            todo = [(ds, f.name) for ds, f in zip(datasets, files) if str(ds.SOPInstanceUID) not in held]
            outcomes = send_datasets([ds for ds, _ in todo], [name for _, name in todo], peer=self.config.peer,
                                     client=self.config.client, ae_title=self.config.ae_title) if todo else []
            refused = [o for o in outcomes if not o.stored]
            problem = refused[0].detail if refused else None
        except NeurosegError as error:
            problem = first_line(error)
        except Exception as error:  # a bug or an unwrapped network error must not stop the node: retry later
            problem = f"internal error: {type(error).__name__}: {first_line(error)}"
        if problem is None:
            self.states.set(study, SENT, seg_sop_instance_uids=uids, sent=time.time())
            self._audit_study(study, "sent", seg_sop_instance_uids=uids, destination=self._destination(),
                              series_uid=record.get("series_uid"))
            if outcomes:
                log(f"study {study}: sent {len(outcomes)} instance(s) to {self._destination()}")
            else:
                log(f"study {study}: {self._destination()} already holds {', '.join(uids)} from the interrupted "
                    f"send; marked sent without sending again")
            return
        attempts = int(record.get("attempts", 0)) + 1
        self.states.set(study, state, attempts=attempts, next_try=time.time() + self.config.retry_seconds,
                        error=problem)
        self._audit_study(study, "not_sent", reason=problem, destination=self._destination())
        log(f"study {study}: not sent (attempt {attempts}): {problem}; retry in {self.config.retry_seconds:g} s")

    def _held(self, study: str, datasets: list) -> set[str]:
        """Which of ``datasets`` the destination already holds; none (and one log line) when it cannot say."""
        from neuroseg.net.send import held_instances

        try:
            return held_instances(datasets, peer=self.config.peer, client=self.config.client,
                                  ae_title=self.config.ae_title)
        except Exception as error:  # refused, unreachable or a bug: resending the same UIDs is always safe
            reason = first_line(error) if isinstance(error, NeurosegError) else \
                f"{type(error).__name__}: {error}"
            log(f"study {study}: cannot ask {self._destination()} whether it already holds "
                f"{', '.join(str(ds.SOPInstanceUID) for ds in datasets)} ({reason}); sending the same "
                f"instance(s) again, which the destination stores once")
            return set()

    def _audit_study(self, study: str, outcome: str, **fields) -> None:
        """One audit line for a study: what the spool holds of it (series and instance UIDs) and the outcome."""
        folder = self.incoming / study
        series = {p.name: sorted(f.stem for f in p.glob("*.dcm")) for p in sorted(folder.iterdir())} \
            if folder.is_dir() else {}
        self.audit.record("study", outcome=outcome, study_uid=study, series_uids=sorted(series),
                          instances=sum(len(uids) for uids in series.values()),
                          instance_uids=[uid for uids in series.values() for uid in uids], **fields)

    def _destination(self) -> str:
        return str(self.config.peer) if self.config.peer else self.config.client.base_url

    # --- running ---

    def start(self):
        """Start the SCP in the background; returns the server."""
        from pynetdicom import AE, _config, evt
        from pynetdicom.presentation import AllStoragePresentationContexts
        from pynetdicom.sop_class import Verification

        from neuroseg.net.tls import server_context

        if _config.STORE_RECV_CHUNKED_DATASET:  # each instance would arrive as a file in the system's temp folder
            raise NeurosegError("pynetdicom's _config.STORE_RECV_CHUNKED_DATASET is on: the listener weighs each "
                                "received instance against --max-spool-mb and writes it from memory; turn it off")
        self.started = time.time()
        import highdicom  # noqa: F401  the first study should not wait for the SEG writer's imports

        import neuroseg.export.dicom_seg  # noqa: F401
        import neuroseg.export.writer  # noqa: F401
        import neuroseg.io.catalogue  # noqa: F401

        removed = remove_partial_files(self.incoming)
        self.spool_bytes = folder_bytes(self.config.spool)
        pending = {s: r["state"] for s, r in self.states.all().items() if r["state"] in (RECEIVED, SEGMENTED, SENDING)}
        ae = AE(ae_title=self.config.ae_title)
        # a slow sender is waited for, a silent one is not: the same limit before and during an association
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.config.idle_timeout
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        handlers = [(evt.EVT_CONN_OPEN, self.on_open), (evt.EVT_REQUESTED, self.on_requested),
                    (evt.EVT_C_STORE, self.on_store), (evt.EVT_CONN_CLOSE, self.on_closed)]
        context = server_context(self.config.tls)
        try:
            self.server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers,
                                          ssl_context=context)
        except OSError as error:
            raise NeurosegError(f"cannot listen on {self.config.bind}:{self.config.port}: {error.strerror}") from error
        security = ("TLS with client certificates required" if self.config.tls.ca else "TLS") if context else \
            "no TLS (clear text)"
        log(f"listening on {self.config.bind}:{self.config.port} as {self.config.ae_title} ({security}), sending to "
            f"{self._destination()}; {len(pending)} studies to finish from before"
            + (f", {removed} partial files removed" if removed else ""))
        return self.server

    def serve(self) -> None:
        """Run until SIGTERM or Ctrl-C; then stop receiving and return (exit 0)."""
        def on_signal(number, frame):
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        try:
            while not self.stop.is_set():
                try:
                    did = self.step()
                except Exception as error:  # a bug must not stop the node: what it accepted is on disk, retried
                    log(f"internal error: {type(error).__name__}: {error}; going on")
                    did = False
                if not did:
                    self.stop.wait(self.config.poll_seconds)
        finally:
            self.server.shutdown()
            self.audit.close()
            log("stopped")


__all__ = ["Listener", "ListenerConfig", "StudyStates", "RECEIVED", "SEGMENTED", "SENDING", "SENT", "FAILED"]
