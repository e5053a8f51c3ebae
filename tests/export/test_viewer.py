"""viewer.html: self-contained, offline, NiiVue vendored; a real headless Chromium draws the mask on the tumour."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
import shutil
import subprocess

import numpy as np
import pytest

from neuroseg.checks import REFUSE, WARN, Finding, InputChecks, qc_title
from neuroseg.export.viewer import (BANNER_COLOUR, NIIVUE_FILE, NIIVUE_SHA256, NIIVUE_VERSION, VIEWER_FILE,
                                    input_check_lines, viewer_html, write_index, write_viewer)
from neuroseg.export.writer import write_outputs
from neuroseg.inference import Segmenter
from neuroseg.volume import Volume

SHAPE = (40, 48, 12)
BLOB = (10, 14, 6)  # patient's right (low i) and anterior (low j): upper left in radiological view


@pytest.fixture(scope="module")
def segmenter(tiny_model):
    return Segmenter(tiny_model, device="cpu")


def head_with_blob():
    """A noisy ellipsoidal 'head' (so it shows grey in the window) and a bright blob, with the blob's mask."""
    rng = np.random.default_rng(0)
    grid = np.indices(SHAPE).astype(np.float32)
    middle = (np.array(SHAPE) - 1) / 2
    radii = np.array(SHAPE) * 0.42
    head = (((grid - middle[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) < 1
    blob = ((grid - np.array(BLOB)[:, None, None, None]) ** 2).sum(0) < 4.0 ** 2
    array = np.where(head, 100 + 60 * rng.random(SHAPE), 0) + np.where(blob, 80, 0)
    return Volume(array.astype(np.float32), np.diag([-0.9, -0.9, 5.0, 1.0])), blob & head


def result_with_mask(segmenter, volume, mask):
    result = segmenter.segment(volume)
    return dataclasses.replace(result, mask=result.mask.with_array(mask.astype(np.uint8)))


def with_checks(result, checks: InputChecks):
    """``result`` as if its input checks had found ``checks``."""
    return dataclasses.replace(result, input_checks=checks.as_report())


def all_ok(result):
    """``result`` with every input check ok (the same checks and values, none flagged)."""
    section = result.report["input_checks"]
    findings = [Finding(f["check"], "ok", f["value"], f["unit"], f["validated"]) for f in section["findings"]]
    return with_checks(result, InputChecks(findings))


def test_vendored_niivue_is_the_named_release():
    assert hashlib.sha256(NIIVUE_FILE.read_bytes()).hexdigest() == NIIVUE_SHA256
    readme = (NIIVUE_FILE.parent / "README.md").read_text()
    assert NIIVUE_VERSION in readme and "BSD-2-Clause" in readme
    assert "BSD 2-Clause" in (NIIVUE_FILE.parent / "NIIVUE_LICENSE").read_text()


def test_every_run_writes_a_self_contained_page(tmp_path, segmenter):
    volume, mask = head_with_blob()
    written = write_outputs(result_with_mask(segmenter, volume, mask), tmp_path / "out")
    assert VIEWER_FILE in [p.name for p in written]
    page = (tmp_path / "out" / VIEWER_FILE).read_text()
    outside_niivue = page.replace(NIIVUE_FILE.read_text(), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", outside_niivue)  # nothing fetched
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing
    assert "NiiVue 0.69.0" in page


def test_no_viewer_writes_no_page(tmp_path, segmenter):
    volume, mask = head_with_blob()
    written = write_outputs(result_with_mask(segmenter, volume, mask), tmp_path / "out", viewer=False)
    assert VIEWER_FILE not in [p.name for p in written]
    assert not (tmp_path / "out" / VIEWER_FILE).exists()


def test_page_shows_the_input_checks_that_warned_and_nothing_when_all_are_ok(segmenter):
    volume, mask = head_with_blob()
    warned = result_with_mask(segmenter, volume, mask)  # a 36 x 43 mm noise 'head': two checks warn
    section = warned.report["input_checks"]
    assert section["level"] == WARN and "coverage.field_of_view" in section["flagged"]
    page = viewer_html(warned)
    assert 'id="input-checks"' in page
    assert html.escape(qc_title(warned.report)) in page  # the QC picture's title line
    for finding in section["findings"]:  # one line per flagged finding: measured value and validated range
        assert (f"<li>{html.escape(finding['line'])}</li>" in page) == (finding["level"] != "ok"), finding["line"]
    assert "36 x 43.2 mm (validated: 187-256 mm" in page
    ok = viewer_html(all_ok(warned))
    assert 'id="input-checks"' not in ok and "INPUT CHECKS" not in ok and "validated:" not in ok


def test_a_run_forced_past_a_refusal_says_so_refusals_first(segmenter):
    volume, mask = head_with_blob()
    checks = InputChecks([Finding("resolution.in_plane", WARN, 2.5, "mm", "0.9-1.0 mm", "coarse"),
                          Finding("coverage.field_of_view", REFUSE, 12.0, "mm", "187-256 mm", "not a head")],
                          forced=True)
    result = with_checks(result_with_mask(segmenter, volume, mask), checks)
    lines = input_check_lines(result.report)
    assert lines[0] == "INPUT CHECKS REFUSE: FORCED past a refusal; coverage.field_of_view, resolution.in_plane"
    assert lines[1:] == ["refuse: coverage.field_of_view: 12 mm (validated: 187-256 mm): not a head",
                         "warn: resolution.in_plane: 2.5 mm (validated: 0.9-1.0 mm): coarse"]
    page = viewer_html(result)
    assert all(html.escape(line) in page for line in lines)


def test_index_links_the_pages_that_exist(tmp_path):
    (tmp_path / "case-a").mkdir()
    (tmp_path / "case-a" / VIEWER_FILE).write_text("x")
    rows = [{"case": "case-a", "status": "done", "volume_ml": 1.5},
            {"case": "case-<b>", "status": "failed", "error": "bad & broken"}]
    page = write_index(rows, tmp_path).read_text()
    assert 'href="case-a/viewer.html"' in page
    assert "case-&lt;b&gt;" in page and "bad &amp; broken" in page and 'href="case-<b>' not in page


def screenshot(page, png, view="axial", size=(800, 600)):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    command = [browser, "--headless", "--no-sandbox", "--enable-unsafe-swiftshader", f"--window-size={size[0]},{size[1]}",
               "--virtual-time-budget=8000", f"--screenshot={png}", page.as_uri() + "#" + view]
    subprocess.run(command, capture_output=True, timeout=120, cwd=png.parent)
    if not png.exists():
        pytest.fail("chromium wrote no screenshot")
    from PIL import Image

    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def banner_pixels(pixels):
    """Where the screenshot shows the input-check banner's colour."""
    colour = np.array([int(BANNER_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(pixels - colour) <= 12).all(axis=-1)


def canvas_region(pixels):
    """The image's rows: below the controls (and the banner, when there is one), above the report text."""
    canvas = np.zeros(pixels.shape[:2], bool)
    banner_rows = np.flatnonzero(banner_pixels(pixels).sum(axis=1) > 100)
    canvas[banner_rows.max() + 4 if banner_rows.size else 40:pixels.shape[0] - 64] = True
    return canvas


@pytest.fixture(scope="module")
def warned_shot(tmp_path_factory, segmenter):
    """A screenshot of the page of a result whose input checks warned (the noise 'head' is 36 x 43 mm)."""
    folder = tmp_path_factory.mktemp("warned")
    volume, mask = head_with_blob()
    result = result_with_mask(segmenter, volume, mask)
    assert result.report["input_checks"]["level"] == WARN
    write_outputs(result, folder / "out")
    return screenshot(folder / "out" / VIEWER_FILE, folder / "shot.png")


@pytest.mark.slow  # a headless Chromium
def test_chromium_draws_the_brain_and_the_mask_on_the_tumour(warned_shot):
    pixels = warned_shot
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    canvas = canvas_region(pixels)
    grey = canvas & (np.abs(r - g) < 12) & (np.abs(g - b) < 12) & (r > 40)
    red = canvas & (r > 120) & (r > g + 60) & (r > b + 60)
    assert grey.sum() > 20000, "the brain is not drawn"
    assert red.sum() > 200, "the mask colour does not appear"
    head = grey | red
    rows = np.flatnonzero(head.sum(axis=1) > 10)  # the orientation letters (R, A) are a few pixels wide
    cols = np.flatnonzero(head.sum(axis=0) > 10)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    red_rows, red_cols = np.nonzero(red)
    # where the tumour is: its place inside the head, in radiological view (patient's right on the left,
    # anterior up), from the blob's voxel position inside the head's ellipsoid
    middle, radii = (np.array(SHAPE) - 1) / 2, np.array(SHAPE) * 0.42
    expected_x = (BLOB[0] - (middle[0] - radii[0])) / (2 * radii[0])
    expected_y = (BLOB[1] - (middle[1] - radii[1])) / (2 * radii[1])
    seen_x = (red_cols.mean() - left) / (right - left)
    seen_y = (red_rows.mean() - top) / (bottom - top)
    assert abs(seen_x - expected_x) < 0.1 and abs(seen_y - expected_y) < 0.1, (seen_x, seen_y, expected_x, expected_y)
    # and nowhere else: every red pixel lies near the blob
    assert np.hypot(red_cols - red_cols.mean(), red_rows - red_rows.mean()).max() < 0.25 * (right - left)


@pytest.mark.slow  # a headless Chromium
def test_chromium_shows_the_warning_banner_above_the_image_only_when_a_check_warned(tmp_path, segmenter,
                                                                                      warned_shot):
    volume, mask = head_with_blob()
    ok_page = write_viewer(all_ok(result_with_mask(segmenter, volume, mask)), tmp_path / VIEWER_FILE)
    ok_shot = screenshot(ok_page, tmp_path / "ok.png")
    banner = banner_pixels(warned_shot)
    assert banner.sum() > 20000, "the warned page shows no banner"  # 800 px wide, several lines high
    assert banner_pixels(ok_shot).sum() == 0, "an all-ok page shows the banner colour"
    brain_top = np.flatnonzero(grey_pixels(warned_shot).sum(axis=1) > 10).min()
    assert np.flatnonzero(banner.sum(axis=1) > 100).max() < brain_top, "the banner is not above the image"
    assert grey_pixels(ok_shot).sum() > 20000, "without a banner the brain is still drawn"


def grey_pixels(pixels):
    """The image's grey pixels (the brain in the FLAIR window)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return canvas_region(pixels) & (np.abs(r - g) < 12) & (np.abs(g - b) < 12) & (r > 40)
