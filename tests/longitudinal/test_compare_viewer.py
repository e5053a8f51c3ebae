"""compare.html: the two visits, the change map toggled over them and the lesion table, offline; a real
headless Chromium loads it without console errors and draws what the controls say."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from neuroseg.export.viewer import NIIVUE_FILE
from neuroseg.longitudinal.compare import compare_time_points, write_comparison
from neuroseg.longitudinal.viewer import ALARM_COLOUR, CHANGE_COLOURS, FOLLOWUP_NOTE, compare_viewer_html
from tests.longitudinal.visits import visits


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A comparison of the synthetic visits (lesion A grew, B went, C is new), written."""
    folder = tmp_path_factory.mktemp("compare")
    baseline, followup, _ = visits(folder)
    comparison = compare_time_points(baseline, followup)
    assert comparison.registration.trusted, comparison.registration.problems
    write_comparison(comparison, folder / "out")
    return folder


@pytest.fixture(scope="module")
def comparison(folder):
    baseline, followup, _ = visits(folder / "again")
    return compare_time_points(baseline, followup)


def not_same_head(comparison):
    """The comparison as if the heads had not matched (its registration's head Dice far below the limit)."""
    from neuroseg.longitudinal import response

    registration = dataclasses.replace(comparison.registration, head_dice=0.5)
    return dataclasses.replace(comparison, registration=registration,
                               rano=response.withheld(comparison.rano, registration.problems),
                               volumetric=response.withheld(comparison.volumetric, registration.problems))


def rows_of(page: str) -> list[list[str]]:
    table = page[page.index('<table id="lesions">'):page.index("</table>")]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr class=\"\w+\">(.*?)</tr>", table)]


def test_the_page_is_self_contained_and_tabulates_each_lesion_at_each_visit(folder):
    page = (folder / "out" / "compare.html").read_text()
    outside_niivue = page.replace(NIIVUE_FILE.read_text(), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", outside_niivue)  # nothing fetched
    assert "default-src 'none'" in page and FOLLOWUP_NOTE in page
    report = json.loads((folder / "out" / "compare.json").read_text())
    assert "compare.html" in report["files"]
    rows = rows_of(page)
    assert [r[0] for r in rows] == ["matched", "new", "resolved", "total"]
    lesions_b = {l["label"]: l for l in report["baseline"]["measurements"]["lesions"]}
    lesions_f = {l["label"]: l for l in report["followup"]["measurements"]["lesions"]}
    matched, new, resolved, total = rows
    (pair,) = report["matching"]["matched"]
    assert matched[1] == str(pair["baseline"]) and matched[4] == str(pair["followup"])
    assert float(matched[2]) == pytest.approx(lesions_b[pair["baseline"]]["volume_ml"], abs=0.006)
    assert float(matched[5]) == pytest.approx(lesions_f[pair["followup"]]["volume_ml"], abs=0.006)
    product = lesions_f[pair["followup"]]["bidimensional"]["product_mm2"]
    assert matched[6].endswith(f"= {product:.1f}")
    assert new[1] == "-" and new[4] == str(report["matching"]["new"][0])
    assert resolved[1] == str(report["matching"]["resolved"][0]) and resolved[4] == "-"
    assert float(total[2]) == pytest.approx(report["baseline"]["measurements"]["total_volume_ml"], abs=0.006)
    assert 'id="not-same-head"' not in page


def test_two_heads_get_a_loud_banner_first_and_no_category(comparison):
    page = compare_viewer_html(not_same_head(comparison))
    banner = page.index('id="not-same-head"')
    assert banner < page.index("<header>") and "NOT COMPARED" in page[banner:banner + 300]
    assert "head-mask Dice after registration 0.500" in page
    assert "NO RESPONSE CATEGORY" in page[page.index('id="category"'):]


def chromium(page, *options, window="900,800"):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    command = [browser, "--headless", "--no-sandbox", "--enable-unsafe-swiftshader", f"--window-size={window}",
               "--virtual-time-budget=8000", "--enable-logging=stderr", "--v=0", *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=page.parent, check=False)


def screenshot(page, png, address):
    chromium(page, f"--screenshot={png}", page.as_uri() + "#" + address)
    if not png.exists():
        pytest.fail("chromium wrote no screenshot")
    from PIL import Image

    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def canvas(pixels):
    """The images' part of a screenshot: 400 rows below the controls (the header's #222 band, and the banner)."""
    header = np.flatnonzero((pixels[:, 2] == 34).all(axis=-1))
    out = np.zeros(pixels.shape[:2], bool)
    out[header.max() + 1:header.max() + 401] = True
    return out


def near(pixels, rgb, opacity=0.6, tolerance=40):
    """Pixels of the images where the change colour ``rgb`` is drawn at ``opacity`` over any grey."""
    colour = np.array(rgb)
    # over a grey level v the pixel is opacity * colour + (1 - opacity) * v: solve v from each channel, compare
    grey = (pixels - opacity * colour) / (1 - opacity)
    return canvas(pixels) & (np.ptp(grey, axis=-1) < tolerance) & (grey.min(axis=-1) > -tolerance) & \
        (np.ptp(pixels, axis=-1) > 60)


@pytest.mark.slow  # a headless Chromium
def test_chromium_loads_the_page_without_console_errors(folder):
    page = folder / "out" / "compare.html"
    run = chromium(page, "--dump-dom", page.as_uri() + "#axial")
    assert 'data-ready="yes"' in run.stdout, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert any("niivue-info" in line for line in console)  # the console was captured
    errors = [line for line in console if re.search(r"Uncaught|niivue-error|Error|Failed", line)]
    assert errors == []
    assert '<table id="lesions">' in run.stdout and 'data-change="on"' in run.stdout


@pytest.mark.slow  # a headless Chromium
def test_chromium_draws_the_change_map_only_when_toggled_on_and_each_visit_in_turn(folder):
    page = folder / "out" / "compare.html"
    on = screenshot(page, folder / "on.png", "axial&visit=baseline&change=on")
    off = screenshot(page, folder / "off.png", "axial&visit=baseline&change=off")
    later = screenshot(page, folder / "later.png", "axial&visit=followup&change=off")
    for name in ("stable", "new", "resolved"):
        assert near(on, CHANGE_COLOURS[name]).sum() > 50, name
        assert near(off, CHANGE_COLOURS[name]).sum() == 0, name
    # lesion B went: bright on the baseline, not at follow-up; A grew: brighter ring at follow-up
    differ = canvas(off) & (np.abs(off - later).sum(axis=-1) > 30)
    assert differ.sum() > 200


@pytest.mark.slow  # a headless Chromium
def test_chromium_shows_the_not_same_head_banner_above_the_images(comparison, tmp_path):
    from neuroseg.longitudinal.viewer import write_compare_viewer

    page = write_compare_viewer(not_same_head(comparison), tmp_path / "compare.html")
    pixels = screenshot(page, tmp_path / "alarm.png", "axial")
    alarm = (np.abs(pixels - np.array([int(ALARM_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])) <= 12).all(axis=-1)
    assert alarm.sum() > 20000  # 900 px wide, several lines high
    assert np.flatnonzero(alarm.sum(axis=1) > 100).max() < 150  # at the top of the page
