"""``neuroseg scan`` and ``neuroseg batch``: whole folders of studies. Heavy imports live in the commands."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from neuroseg.errors import InputError


def register(app, friendly_errors) -> None:
    """Add the ``scan`` and ``batch`` commands to ``app``."""

    @app.command()
    @friendly_errors
    def scan(
        folder: Path = typer.Argument(..., metavar="DIR",
                                      help="A folder of DICOM files (searched recursively, any file names)."),
        as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON instead of tables."),
    ):
        """List the studies and series in DIR, and which series would be processed and why."""
        from neuroseg.io.catalogue import scan_dicom

        catalogue = scan_dicom(folder)
        if as_json:
            import json

            typer.echo(json.dumps({"folder": str(folder), "studies": [s.summary() for s in catalogue.studies],
                                   "unreadable": catalogue.unreadable}, indent=2))
            return
        print_catalogue(catalogue)

    @app.command()
    @friendly_errors
    def batch(
        folder: Optional[Path] = typer.Argument(None, metavar="DIR", help="A folder holding NIfTI files and/or "
                                                "DICOM studies, or a BIDS dataset."),
        output: Optional[Path] = typer.Option(None, "-o", "--output",
                                              help="Folder for one sub-folder per case and the summaries."),
        model: Optional[Path] = typer.Option(None, "--model", help="A model folder (default: the shipped model)."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu or cuda."),
        output_format: str = typer.Option("nifti", "--format", help="nifti, dicom-seg or both (DICOM cases)."),
        series: Optional[List[str]] = typer.Option(None, "--series", help="Process this SeriesInstanceUID instead "
                                                   "of its study's automatic choice (repeatable)."),
        workers: int = typer.Option(2, "--workers", min=0, help="Threads in this process (0: one case at a time)."),
        scheduler: Optional[str] = typer.Option(
            None, "--scheduler", help="Where cases run: local:N (a Dask cluster of N processes here), "
            "tcp://HOST:PORT (a running Dask cluster; OUTDIR must be shared), processes:N, threads:N or serial."),
        shard: Optional[str] = typer.Option(None, "--shard", help="K/N: do the Kth of N fixed shares of the "
                                            "cases (a job array); --merge OUTDIR writes the one summary."),
        merge: Optional[Path] = typer.Option(None, "--merge", metavar="OUTDIR",
                                             help="Write the summary of all shards in OUTDIR and exit."),
        force: bool = typer.Option(False, "--force", help="Redo cases whose outputs are already complete."),
        force_input: bool = typer.Option(False, "--force-input", help="Segment cases an input check refuses "
                                                                    "(their reports mark the run as forced)."),
        viewer: bool = typer.Option(True, "--viewer/--no-viewer", help="Write each case's viewer.html (the "
                                    "costliest output to write; index.html links the pages there are)."),
        mesh: bool = typer.Option(False, "--mesh", help="Also write each case's tumour surface (tumour.stl/.obj "
                                  "in LPS mm, tumour.gii in RAS mm)."),
    ):
        """Segment every NIfTI volume and every study's FLAIR series under DIR (or a BIDS dataset's FLAIRs); resumable."""
        from rich.console import Console

        from neuroseg.errors import BatchIncompleteError

        console = Console(stderr=True)
        if merge is not None:
            if folder is not None or output is not None or shard is not None:
                raise InputError("--merge OUTDIR takes no DIR, -o or --shard")
            from neuroseg.batch import merge_shards

            result = merge_shards(merge)
            output = merge
        else:
            if folder is None or output is None:
                raise InputError("batch needs DIR and -o OUTDIR (or --merge OUTDIR)")
            from neuroseg.batch import run_batch

            result = run_batch(folder, output, model=model, device=device, output_format=output_format,
                               series_uids=series or (), force=force, workers=workers, scheduler=scheduler,
                               shard=shard, console=console, force_input=force_input, viewer=viewer,
                               mesh=mesh)
        print_rows(console, result)
        console.print(f"{result.total_line()}; summary in {output / result.summary_path}", highlight=False,
                      soft_wrap=True)
        if result.failed:
            raise BatchIncompleteError(f"{result.failed} of {len(result.rows)} cases failed (see "
                                       f"{output / result.summary_path})")


def print_rows(console, result) -> None:
    """One line for each failed, skipped or non-FLAIR case, and for the files left out."""
    from neuroseg.batch import FAILED, NOT_RUN, SKIPPED

    # soft_wrap: one message a line even when piped (rich would fold it at 80 columns), so grep finds it
    for row in result.rows:
        if row["status"] in (FAILED, NOT_RUN):
            console.print(f"[bold red]failed:[/] {row['case']}: {row['error']}", highlight=False, soft_wrap=True)
        elif row["status"] == SKIPPED:
            console.print(f"[yellow]skipped:[/] {row['case']}: {row['error']}", highlight=False, soft_wrap=True)
        elif row["looks_like_flair"] is False:
            console.print(f"[bold yellow]warning:[/] {row['case']}: input does not look like FLAIR",
                          highlight=False, soft_wrap=True)
        if row.get("input_checks"):
            console.print(f"[bold yellow]input checks:[/] {row['case']}: {row['input_checks']}",
                          highlight=False, soft_wrap=True)
    if result.skipped_line:
        console.print(f"[yellow]{result.skipped_line}[/]", highlight=False, soft_wrap=True)
    if result.ignored:
        console.print(f"[yellow]ignored {len(result.ignored)} unreadable file(s)[/] (listed in summary.json)")


def print_catalogue(catalogue) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.width = max(console.width, 160)  # a pipe or narrow terminal would fold every cell
    if not catalogue.studies:
        console.print(f"{catalogue.folder}: no DICOM series found{_nifti_hint(catalogue)}")
    for study in catalogue.studies:
        table = Table(title=f"Study {study.uid}  {study.date}  {study.description}", title_justify="left")
        for column in ("#", "description", "orientation", "size", "slices", "spacing mm", "FLAIR", "action", "why"):
            table.add_column(column, overflow="fold")
        for series in study.series:
            chosen = series is study.chosen
            spacing = "x".join(f"{v:g}" for v in series.spacing) if series.spacing else "-"
            why = study.reason if chosen else study.skipped.get(series.uid, "")
            if series.notes:
                why += " [dim](" + "; ".join(series.notes) + ")[/]"
            table.add_row(str(series.number), series.description or "-", series.orientation, series.size,
                          str(series.n_slices), spacing, "yes" if series.looks_like_flair else "no",
                          "[bold green]process[/]" if chosen else "skip", why)
        console.print(table)
        for series in study.series:
            console.print(f"  series {series.number}: {series.uid}", style="dim", highlight=False)
        if study.chosen is None:
            console.print(f"[bold yellow]Nothing to process in this study:[/] {study.reason}")
    for note in catalogue.unreadable:
        console.print(f"[yellow]ignored:[/] {note}", highlight=False)


def _nifti_hint(catalogue) -> str:
    """scan lists DICOM only; point a folder of NIfTI files to the commands that take them."""
    found = len(catalogue.nifti_files)
    if not found:
        return ""
    files = f"{found} NIfTI file{'s' if found != 1 else ''}"
    return f" ({files} here: 'neuroseg run FILE' or 'neuroseg batch DIR' take them)"
