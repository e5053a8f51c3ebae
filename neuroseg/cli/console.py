"""What the commands print about one run, shared by ``run`` and ``pull --run``."""

from __future__ import annotations

from pathlib import Path


def make_console():
    from rich.console import Console

    return Console()


def segment_into(input: Path, output: Path, verbose: bool = False, **options) -> None:
    """``run``'s body for any command: the library's run behind a spinner, then the summary.
    Typer's option defaults exist only when typer calls a command, so a command must not call another."""
    from neuroseg.export.run import segment_into as run_one

    console = make_console()
    result, written = run_one(input, output, status=console.status, **options)
    print_summary(console, result, written, verbose)


def print_summary(console, result, written, verbose: bool = False):
    report = result.report
    found = "[bold red]tumour found[/]" if report["tumour_found"] else "[green]no tumour found[/]"
    console.print(f"{found}: {report['tumour_volume_ml']:.1f} mL on {len(report['tumour_slices'])} slices "
                  f"{_ranges(report['tumour_slices'])} (axis {report['slice_axis']}{_instances(report)}), "
                  f"{sum(result.timings.values()):.2f} s on {report['device']}", soft_wrap=True)
    if report["tumour_found"]:
        console.print(f"lesions: {result.lesions.summary()}", soft_wrap=True, highlight=False)
    for warning in report.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)  # one line each in a log
    print_input_checks(console, report, verbose)
    for path in written:
        console.print(f"  wrote {path}", soft_wrap=True)


def print_input_checks(console, report, verbose: bool = False) -> None:
    """One line for each input check that warned or refused (``verbose``: for every one), or one line saying
    that all passed; a forced run says so. Every finding, with its validated range, is in report.json."""
    from rich.markup import escape

    section = report.get("input_checks") or {}
    colours = {"ok": "green", "warn": "bold yellow", "refuse": "bold red"}
    findings = section.get("findings", [])
    shown = findings if verbose else [finding for finding in findings if finding["level"] != "ok"]
    if findings and not shown:
        console.print(f"input checks: all {len(findings)} passed", highlight=False, soft_wrap=True)
    for finding in shown:
        colour = colours.get(finding["level"], "white")
        console.print(f"input check [{colour}]{escape(finding['line'])}[/]", highlight=False, soft_wrap=True)
    if section.get("flagged"):
        from neuroseg.checks import DO_NOT_TRUST

        console.print(f"[bold yellow]warning:[/] input checks flagged {', '.join(section['flagged'])}: {DO_NOT_TRUST}",
                      highlight=False, soft_wrap=True)
    if section.get("forced") and section.get("level") == "refuse":
        console.print("[bold red]forced:[/] --force-input ran past a refusal; the report marks this run as forced",
                      highlight=False, soft_wrap=True)


def _instances(report) -> str:
    """The DICOM images a viewer shows for the tumour slices (array order may run against theirs)."""
    named = report.get("tumour_slices_dicom")
    if not named or any("frame" in entry for entry in named):  # one multi-frame image: its number says little
        return ""
    return f"; DICOM instance numbers {_ranges(sorted(entry['instance_number'] for entry in named))}"


def _ranges(indices) -> str:
    if not indices:
        return ""
    runs, start = [], indices[0]
    for a, b in zip(indices, indices[1:] + [None]):
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return "[" + ", ".join(runs) + "]"
