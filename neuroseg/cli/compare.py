"""``neuroseg compare``: two visits of one patient (or every subject of a BIDS dataset). Heavy imports
live in the command so --help stays instant."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from neuroseg.errors import InputError


def register(app, friendly_errors) -> None:
    """Add the ``compare`` command to ``app``."""

    @app.command()
    @friendly_errors
    def compare(
        baseline: Optional[Path] = typer.Argument(None, metavar="BASELINE", help="The earlier scan: a NIfTI file, "
                                                  "a DICOM series or study folder, or a neuroseg output folder."),
        followup: Optional[Path] = typer.Argument(None, metavar="FOLLOWUP", help="The later scan, the same kinds."),
        output: Path = typer.Option(..., "-o", "--output", help="Folder for compare.json, change.nii.gz, "
                                    "change.dcm (DICOM baseline), compare.png, compare.html and transform.tfm "
                                    "(with --bids: one folder per pair)."),
        bids: Optional[Path] = typer.Option(None, "--bids", metavar="DS", help="A BIDS dataset: every subject "
                                            "with two or more sessions, against the first and the previous."),
        model: Optional[Path] = typer.Option(None, "--model", help="A model folder (default: the shipped model)."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs; remove old ones it does not write."),
        force_input: bool = typer.Option(False, "--force-input", help="Segment scans an input check refuses."),
    ):
        """Register FOLLOWUP onto BASELINE, segment both, and report the change as RANO measures it (FLAIR only)."""
        from rich.console import Console

        console = Console()
        if bids is not None:
            if baseline is not None or followup is not None:
                raise InputError("--bids DS takes no BASELINE or FOLLOWUP")
            _bids(console, bids, output, model, device, force, force_input)
            return
        if baseline is None or followup is None:
            raise InputError("compare needs BASELINE and FOLLOWUP (or --bids DS)")
        from neuroseg.longitudinal.compare import compare as run_compare

        with console.status("Registering, segmenting and comparing…"):
            comparison, written = run_compare(baseline, followup, output, model=model, device=device, force=force,
                                              force_input=force_input)
        print_comparison(console, comparison)
        for path in written:
            console.print(f"  wrote {path}", soft_wrap=True, highlight=False)


def _bids(console, dataset, output, model, device, force, force_input) -> None:
    from neuroseg.errors import BatchIncompleteError
    from neuroseg.longitudinal.bids import CSV_FILE, compare_bids

    def log(row):
        if row["status"] == "failed":
            console.print(f"[bold red]failed:[/] sub-{row['subject']} {row['folder']}: {row['error']}",
                          highlight=False, soft_wrap=True)
            return
        verdict = row["rano_lgg"] or "[bold yellow]no category (not the same head, or not aligned)[/]"
        console.print(f"sub-{row['subject']} ses-{row['baseline_session']} -> ses-{row['followup_session']} "
                      f"({row['against']}): {row['volume_baseline_ml']} -> {row['volume_followup_ml']} mL, "
                      f"RANO-LGG {verdict}", highlight=False, soft_wrap=True)

    rows = compare_bids(dataset, output, model=model, device=device, force=force, force_input=force_input, log=log)
    failed = sum(row["status"] == "failed" for row in rows)
    console.print(f"{len(rows)} pairs, {failed} failed; wrote {output / CSV_FILE}", highlight=False, soft_wrap=True)
    if failed:
        raise BatchIncompleteError(f"{failed} of {len(rows)} pairs failed (see {output / CSV_FILE})")


def print_comparison(console, comparison) -> None:
    """The numbers, the category (or why there is none) and the caveat; warnings loud, one line each."""
    from rich.markup import escape

    from neuroseg.longitudinal.response import CAVEAT

    before, after = comparison.measurements
    rano, volumetric, registration = comparison.rano, comparison.volumetric, comparison.registration
    console.print(f"baseline:  {escape(before.summary())}", highlight=False, soft_wrap=True)
    console.print(f"follow-up: {escape(after.summary())}", highlight=False, soft_wrap=True)
    console.print(f"registration ({registration.method}): head Dice {registration.head_dice:.3f}, correlation "
                  f"{registration.correlation:.2f}, final metric {registration.metric:.3f}, rotation "
                  f"{registration.summary()['rotation_degrees']:.1f} deg", highlight=False, soft_wrap=True)
    console.print(f"lesions: {len(comparison.matching.pairs)} matched, {len(comparison.matching.new)} new, "
                  f"{len(comparison.matching.resolved)} resolved", highlight=False, soft_wrap=True)
    for warning in comparison.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if registration.trusted:
        console.print(f"suggested (FLAIR alone): RANO-LGG [bold]{rano['category'] or 'none'}[/] ({escape(rano['rule'])}); "
                      f"volumetric {volumetric['category'] or 'none'} ({_percent(volumetric['change_percent'])})",
                      highlight=False, soft_wrap=True)
    else:
        console.print("[bold red]NO RESPONSE CATEGORY:[/] the two scans may not be the same head, or are not "
                      "aligned", highlight=False, soft_wrap=True)
    console.print(f"[dim]{escape(CAVEAT)}[/]", highlight=False, soft_wrap=True)


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"
