"""``neuroseg send``, ``pull`` and ``listen``: DICOM networking (the ``pacs`` extra). Heavy imports in the commands."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer

TO_HELP = "C-STORE/C-FIND/C-GET peer as AET@HOST:PORT."
WEB_HELP = "DICOMweb root URL, e.g. https://pacs.example:8042/dicom-web"

# The network options of send, pull and listen, declared once: DICOMweb credentials and TLS.
NETWORK_OPTIONS = {
    "user": ("Optional[str]", typer.Option(None, "--user", help="DICOMweb basic-auth user.")),
    "password": ("Optional[str]", typer.Option(None, "--password", help="Or --password-file, or "
                                               "$NEUROSEG_DICOMWEB_PASSWORD.")),
    "password_file": ("Optional[Path]", typer.Option(None, "--password-file")),
    "token": ("Optional[str]", typer.Option(None, "--token", help="DICOMweb bearer token (or --token-file, "
                                            "$NEUROSEG_DICOMWEB_TOKEN).")),
    "token_file": ("Optional[Path]", typer.Option(None, "--token-file")),
    "tls_ca": ("Optional[Path]", typer.Option(None, "--tls-ca", help="CA certificate(s) (PEM) that verify the peer; "
                                              "for listen, client certificates are then required (mutual TLS).")),
    "tls_cert": ("Optional[Path]", typer.Option(None, "--tls-cert", help="This node's certificate (PEM), presented "
                                                "to the peer; listen serves TLS with it.")),
    "tls_key": ("Optional[Path]", typer.Option(None, "--tls-key", help="The private key of --tls-cert (PEM).")),
    "tls_crl": ("Optional[Path]", typer.Option(None, "--tls-crl", help="Certificate revocation list(s) (PEM) of the "
                                               "CA: a revoked peer certificate is refused (DICOM links only).")),
    "insecure": ("bool", typer.Option(False, "--insecure", help="TLS without verifying the peer's certificate "
                                      "(warns; for tests only).")),
}


@dataclass(frozen=True)
class Network:
    user: Optional[str] = None
    password: Optional[str] = None
    password_file: Optional[Path] = None
    token: Optional[str] = None
    token_file: Optional[Path] = None
    tls_ca: Optional[Path] = None
    tls_cert: Optional[Path] = None
    tls_key: Optional[Path] = None
    tls_crl: Optional[Path] = None
    insecure: bool = False

    def tls(self):
        from neuroseg.net.tls import TlsFiles

        return TlsFiles(self.tls_ca, self.tls_cert, self.tls_key, self.insecure, self.tls_crl)

    def auth(self):
        from neuroseg.net.auth import web_auth

        return web_auth(self.user, self.password, self.password_file, self.token, self.token_file)


def network_options(command):
    """Give ``command`` the shared network options; it receives them as one ``net: Network``."""
    signature = inspect.signature(command)
    params = [p for p in signature.parameters.values() if p.name != "net"]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
               for name, (kind, option) in NETWORK_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        net = Network(**{name: kwargs.pop(name) for name in NETWORK_OPTIONS if name in kwargs})
        return command(*args, net=net, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)
    wrapper.__annotations__ = {**{k: v for k, v in command.__annotations__.items() if k != "net"},
                               **{name: kind for name, (kind, _) in NETWORK_OPTIONS.items()}}
    return wrapper


def _log_to_stderr() -> None:
    """neuroseg's log lines (the listener's events, TLS warnings) to stderr, one a line, time-stamped (UTC)."""
    import logging
    import time

    logger = logging.getLogger("neuroseg")
    if not any(getattr(h, "neuroseg_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.neuroseg_cli = True
        formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _destination(to: Optional[str], dicomweb: Optional[str], net: Network, option: str = "--to"):
    """(peer, client): exactly one of them, from the options, with TLS when the options ask for it."""
    from dataclasses import replace

    from neuroseg.errors import InputError
    from neuroseg.net.address import parse_peer
    from neuroseg.net.auth import web_client
    from neuroseg.net.tls import client_context

    _log_to_stderr()
    if (to is None) == (dicomweb is None):
        raise InputError(f"give one destination: {option} AET@HOST:PORT or --dicomweb URL")
    if to is not None:
        peer = parse_peer(to, option)
        return replace(peer, tls=client_context(net.tls(), str(peer))), None
    return None, web_client(dicomweb, net.auth(), tls=net.tls())


def _require_mesh_extra() -> None:
    """--mesh's one line when scikit-image or trimesh is missing, said before any network work."""
    from neuroseg.export.mesh import require_mesh_extra

    require_mesh_extra()


