"""viewer.html's 3D pane: the tumour mesh (tumour.gii, RAS) over the scan, drawn by a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("skimage", reason="the mesh extra (scikit-image, trimesh) is not installed")

from neuroseg.export import viewer
from neuroseg.export.mesh import GIFTI_FILE
from neuroseg.export.viewer import VIEWER_FILE, viewer_html
from neuroseg.export.writer import write_outputs
from neuroseg.inference import Segmenter
from neuroseg.volume import Volume
from tests.export.test_viewer import (
    canvas_region,
    head_with_blob,
    result_with_mask,
    screenshot,
)


@pytest.fixture(scope="module")
def blob_result(tiny_model):
    volume, mask = head_with_blob()
    return result_with_mask(Segmenter(tiny_model, device="cpu"), volume, mask)


def test_run_with_mesh_puts_the_gifti_and_its_slider_in_the_page(tmp_path, blob_result):
    write_outputs(blob_result, tmp_path / "out", mesh=True)
    page = (tmp_path / "out" / VIEWER_FILE).read_text()
    gifti = (tmp_path / "out" / GIFTI_FILE).read_bytes()
    import base64

    assert base64.b64encode(gifti).decode("ascii") in page
    assert 'id="mesh-opacity"' in page and '<option value="render">3D</option>' in page
    plain = viewer_html(blob_result)
    assert 'id="mesh-opacity"' not in plain and '"mesh": null' in plain


def green(pixels):
    """The mesh's colour (viewer.MESH_RGBA is green), shaded: green well above red and blue."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return canvas_region(pixels) & (g > 90) & (g > r + 50) & (g > b + 50)


def red(pixels):
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return canvas_region(pixels) & (r > 120) & (r > g + 60) & (r > b + 60)


def greenness(pixels):
    """How much of the mesh's green the image shows: green above red and blue, summed over the canvas."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return int((np.clip(g - np.maximum(r, b), 0, None) * canvas_region(pixels)).sum())


@pytest.fixture(scope="module")
def mesh_page(tmp_path_factory, blob_result):
    folder = tmp_path_factory.mktemp("mesh_page")
    write_outputs(blob_result, folder / "out", mesh=True)
    return folder / "out" / VIEWER_FILE


@pytest.fixture(scope="module")
def plain_page(tmp_path_factory, blob_result):
    """The same result's page without a mesh: what the mesh's pixels are told apart from."""
    page = tmp_path_factory.mktemp("plain_page") / VIEWER_FILE
    page.write_text(viewer_html(blob_result))
    return page


SLIDER = f'id="mesh-opacity" type="range" min="0" max="100" value="{round(viewer.MESH_OPACITY * 100)}"'


def with_mesh_slider(page, percent: int, path):
    """A copy of the mesh page with its mesh slider set to ``percent`` (the page reads it on start)."""
    text = page.read_text()
    assert SLIDER in text
    path.write_text(text.replace(SLIDER, f'id="mesh-opacity" type="range" min="0" max="100" value="{percent}"'))
    return path


def dom(page, view="axial") -> str:
    """The page's DOM once its script has run (headless Chromium's --dump-dom)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    command = [browser, "--headless", "--no-sandbox", "--enable-unsafe-swiftshader", "--window-size=800,600",
               "--virtual-time-budget=8000", "--dump-dom", page.as_uri() + "#" + view]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120).stdout


def assert_cut_round_the_mask(pixels):
    """The mesh's cut (green) is drawn as a line round the mask (red), in one 2D view's screenshot."""
    mesh, mask = green(pixels), red(pixels)
    assert mesh.sum() > 50, "the mesh's cut is not drawn"
    assert mask.sum() > 200, "the mask is not drawn"
    # Same place: the cut surrounds the mask (RAS mesh on the RAS scan, no flip, no shift).
    mesh_rows, mesh_cols = np.nonzero(mesh)
    mask_rows, mask_cols = np.nonzero(mask | mesh)
    extent = max(np.ptp(mask_rows), np.ptp(mask_cols))
    assert abs(mesh_rows.mean() - mask_rows.mean()) < 0.2 * extent
    assert abs(mesh_cols.mean() - mask_cols.mean()) < 0.2 * extent
    assert np.hypot(mesh_rows - mask_rows.mean(), mesh_cols - mask_cols.mean()).max() < extent
    # A line round the mask, not the surface seen from above (which would cover it): no green in its middle.
    row, col = int(np.median(np.nonzero(mask)[0])), int(np.median(np.nonzero(mask)[1]))
    assert not mesh[row - 3:row + 4, col - 3:col + 4].any()


