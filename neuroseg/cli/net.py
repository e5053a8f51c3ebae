"""``neuroseg send``, ``pull`` and ``listen``: DICOM networking (the ``pacs`` extra). Heavy imports in the commands."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

TO_HELP = "C-STORE/C-FIND/C-GET peer as AET@HOST:PORT."
WEB_HELP = "DICOMweb root URL, e.g. http://127.0.0.1:8042/dicom-web"


def _destination(to: Optional[str], dicomweb: Optional[str], auth: dict, option: str = "--to"):
    """(peer, client): exactly one of them, from the options."""
    from neuroseg.errors import InputError
    from neuroseg.net.address import parse_peer
    from neuroseg.net.auth import web_auth, web_client

    if (to is None) == (dicomweb is None):
        raise InputError(f"give one destination: {option} AET@HOST:PORT or --dicomweb URL")
    if to is not None:
        return parse_peer(to, option), None
    return None, web_client(dicomweb, web_auth(**auth))


def register(app, friendly_errors) -> None:
    """Add the ``send``, ``pull`` and ``listen`` commands to ``app``."""

    @app.command()
    @friendly_errors
    def send(
        path: Path = typer.Argument(..., metavar="OUTDIR|SEG.dcm", help="A run's output folder, or one DICOM file."),
        to: Optional[str] = typer.Option(None, "--to", help=TO_HELP),
        dicomweb: Optional[str] = typer.Option(None, "--dicomweb", help=WEB_HELP + " (STOW-RS)."),
        ae_title: str = typer.Option("NEUROSEG", "--ae-title", help="This node's (calling) AE title."),
        user: Optional[str] = typer.Option(None, "--user", help="DICOMweb basic-auth user."),
        password: Optional[str] = typer.Option(None, "--password", help="Or --password-file, or "
                                               "$NEUROSEG_DICOMWEB_PASSWORD."),
        password_file: Optional[Path] = typer.Option(None, "--password-file"),
        token: Optional[str] = typer.Option(None, "--token", help="Bearer token (or --token-file, "
                                            "$NEUROSEG_DICOMWEB_TOKEN)."),
        token_file: Optional[Path] = typer.Option(None, "--token-file"),
    ):
        """Send a run's DICOM-SEG (and secondary capture) by C-STORE or STOW-RS; exit 7 if anything was not stored."""
        from neuroseg.net import require_pacs

        require_pacs("send")
        from neuroseg.net.address import check_ae_title
        from neuroseg.net.outcome import check_outcomes
        from neuroseg.net.send import send as send_results

        auth = dict(user=user, password=password, password_file=password_file, token=token, token_file=token_file)
        peer, client = _destination(to, dicomweb, auth)
        outcomes = send_results(path, peer=peer, client=client, ae_title=check_ae_title(ae_title))
        for outcome in outcomes:
            typer.echo(outcome.line())
        check_outcomes(outcomes, str(peer) if peer else dicomweb)

    @app.command()
    @friendly_errors
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
        user: Optional[str] = typer.Option(None, "--user", help="DICOMweb basic-auth user."),
        password: Optional[str] = typer.Option(None, "--password"),
        password_file: Optional[Path] = typer.Option(None, "--password-file"),
        token: Optional[str] = typer.Option(None, "--token"),
        token_file: Optional[Path] = typer.Option(None, "--token-file"),
    ):
        """Fetch a study by DICOMweb or C-FIND + C-GET into a folder that `run` and `batch` read."""
        from neuroseg.net import require_pacs

        require_pacs("pull")
        from neuroseg.net.address import check_ae_title
        from neuroseg.net.pull import pull_study

        auth = dict(user=user, password=password, password_file=password_file, token=token, token_file=token_file)
        peer, client = _destination(source, dicomweb, auth, option="--from")
        folder, files = pull_study(study, output, peer=peer, client=client, ae_title=check_ae_title(ae_title))
        typer.echo(f"pulled {len(files)} instances of study {study} into {folder}")
        if run_into is not None:
            from neuroseg.cli.console import segment_into

            segment_into(folder, run_into, model=model, device=device, output_format="both", force=force)

    @app.command()
    @friendly_errors
    def listen(
        spool: Path = typer.Option(..., "--spool", help="Folder for received instances, results and study states."),
        port: int = typer.Option(11112, "--port", help="DICOM port to listen on."),
        ae_title: str = typer.Option("NEUROSEG", "--ae-title", help="This node's AE title."),
        bind: str = typer.Option("127.0.0.1", "--bind", help="Address to listen on (0.0.0.0: every interface)."),
        allow: List[str] = typer.Option([], "--allow", help="Calling AE title allowed to connect (repeat); "
                                                            "none given: any."),
        send_to: Optional[str] = typer.Option(None, "--send-to", help="Where SEGs go: AET@HOST:PORT (C-STORE)."),
        dicomweb: Optional[str] = typer.Option(None, "--dicomweb", help=WEB_HELP + " (STOW-RS)."),
        stable_seconds: float = typer.Option(10.0, "--stable-seconds", help="A study quiet this long is complete."),
        max_spool_mb: float = typer.Option(10240, "--max-spool-mb", help="Refuse instances past this spool size."),
        retry_seconds: float = typer.Option(30.0, "--retry-seconds", help="Wait before resending to a "
                                                                         "destination that was down."),
        model: Optional[Path] = typer.Option(None, "--model", help="A model folder (default: the shipped model)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        user: Optional[str] = typer.Option(None, "--user", help="DICOMweb basic-auth user."),
        password: Optional[str] = typer.Option(None, "--password"),
        password_file: Optional[Path] = typer.Option(None, "--password-file"),
        token: Optional[str] = typer.Option(None, "--token"),
        token_file: Optional[Path] = typer.Option(None, "--token-file"),
    ):
        """Run as a DICOM node: receive studies, segment each study's FLAIR, send the SEG on. Stop with SIGTERM."""
        from neuroseg.net import require_pacs

        require_pacs("listen")
        from neuroseg.net.address import check_ae_title
        from neuroseg.net.listen import Listener, ListenerConfig

        auth = dict(user=user, password=password, password_file=password_file, token=token, token_file=token_file)
        peer, client = _destination(send_to, dicomweb, auth, option="--send-to")
        config = ListenerConfig(spool=spool, port=port, ae_title=check_ae_title(ae_title), bind=bind,
                                allow=[check_ae_title(a, "--allow") for a in allow], peer=peer, client=client,
                                stable_seconds=stable_seconds, max_spool_bytes=int(max_spool_mb * 2**20),
                                retry_seconds=retry_seconds)
        from neuroseg.inference import Segmenter

        Listener(config, Segmenter(model, device=device)).serve()
