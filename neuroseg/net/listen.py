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
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.errors import InputError, NeurosegError
from neuroseg.io.atomic import atomic_write_text
from neuroseg.net.spool import check_uid, folder_bytes, instance_path, remove_partial_files, save_instance

RECEIVED, SEGMENTED, SENDING, SENT, FAILED = "received", "segmented", "sending", "sent", "failed"
# DICOM C-STORE statuses (PS3.4 B.2.3)
SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000


@dataclass
class ListenerConfig:
    spool: Path
    port: int = 11112
    ae_title: str = "NEUROSEG"
    bind: str = "127.0.0.1"
    allow: list = field(default_factory=list)  # calling AE titles; empty: any
    peer: object = None  # neuroseg.net.address.Peer, for C-STORE
    client: object = None  # a DICOMwebClient, for STOW-RS
    stable_seconds: float = 10.0
    max_spool_bytes: int = 10 * 2**30
    retry_seconds: float = 30.0
    poll_seconds: float = 0.2


def log(message: str) -> None:
    """One line per event, to stderr, with UIDs and AE titles only."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
    print(f"{stamp} neuroseg listen: {message}", file=sys.stderr, flush=True)


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

    # --- receiving (pynetdicom's threads) ---

    def on_store(self, event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        try:
            path = instance_path(dataset, self.incoming)
        except InputError as error:
            log(f"refused an instance from {event.assoc.requestor.ae_title}: {error}")
            return CANNOT_UNDERSTAND
        study = path.parent.parent.name
        # the encoded dataset, plus the file's preamble and meta and the study's state file
        size = (len(event.request.DataSet.getvalue()) if hasattr(event.request.DataSet, "getvalue") else 0) + 1024
        with self.size_lock:
            if self.spool_bytes + size > self.config.max_spool_bytes:
                self._count(event, "refused")
                return OUT_OF_RESOURCES
            self.spool_bytes += size
        try:
            save_instance(dataset, self.incoming)
        except OSError as error:
            log(f"study {study}: cannot write an instance ({error.strerror}); refused")
            return OUT_OF_RESOURCES
        self.last_received[study] = time.time()
        record = self.states.get(study)
        if record is None or record["state"] == FAILED:
            self.states.set(study, RECEIVED, error="")
        elif record["state"] in (SEGMENTED, SENDING, SENT):
            self._count(event, "late")
        self._count(event, "stored", study)
        return SUCCESS

    def _count(self, event, what: str, study: str | None = None) -> None:
        counts = self.associations.setdefault(id(event.assoc), {"stored": 0, "refused": 0, "late": 0,
                                                                 "studies": set()})
        counts[what] += 1
        if study:
            counts["studies"].add(study)

    def on_closed(self, event) -> None:
        counts = self.associations.pop(id(event.assoc), None)
        if counts:
            studies = ", ".join(sorted(counts["studies"])) or "-"
            log(f"association from {event.assoc.requestor.ae_title} closed: {counts['stored']} instances stored "
                f"(study {studies}), {counts['refused']} refused (spool full), {counts['late']} arrived after "
                f"their study was segmented (kept, not processed again)")

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
            write_outputs(result, self.results / study, force=True, output_format="both", viewer=False)
        except NeurosegError as error:
            self.states.set(study, FAILED, error=str(error).splitlines()[0])
            log(f"study {study}: failed: {str(error).splitlines()[0]}")
            return
        except Exception as error:  # a bug must not stop the node; it is recorded, with its type
            self.states.set(study, FAILED, error=f"internal error: {type(error).__name__}: {error}")
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
            problem = str(error).splitlines()[0]
        except Exception as error:  # a bug or an unwrapped network error must not stop the node: retry later
            problem = f"internal error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if problem is None:
            self.states.set(study, SENT, seg_sop_instance_uids=uids, sent=time.time())
            if outcomes:
                log(f"study {study}: sent {len(outcomes)} instance(s) to {self._destination()}")
            else:
                log(f"study {study}: {self._destination()} already holds {', '.join(uids)} from the interrupted "
                    f"send; marked sent without sending again")
            return
        attempts = int(record.get("attempts", 0)) + 1
        self.states.set(study, state, attempts=attempts, next_try=time.time() + self.config.retry_seconds,
                        error=problem)
        log(f"study {study}: not sent (attempt {attempts}): {problem}; retry in {self.config.retry_seconds:g} s")

    def _held(self, study: str, datasets: list) -> set[str]:
        """Which of ``datasets`` the destination already holds; none (and one log line) when it cannot say."""
        from neuroseg.net.send import held_instances

        try:
            return held_instances(datasets, peer=self.config.peer, client=self.config.client,
                                  ae_title=self.config.ae_title)
        except Exception as error:  # refused, unreachable or a bug: resending the same UIDs is always safe
            reason = str(error).splitlines()[0] if isinstance(error, NeurosegError) else \
                f"{type(error).__name__}: {error}"
            log(f"study {study}: cannot ask {self._destination()} whether it already holds "
                f"{', '.join(str(ds.SOPInstanceUID) for ds in datasets)} ({reason}); sending the same "
                f"instance(s) again, which the destination stores once")
            return set()

    def _destination(self) -> str:
        return str(self.config.peer) if self.config.peer else self.config.client.base_url

    # --- running ---

    def start(self):
        """Start the SCP in the background; returns the server."""
        from pynetdicom import AE, evt
        from pynetdicom.presentation import AllStoragePresentationContexts
        from pynetdicom.sop_class import Verification

        self.started = time.time()
        import highdicom  # noqa: F401  the first study should not wait for the SEG writer's imports

        import neuroseg.export.dicom_seg  # noqa: F401
        import neuroseg.export.writer  # noqa: F401
        import neuroseg.io.catalogue  # noqa: F401

        removed = remove_partial_files(self.incoming)
        self.spool_bytes = folder_bytes(self.config.spool)
        pending = {s: r["state"] for s, r in self.states.all().items() if r["state"] in (RECEIVED, SEGMENTED, SENDING)}
        ae = AE(ae_title=self.config.ae_title)
        ae.dimse_timeout, ae.network_timeout = 120, 300  # a slow sender is waited for, not dropped
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        if self.config.allow:
            ae.require_calling_aet = list(self.config.allow)
        handlers = [(evt.EVT_C_STORE, self.on_store), (evt.EVT_CONN_CLOSE, self.on_closed)]
        try:
            self.server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers)
        except OSError as error:
            raise NeurosegError(f"cannot listen on {self.config.bind}:{self.config.port}: {error.strerror}") from error
        log(f"listening on {self.config.bind}:{self.config.port} as {self.config.ae_title}, sending to "
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
            log("stopped")


__all__ = ["Listener", "ListenerConfig", "StudyStates", "RECEIVED", "SEGMENTED", "SENDING", "SENT", "FAILED"]