@pytest.mark.slow
def test_chromium_draws_the_mesh_cut_on_the_mask_in_the_axial_view(mesh_page, plain_page, tmp_path):
    assert_cut_round_the_mask(screenshot(mesh_page, tmp_path / "axial.png"))  # screenshot() opens #axial
    assert green(screenshot(plain_page, tmp_path / "plain.png")).sum() == 0, "green without a mesh"


@pytest.mark.slow
def test_an_oblique_scan_gets_its_crosshair_on_the_tumour_and_the_cut_round_the_mask(tiny_model, tmp_path):
    """NiiVue shows an oblique scan's slices along its voxel axes: the crosshair and the cut must be placed
    in that space (taken along the scanner's axes, the axial cut missed the 2D view's thin slab)."""
    volume, mask = head_with_blob()
    tilt = np.deg2rad(15)  # about the left-right axis, as an angulated axial series
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]]
    result = result_with_mask(Segmenter(tiny_model, device="cpu"), Volume(volume.array, rotation @ volume.affine), mask)
    write_outputs(result, tmp_path / "out", mesh=True)
    assert_cut_round_the_mask(screenshot(tmp_path / "out" / VIEWER_FILE, tmp_path / "axial.png"))


@pytest.mark.slow
def test_chromium_shows_the_mesh_in_the_3d_view_and_its_slider_sets_its_opacity(mesh_page, plain_page, tmp_path):
    shown = screenshot(mesh_page, tmp_path / "render.png", view="render")
    assert green(shown).sum() > 200, "the mesh does not show in the 3D view"
    assert greenness(screenshot(plain_page, tmp_path / "plain.png", view="render")) == 0, "green without a mesh"
    faint = screenshot(with_mesh_slider(mesh_page, 30, tmp_path / "faint.html"), tmp_path / "faint.png", view="render")
    assert 0.2 * greenness(shown) < greenness(faint) < 0.9 * greenness(shown), "the slider does not fade the mesh"
    hidden = screenshot(with_mesh_slider(mesh_page, 0, tmp_path / "hidden.html"), tmp_path / "hidden.png", view="render")
    assert greenness(hidden) == 0, "opacity 0 still shows it"


@pytest.mark.slow
def test_a_crosshair_off_the_tumour_draws_no_cut_and_the_page_still_starts(mesh_page, blob_result, tmp_path):
    """All three planes miss the tumour: the cut is empty (the page's fallback), nothing green, no error."""
    corner = np.asarray(blob_result.image.affine) @ np.array([30, 40, 11, 1.0])  # far from the blob, above it
    centre = '"centre_mm": ' + json.dumps([round(float(v), 3) for v in corner[:3]])
    text, count = re.subn(r'"centre_mm": \[[^\]]*\]', centre, mesh_page.read_text())
    assert count == 1
    page = tmp_path / "off.html"
    page.write_text(text)
    assert green(screenshot(page, tmp_path / "off.png")).sum() == 0
    assert 'data-ready="yes"' in dom(page), "the page's script stopped on an error"


def tiles(columns: np.ndarray) -> int:
    """How many side-by-side tiles the columns holding some pixel fall into (gaps over 40 px between them)."""
    from scipy import ndimage

    return ndimage.label(ndimage.binary_dilation(columns, iterations=20))[1]


@pytest.mark.slow
def test_all_three_at_a_wide_window_is_three_planes_with_the_cut_round_the_mask(mesh_page, tmp_path):
    """At a wide window NiiVue would add a 3D tile to the multiplanar layout, and draw there the surface and
    the cut's flat ribbons lying on it (broken green lines): 'all three' stays the three 2D planes."""
    from scipy import ndimage

    pixels = screenshot(mesh_page, tmp_path / "wide.png", view="multiplanar", size=(1600, 600))
    mesh, mask = green(pixels), red(pixels)
    assert tiles(mask.any(axis=0)) == 3, "the mask is not drawn in the three planes"
    assert tiles(mesh.any(axis=0)) == 3, "the mesh is drawn in other than the three planes (a 3D tile?)"
    # only lines round the mask: the 2D cut (no surface); the mesh's smoothed tips may pass the mask's end
    # slice, whose fill fades, by a few pixels
    assert (mesh & ~ndimage.binary_dilation(mask, iterations=12)).sum() == 0, "green away from the mask"
    for columns in ndimage.find_objects(ndimage.label(ndimage.binary_dilation(mask.any(axis=0), iterations=20))[0]):
        assert mesh[:, columns[0]].sum() > 50, "a plane without the mesh's cut"
