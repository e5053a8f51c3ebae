"""A warn shows in report.json, the console, the QC picture's title and batch's summary; a refuse writes nothing."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from neuroseg.checks import InputRefused
from neuroseg.cli.main import app
from tests.checks import synthetic as S

runner = CliRunner()


def _save(volume, path):
    nib.Nifti1Image(volume.array.astype(np.float32), volume.affine).to_filename(str(path))
    return path


@pytest.fixture(scope="module")
def cropped_scan(tmp_path_factory):
    return _save(S.cropped(S.sample_flair()), tmp_path_factory.mktemp("cropped") / "scan.nii.gz")


def test_a_warning_shows_in_report_console_and_qc_title(tmp_path, tiny_model, cropped_scan):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(cropped_scan), "-o", str(out), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    section = json.loads((out / "report.json").read_text())["input_checks"]
    assert section["level"] == "warn" and not section["forced"]
    assert "coverage.field_of_view" in section["flagged"]
    by_check = {f["check"]: f for f in section["findings"]}
    assert by_check["coverage.field_of_view"]["value"] == [80.9, 80.9] and by_check["coverage.field_of_view"]["validated"]
    lines = result.output.splitlines()
    warned = [f for f in section["findings"] if f["level"] != "ok"]
    assert 0 < len(warned) < len(section["findings"])
    assert len([line for line in lines if line.startswith("input check ")]) == len(warned)  # the ok ones: --verbose
    assert not any(line.startswith(("input check ok", "input checks: all")) for line in lines)
    assert any(line.startswith("input check warn: coverage.field_of_view: 80.9 x 80.9 mm (validated: ")
               for line in lines)
    picture = np.asarray(Image.open(out / "qc.png").convert("RGB"))
    title = picture[:16]
    assert ((title[..., 0] > 200) & (title[..., 1] > 100) & (title[..., 2] < 50)).sum() > 50  # orange text


@pytest.mark.parametrize("verbose", [False, True])
def test_the_console_says_in_one_line_that_all_checks_passed_and_verbose_lists_them(tmp_path, tiny_model, verbose):
    scan = _save(S.sample_flair(), tmp_path / "scan.nii.gz")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model)]
                           + ["--verbose"] * verbose)
    assert result.exit_code == 0, result.output
    findings = json.loads((out / "report.json").read_text())["input_checks"]["findings"]
    assert len(findings) > 5 and {f["level"] for f in findings} == {"ok"}
    lines = result.output.splitlines()
    listed = [line for line in lines if line.startswith("input check ok: ")]
    summary = [line for line in lines if line.startswith("input checks: ")]
    assert (len(listed), summary) == ((len(findings), []) if verbose else (0, [f"input checks: all {len(findings)} passed"]))
    assert lines[0].startswith(("tumour found", "no tumour found")) and lines[-1].startswith("  wrote ")


def test_an_ok_input_has_no_qc_title(tmp_path, tiny_model):
    from neuroseg.export.qc import render_qc
    from neuroseg.inference import Segmenter

    result = Segmenter(tiny_model, device="cpu").segment(S.sample_flair())
    assert result.report["input_checks"]["level"] == "ok" and result.report["input_checks"]["flagged"] == []
    path = render_qc(result, tmp_path / "qc.png")
    height = np.asarray(Image.open(path)).shape[0]
    assert height % (256 + 14) == 0  # no title line above the tiles


def test_batch_lists_warned_cases_in_their_own_column_and_refused_ones_as_failed(tmp_path, tiny_model, cropped_scan):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cropped.nii.gz").write_bytes(cropped_scan.read_bytes())
    _save(S.tiny(), folder / "tiny.nii.gz")
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(folder), "-o", str(out), "--model", str(tiny_model), "--workers", "0"])
    assert result.exit_code == 6, result.output  # the refused case failed
    rows = {row["case"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert "coverage.field_of_view" in rows["cropped"]["input_checks"] and rows["cropped"]["status"] == "done"
    assert rows["tiny"]["status"] == "failed" and rows["tiny"]["error"].startswith("input refused: refuse: ")
    assert not (out / "tiny").exists() or not any((out / "tiny").iterdir())  # nothing written for it
    assert "input checks: cropped: coverage.field_of_view" in result.output
    cases = {row["case"]: row for row in json.loads((out / "summary.json").read_text())["cases"]}
    assert cases["cropped"]["input_checks"] == rows["cropped"]["input_checks"]
    index = (out / "index.html").read_text()  # the index page names them too
    assert "input checks that warned" in index and rows["cropped"]["input_checks"] in index


def test_a_refusal_is_exit_2_with_one_line_and_writes_nothing(tmp_path, tiny_model):
    scan = _save(S.tiny(), tmp_path / "tiny.nii.gz")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuroseg: error: input refused: refuse: coverage.field_of_view")
    assert "--force-input" in lines[0]
    assert not out.exists()


def test_force_input_runs_anyway_and_is_marked(tmp_path, tiny_model):
    scan = _save(S.tiny(), tmp_path / "tiny.nii.gz")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model), "--force-input"])
    assert result.exit_code == 0, result.output
    section = json.loads((out / "report.json").read_text())["input_checks"]
    assert section["forced"] is True and section["level"] == "refuse"
    assert any(line.startswith("forced: --force-input") for line in result.output.splitlines())


def test_the_python_api_refuses_too(tiny_model):
    from neuroseg.inference import Segmenter

    segmenter = Segmenter(tiny_model, device="cpu")
    with pytest.raises(InputRefused, match="too small to be a head"):
        segmenter.segment(S.tiny())
    assert segmenter.segment(S.tiny(), force_input=True).report["input_checks"]["forced"] is True