def register(app, friendly_errors) -> None:
    """Add the ``send``, ``pull`` and ``listen`` commands to ``app``."""

    @app.command()
    @friendly_errors
    @network_options
    def send(
        path: Path = typer.Argument(..., metavar="OUTDIR|SEG.dcm", help="A run's output folder, or one DICOM file."),
        to: Optional[str] = typer.Option(None, "--to", help=TO_HELP),
        dicomweb: Optional[str] = typer.Option(None, "--dicomweb", help=WEB_HELP + " (STOW-RS)."),
        ae_title: str = typer.Option("NEUROSEG", "--ae-title", help="This node's (calling) AE title."),
        net: Network = None,  # the shared network options (network_options)
    ):
        """Send a run's DICOM-SEG (and secondary capture) by C-STORE or STOW-RS; exit 7 if anything was not stored."""
        from neuroseg.net import require_pacs

        require_pacs("send")
        from neuroseg.net.address import check_ae_title
        from neuroseg.net.outcome import check_outcomes
        from neuroseg.net.send import send as send_results

        peer, client = _destination(to, dicomweb, net)
        outcomes = send_results(path, peer=peer, client=client, ae_title=check_ae_title(ae_title))
        for outcome in outcomes:
            typer.echo(outcome.line())
        check_outcomes(outcomes, str(peer) if peer else dicomweb)

    @app.command()
    @friendly_errors
    @network_options
    def pull(
        study: str = typer.Option(..., "--study", help="StudyInstanceUID to fetch."),
        output: Path = typer.Option(..., "-o", "--output", help="Folder for the instances (STUDY/SERIES/SOP.dcm)."),
        source: Optional[str] = typer.Option(None, "--from", help=TO_HELP),
        dicomweb: Optional[str] = typer.Option(None, "--dicomweb", help=WEB_HELP + " (QIDO-RS + WADO-RS)."),
        ae_title: str = typer.Option("NEUROSEG", "--ae-title", help="This node's (calling) AE title."),
        run_into: Optional[Path] = typer.Option(None, "--run", help="Then segment the study's FLAIR into this "
                                                "folder (as `neuroseg run --format both`)."),
        model: Optional[Path] = typer.Option(None, "--model", help="A model folder for --run."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (for --run)."),
        force: bool = typer.Option(False, "--force", help="Overwrite --run's outputs."),
        mesh: bool = typer.Option(False, "--mesh", help="With --run: also write the tumour surface (tumour.stl/.obj "
                                  "in LPS mm, tumour.gii in RAS mm) and stl.dcm beside seg.dcm."),
        net: Network = None,  # the shared network options (network_options)
    ):
        """Fetch a study by DICOMweb or C-FIND + C-GET into a folder that `run` and `batch` read."""
        from neuroseg.net import require_pacs

        require_pacs("pull")
        if mesh and run_into is None:
            from neuroseg.errors import InputError

            raise InputError("--mesh needs --run: the surface is made from the run's mask")
        if mesh:  # refused before the study is fetched, not after
            _require_mesh_extra()
        from neuroseg.net.address import check_ae_title
        from neuroseg.net.pull import pull_study

        peer, client = _destination(source, dicomweb, net, option="--from")
        folder, files = pull_study(study, output, peer=peer, client=client, ae_title=check_ae_title(ae_title))
        typer.echo(f"pulled {len(files)} instances of study {study} into {folder}")
        if run_into is not None:
            from neuroseg.cli.console import segment_into

            segment_into(folder, run_into, model=model, device=device, output_format="both", force=force, mesh=mesh)

    @app.command()
    @friendly_errors
    @network_options
    def listen(
        spool: Path = typer.Option(..., "--spool", help="Folder for received instances, results and study states."),
        port: int = typer.Option(11112, "--port", help="DICOM port to listen on."),
        ae_title: str = typer.Option("NEUROSEG", "--ae-title", help="This node's AE title."),
        bind: str = typer.Option("127.0.0.1", "--bind", help="Address to listen on (0.0.0.0: every interface)."),
        allow: List[str] = typer.Option([], "--allow", help="Who may call: AET@HOST or AET@CIDR (repeat); a bare "
                                        "AET: from any address. None given (and no --allow-subject): anyone."),
        allow_subject: List[str] = typer.Option([], "--allow-subject", help="With --tls-ca: a client certificate "
                                                "subject that may call, e.g. 'CN=orthanc,O=Hospital' (repeat)."),
        audit_log: Optional[Path] = typer.Option(None, "--audit-log", help="The audit trail, JSON lines, rotated at "
                                                 "10 MB, 10 kept (default: SPOOL/audit.jsonl)."),
        idle_timeout: float = typer.Option(120.0, "--idle-timeout", help="Drop a caller silent this many seconds."),
        send_to: Optional[str] = typer.Option(None, "--send-to", help="Where SEGs go: AET@HOST:PORT (C-STORE)."),
        dicomweb: Optional[str] = typer.Option(None, "--dicomweb", help=WEB_HELP + " (STOW-RS)."),
        stable_seconds: float = typer.Option(10.0, "--stable-seconds", help="A study quiet this long is complete."),
        max_spool_mb: float = typer.Option(10240, "--max-spool-mb", help="Refuse instances past this spool size."),
        retry_seconds: float = typer.Option(30.0, "--retry-seconds", help="Wait before resending to a "
                                                                         "destination that was down."),
        model: Optional[Path] = typer.Option(None, "--model", help="A model folder (default: the shipped model)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        mesh: bool = typer.Option(False, "--mesh", help="Also write each study's tumour surface (tumour.stl/.obj, "
                                  "tumour.gii) and send stl.dcm (Encapsulated STL) after the SEG."),
        net: Network = None,  # the shared network options (network_options)
    ):
        """Run as a DICOM node: receive studies, segment each study's FLAIR, send the SEG on. Stop with SIGTERM."""
        from neuroseg.net import require_pacs

        require_pacs("listen")
        if mesh:  # refused at start, not as a failure of every study
            _require_mesh_extra()
        from neuroseg.net.address import check_ae_title
        from neuroseg.net.listen import Listener, ListenerConfig

        peer, client = _destination(send_to, dicomweb, net, option="--send-to")
        config = ListenerConfig(spool=spool, port=port, ae_title=check_ae_title(ae_title), bind=bind,
                                allow=list(allow), allow_subjects=list(allow_subject), tls=net.tls(),
                                audit_log=audit_log, idle_timeout=idle_timeout, peer=peer, client=client,
                                stable_seconds=stable_seconds, max_spool_bytes=int(max_spool_mb * 2**20),
                                retry_seconds=retry_seconds, mesh=mesh)
        from neuroseg.inference import Segmenter

        Listener(config, Segmenter(model, device=device)).serve()
