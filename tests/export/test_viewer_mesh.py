"""viewer.html's 3D pane: the tumour mesh (tumour.gii, RAS) over the scan, drawn by a real headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage", reason="the mesh extra (scikit-image, trimesh) is not installed")

from neuroseg.export import viewer
from neuroseg.export.mesh import GIFTI_FILE
from neuroseg.export.viewer import VIEWER_FILE, viewer_html
from neuroseg.export.writer import write_outputs
from neuroseg.inference import Segmenter
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


@pytest.fixture(scope="module")
def mesh_page(tmp_path_factory, blob_result):
    folder = tmp_path_factory.mktemp("mesh_page")
    write_outputs(blob_result, folder / "out", mesh=True)
    return folder / "out" / VIEWER_FILE


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 23: headless Chromium shows no mesh in the page yet (screenshot: the mask, no "
                          "green cut or surface); strict, so the marker must go when it works")
def test_chromium_draws_the_mesh_cut_on_the_mask_in_the_axial_view(mesh_page, tmp_path):
    pixels = screenshot(mesh_page, tmp_path / "axial.png")  # screenshot() opens the page at #axial
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


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 23: headless Chromium shows no mesh in the page yet (screenshot: the mask, no "
                          "green cut or surface); strict, so the marker must go when it works")
def test_chromium_shows_the_mesh_in_the_3d_view_and_its_opacity_hides_it(mesh_page, tmp_path):
    assert green(screenshot(mesh_page, tmp_path / "render.png", view="render")).sum() > 200, \
        "the mesh does not show in the 3D view"
    slider = f'id="mesh-opacity" type="range" min="0" max="100" value="{round(viewer.MESH_OPACITY * 100)}"'
    page = mesh_page.read_text()
    assert slider in page
    hidden = tmp_path / "hidden.html"  # the same page with the mesh slider moved to 0
    hidden.write_text(page.replace(slider, 'id="mesh-opacity" type="range" min="0" max="100" value="0"'))
    assert green(screenshot(hidden, tmp_path / "hidden.png", view="render")).sum() == 0, "opacity 0 still shows it"
