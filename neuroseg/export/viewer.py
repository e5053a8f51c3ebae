"""viewer.html: one self-contained page showing the scan with the mask over it (NiiVue), and batch's index.html.

The page inlines the vendored NiiVue build (``vendor/niivue.umd.js``, BSD-2-Clause, version
:data:`NIIVUE_VERSION`), the scan and the mask as gzipped NIfTI in base64, and the report's
volume and slice list, so it opens from a file with no network access. The mask is drawn either
filled or as its outline (both precomputed here, each an overlay layer); an opacity slider and
axial / coronal / sagittal / all-three views are offered. The crosshair starts on the tumour.
When a tumour mesh was written (``--mesh``), the page also carries tumour.gii (scanner RAS mm, the
convention NiiVue draws volumes in) and offers a 3D view: the mesh in the rendered head, seen through it
(NiiVue's mesh x-ray), with its own opacity slider. In the 2D views its cut is drawn as a line: the page
computes where the three planes through the crosshair cut the surface and draws those segments as flat
ribbons lying in the planes (see ``cutRibbons`` in the script for why NiiVue cannot draw the cut itself).
When the input checks warned (or a run was forced past a refusal), a banner above the images
says so, one line per flagged finding; it is plain HTML, so it shows even where WebGL does not.

Writing it is cheap (``benchmarks/viewer_write.py``): the bundle is read once per process, the
images are gzipped fast (:func:`neuroseg.io.compress.gzip_bytes`: isal, level 1), only the mask's box is
searched for its outline and centre, and the page's parts are written one after another, never joined.
"""

from __future__ import annotations

import base64
import functools
import html
import json
from pathlib import Path

import numpy as np

from neuroseg.export.nifti import nifti_bytes, on_box
from neuroseg.export.qc import display_window
from neuroseg.io.atomic import atomic_path, atomic_write_text
from neuroseg.io.compress import gzip_bytes

VIEWER_FILE = "viewer.html"
INDEX_FILE = "index.html"
NIIVUE_FILE = Path(__file__).parent / "vendor" / "niivue.umd.js"
NIIVUE_VERSION = "0.69.0"
NIIVUE_SHA256 = "47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af"
VIEWS = ("multiplanar", "axial", "coronal", "sagittal", "render")
MASK_COLOUR = "red"  # a NiiVue colormap; the screenshot test looks for it
MESH_RGBA = (40, 220, 90, 255)  # green: apart from the mask's red and the banner's yellow (screenshot tests)
MESH_OPACITY = 0.8
MESH_XRAY = 1.0  # how much of the mesh shows through the rendered head in the 3D view: all of it (at 0.4
# the head hid most of it; the head is there for orientation, the tumour is what the pane is for)
MESH_SLAB_MM = 0.05  # the 2D views draw meshes within this distance of the slice: the cut's ribbons (in the
# plane) and next to nothing of the surface itself, whose steep walls there would draw as dark slivers
MESH_LINE_FRACTION = 0.005  # the cut's width, of the scan's largest extent: ~2 pixels in a pane showing it all
BANNER_COLOUR = "#ffcc00"  # the input-check banner's background: not the mask's red (the screenshot test)


def nifti_base64(array: np.ndarray, affine) -> str:
    """A gzipped NIfTI-1 of ``array`` on ``affine``, as base64 text (NiiVue reads it by the .nii.gz name)."""
    import nibabel as nib

    image = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    # gzipped fast (level 1): the images are the page's main cost
    return base64.b64encode(gzip_bytes(nifti_bytes(image))).decode("ascii")


def compact_image(array: np.ndarray) -> np.ndarray:
    """int16 when the intensities are whole numbers that fit (half the bytes of float32), else float32."""
    array = np.asarray(array)
    # a sample first: a scan with fractions (z-scored) shows it at once, without passes over the volume
    if _int16_or_none(np.ravel(array, order="K")[::997]) is not None:
        whole = _int16_or_none(array)
        if whole is not None:
            return whole
    return array.astype(np.float32)


def _int16_or_none(values: np.ndarray) -> np.ndarray | None:
    """``values`` as int16 when every one is a whole number in int16's range (NaN and inf are not), else None."""
    if not values.size:
        return None
    # no range pass first: NaN, inf and values beyond int16's range cast to some int16 that differs from them
    with np.errstate(invalid="ignore"):
        whole = values.astype(np.int16)
    return whole if np.array_equal(whole, values) else None


def mask_layer(mask: np.ndarray) -> np.ndarray:
    """``mask`` as uint8 in NIfTI's voxel order (Fortran), copied from its box only (:func:`on_box`)."""
    return on_box(np.asarray(mask))


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's border voxels (the mask less its erosion), for the outline drawing; as :func:`mask_layer`."""
    from scipy import ndimage

    # eroded within the mask's box only: outside it, as outside the array, is background
    return on_box(np.asarray(mask) > 0, lambda inside: inside & ~ndimage.binary_erosion(inside))


def tumour_centre_mm(mask) -> list[float] | None:
    """RAS mm of the mask's centre of mass (where the crosshair starts), or None for an empty mask."""
    from neuroseg.measure import tumour_voxels

    voxels = tumour_voxels(mask.array)
    if voxels.size == 0:
        return None
    centre = np.append(voxels.mean(axis=0), 1.0)
    return [round(float(v), 3) for v in (np.asarray(mask.affine) @ centre)[:3]]


def input_check_lines(report: dict) -> list[str]:
    """The banner's lines: the QC picture's title, then each flagged finding (measured, validated range,
    why), most severe first; [] when every check was ok."""
    from neuroseg.checks import REFUSE, WARN, qc_title

    title = qc_title(report)
    if not title:
        return []
    findings = (report.get("input_checks") or {}).get("findings", [])
    flagged = [f for level in (REFUSE, WARN) for f in findings if f.get("level") == level]
    return [title] + [str(f.get("line") or f.get("check", "")) for f in flagged]


def banner_html(lines: list[str]) -> str:
    """The warning banner for :func:`input_check_lines` ('' when there are none)."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines[1:])
    from neuroseg.checks import DO_NOT_TRUST

    return (f'<div id="input-checks" role="alert"><strong>{html.escape(lines[0])}</strong>: '
            f"{html.escape(DO_NOT_TRUST)}.<ul>{items}</ul></div>\n")


def page_data(result, report: dict) -> dict:
    """What the page shows besides the images: the summary of ``report`` (``result.report``, which is built
    anew each time it is read), in plain JSON types."""
    source = report.get("input", {})
    return {
        "tumour_found": bool(_reported(report, "tumour_found", result.mask.array.any)),
        "volume_ml": round(float(_reported(report, "tumour_volume_ml", lambda: result.volume_ml)), 2),
        "slices": list(_reported(report, "tumour_slices", lambda: result.tumour_slices)),
        "slice_axis": _reported(report, "slice_axis", lambda: result.slice_axis),
        "instances": [entry.get("instance_number") for entry in report.get("tumour_slices_dicom", []) or []
                      if "frame" not in entry],
        "source": str(source.get("series_description") or Path(str(source.get("path", "scan"))).name),
        "warnings": list(report.get("warnings", [])),
        "model": str((report.get("model") or {}).get("name", "")),
        "centre_mm": tumour_centre_mm(result.mask),
    }


def _reported(report: dict, key: str, compute):
    """``report[key]``, or ``compute()`` where the report lacks it: only then, as it may be a pass over the mask."""
    return report[key] if key in report else compute()


def mesh_settings(image) -> dict:
    """How the page draws the mesh: colour, opacity, x-ray, the 2D slab and the cut's line width (mm)."""
    extent = float(np.max(np.asarray(image.array.shape[:3]) * np.asarray(image.spacing)))
    return {"rgba": MESH_RGBA, "opacity": MESH_OPACITY, "xray": MESH_XRAY, "slab_mm": MESH_SLAB_MM,
            "line_mm": round(MESH_LINE_FRACTION * extent, 3)}


@functools.cache
def niivue_bundle() -> str:
    """The vendored NiiVue build (2.3 MB, in every page), read once per process."""
    return NIIVUE_FILE.read_text(encoding="utf-8")


def page_parts(result, mesh_file=None, report: dict | None = None, window=None) -> list[str]:
    """The page for one result (the scan ``result.image`` with ``result.mask`` over it), in parts:
    the bundle and the images are most of its 4 MB, so they are not copied into one string.
    ``mesh_file``: a GIfTI surface in scanner RAS mm (tumour.gii) for the 3D view, or None. ``report``:
    ``result.report`` where the caller has built it already (it is built anew at each reading).
    ``window``: a callable giving the scan's display window (the writer's, shared with the QC picture and
    called once the images are made), or None."""
    image = result.image
    images = {"flair": nifti_base64(compact_image(image.array), image.affine),
              "fill": nifti_base64(mask_layer(result.mask.array), result.mask.affine),
              "outline": nifti_base64(outline(result.mask.array), result.mask.affine)}
    if mesh_file is not None:
        images["mesh"] = base64.b64encode(Path(mesh_file).read_bytes()).decode("ascii")
    report = (result.report if report is None else report) or {}
    low, high = display_window(np.asarray(image.array)) if window is None else window()
    settings = {"window": [low, high], "colour": MASK_COLOUR, "views": VIEWS, **page_data(result, report),
                "mesh": mesh_settings(image) if mesh_file is not None else None}
    head = _HEAD.format(title=html.escape(f"neuroseg: {settings['source']}"), niivue_version=NIIVUE_VERSION,
                        banner_colour=BANNER_COLOUR, banner=banner_html(input_check_lines(report)),
                        mesh_controls=_MESH_CONTROLS.format(opacity=round(MESH_OPACITY * 100))
                        if mesh_file is not None else "")
    return [head, niivue_bundle(), "\n</script>\n<script>\nconst IMAGES = ", images_json(images),
            ";\nconst SETTINGS = ", _script_json(settings), ";\n", _SCRIPT, _TAIL]


def viewer_html(result, mesh_file=None) -> str:
    """The page for one result, as one string."""
    return "".join(page_parts(result, mesh_file))


def _script_json(value) -> str:
    """JSON safe inside a <script> element (no ``</`` can close it)."""
    return json.dumps(value).replace("</", "<\\/")


def images_json(images: dict[str, str]) -> str:
    """:func:`_script_json` of ``{name: base64 text}``, without scanning megabytes of base64 for characters to
    escape: it has none (A-Z, a-z, 0-9, +, /, =)."""
    return "{" + ", ".join(f'{_script_json(name)}: "{text}"' for name, text in images.items()) + "}"


script_json = _script_json  # public: the two-visit page (neuroseg.longitudinal.viewer) inlines its data the same way


def write_viewer(result, path, mesh_file=None, report: dict | None = None, window=None) -> Path:
    """Write the viewer page of ``result`` (and the mesh ``mesh_file``, if given) to ``path`` atomically;
    ``report`` and ``window`` as :func:`page_parts` takes them."""
    path, parts = Path(path), page_parts(result, mesh_file, report, window)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(parts)
    return path


def index_html(rows: list[dict], folder: Path) -> str:
    """batch's index page: one table row per case, linking its viewer page where there is one."""
    lines = []
    for row in rows:
        case = str(row.get("case", ""))
        page = Path(folder) / case / VIEWER_FILE
        name = html.escape(case)
        link = f'<a href="{html.escape(case)}/{VIEWER_FILE}">{name}</a>' if case and page.is_file() else name
        cells = [link] + [html.escape(str(row.get(key, ""))) for key in
                          ("series_description", "tumour_found", "volume_ml", "tumour_slices", "input_checks",
                           "status", "error")]
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return _INDEX.format(rows="\n".join(lines), count=len(rows))


def write_index(rows: list[dict], folder) -> Path:
    """Write ``index.html`` into ``folder`` (beside summary.csv), atomically; returns its path."""
    folder = Path(folder)
    return atomic_write_text(folder / INDEX_FILE, index_html(rows, folder))


_SCRIPT = """
// 'all three' is the three planes at any window width: NiiVue would add a 3D tile to a wide one (its
// multiplanarShowRender AUTO), where the cut's flat ribbons lie on the surface and show as broken lines;
// the 3D view is the '3D' choice, which hides them.
const nv = new niivue.Niivue({backColor: [0, 0, 0, 1], isRadiologicalConvention: true, show3Dcrosshair: false,
                               crosshairColor: [0.2, 0.8, 1, 0.6], dragAndDropEnabled: false,
                               multiplanarShowRender: niivue.SHOW_RENDER.NEVER});
const layers = {};
function setView(name) {
  const types = {multiplanar: nv.sliceTypeMultiplanar, axial: nv.sliceTypeAxial,
                 coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal, render: nv.sliceTypeRender};
  if (layers.cut) layers.cut.visible = name !== 'render';  // the 3D view shows the whole surface instead
  nv.setSliceType(types[name] ?? nv.sliceTypeMultiplanar);
  document.getElementById('view').value = name in types ? name : 'multiplanar';
}
function setMask() {
  const opacity = Number(document.getElementById('opacity').value) / 100;
  const style = document.querySelector('input[name=style]:checked').value;
  nv.setOpacity(nv.getVolumeIndexByID(layers.fill.id), style === 'fill' ? opacity : 0);
  nv.setOpacity(nv.getVolumeIndexByID(layers.outline.id), style === 'outline' ? opacity : 0);
  document.getElementById('opacity-value').textContent = Math.round(opacity * 100) + ' %';
}
function setMeshOpacity() {
  if (!layers.mesh) return;
  const opacity = Number(document.getElementById('mesh-opacity').value) / 100;
  nv.setMeshProperty(layers.mesh.id, 'opacity', opacity);
  nv.setMeshProperty(layers.cut.id, 'opacity', opacity);
  document.getElementById('mesh-opacity-value').textContent = Math.round(opacity * 100) + ' %';
  nv.drawScene();
}
// NiiVue draws a mesh in a 2D view as its triangles within a thin slab round the slice, projected onto the
// slice. A tumour's wall crosses a slice nearly at right angles (5 mm slices make it steep), so those
// triangles are seen edge-on and cover no pixel: the cut would not show. So the cut is computed here, where
// the three planes through the crosshair cross the surface, and each segment is drawn as a flat ribbon
// lying in its plane (face-on in its own 2D view, edge-on and so unseen in the other two).
function cutRibbons(pts, tris, centre, half) {
  const verts = [], faces = [];
  for (let axis = 0; axis < 3; axis++) {
    for (let t = 0; t < tris.length; t += 3) {
      const ends = [];
      for (let e = 0; e < 3; e++) {
        const a = 3 * tris[t + e], b = 3 * tris[t + (e + 1) % 3];
        const da = pts[a + axis] - centre[axis], db = pts[b + axis] - centre[axis];
        if ((da < 0) === (db < 0)) continue;  // this edge does not cross the plane
        const f = da / (da - db);
        ends.push([0, 1, 2].map(i => i === axis ? centre[axis] : pts[a + i] + f * (pts[b + i] - pts[a + i])));
      }
      if (ends.length === 2) addRibbon(verts, faces, ends[0], ends[1], axis, half);
    }
  }
  return {pts: new Float32Array(verts), tris: new Uint32Array(faces)};
}
function addRibbon(verts, faces, p, q, axis, half) {
  // the segment p-q, lengthened and widened by `half` mm in its plane (so neighbours overlap at the joins),
  // once in each winding: NiiVue culls back faces, and which side faces the viewer depends on the view
  const u = (axis + 1) % 3, v = (axis + 2) % 3;
  const length = Math.hypot(q[u] - p[u], q[v] - p[v]) || 1;
  const along = [0, 0, 0], side = [0, 0, 0];
  along[u] = (q[u] - p[u]) / length * half; along[v] = (q[v] - p[v]) / length * half;
  side[u] = -along[v]; side[v] = along[u];
  const corner = (x, a, s) => x.map((c, i) => c + a * along[i] + s * side[i]);
  const corners = [corner(p, -1, 1), corner(p, -1, -1), corner(q, 1, -1), corner(q, 1, 1)];
  for (const order of [[0, 1, 2, 0, 2, 3], [0, 2, 1, 0, 3, 2]]) {
    const base = verts.length / 3;
    for (const c of corners) verts.push(...c);
    for (const i of order) faces.push(base + i);
  }
}
function applied(matrix, pts) {
  // a gl-matrix mat4 (column-major) applied to packed x, y, z points
  const out = new Float32Array(pts.length);
  for (let i = 0; i < pts.length; i += 3) {
    for (let r = 0; r < 3; r++) {
      out[i + r] = matrix[r] * pts[i] + matrix[4 + r] * pts[i + 1] + matrix[8 + r] * pts[i + 2] + matrix[12 + r];
    }
  }
  return out;
}
function updateCut() {
  if (!layers.cut) return;
  // NiiVue shows an oblique scan's 2D slices along its voxel axes ('ortho' mm, the space of frac2mm's
  // crosshair): the cut is taken there and mapped back to scanner mm, where mesh vertices live
  const volume = nv.volumes[0];
  layers.orthoPts ??= applied(volume.mm2ortho, layers.mesh.pts);
  const centre = nv.frac2mm(nv.scene.crosshairPos);
  const cut = cutRibbons(layers.orthoPts, layers.mesh.tris, centre, SETTINGS.mesh.line_mm / 2);
  const none = cut.tris.length === 0;  // the planes miss the tumour: one triangle of no area, on it
  const first = layers.mesh.pts.slice(0, 3);
  layers.cut.pts = none ? new Float32Array([...first, ...first, ...first]) : applied(volume.obliqueRAS, cut.pts);
  layers.cut.tris = none ? new Uint32Array([0, 1, 2]) : cut.tris;
  layers.cut.updateMesh(nv.gl);
}
async function addMesh() {
  // tumour.gii: scanner RAS mm, the space NiiVue places the volumes in, so no transform is needed
  const bytes = Uint8Array.from(atob(IMAGES.mesh), c => c.charCodeAt(0));
  const rgba = new Uint8Array(SETTINGS.mesh.rgba);
  layers.mesh = await niivue.NVMesh.readMesh(bytes.buffer, 'tumour.gii', nv.gl, SETTINGS.mesh.opacity, rgba);
  const first = layers.mesh.pts.slice(0, 3);
  layers.cut = new niivue.NVMesh(new Float32Array([...first, ...first, ...first]), new Uint32Array([0, 1, 2]),
                                 'cut', rgba, SETTINGS.mesh.opacity, true, nv.gl);
  nv.opts.meshThicknessOn2D = SETTINGS.mesh.slab_mm;
  nv.opts.meshXRay = SETTINGS.mesh.xray;  // fixed: NiiVue's x-ray pass scales by the mesh's opacity (the slider)
  nv.addMesh(layers.mesh);
  nv.addMesh(layers.cut);
  nv.onLocationChange = updateCut;
}
async function show() {
  nv.attachTo('gl');
  layers.flair = await niivue.NVImage.loadFromBase64({base64: IMAGES.flair, name: 'flair.nii.gz',
      colormap: 'gray', cal_min: SETTINGS.window[0], cal_max: SETTINGS.window[1]});
  for (const name of ['fill', 'outline']) {
    layers[name] = await niivue.NVImage.loadFromBase64({base64: IMAGES[name], name: name + '.nii.gz',
        colormap: SETTINGS.colour, cal_min: 0.5, cal_max: 1, opacity: 0.5});
    layers[name].colorbarVisible = false;
  }
  nv.addVolume(layers.flair);
  nv.addVolume(layers.fill);
  nv.addVolume(layers.outline);
  if (SETTINGS.mesh) await addMesh();
  if (SETTINGS.centre_mm) {
    nv.scene.crosshairPos = nv.mm2frac(SETTINGS.centre_mm, 0, true);  // true: scanner mm, also when oblique
  }
  updateCut();
  setView(window.location.hash.slice(1) || 'multiplanar');
  setMask();
  setMeshOpacity();
  nv.drawScene();
  document.body.dataset.ready = 'yes';
}
function describe() {
  const s = SETTINGS;
  const slices = s.slices.length ? s.slices.join(', ') : 'none';
  document.getElementById('summary').textContent = (s.tumour_found ? 'Tumour found: ' : 'No tumour found: ') +
      s.volume_ml.toFixed(1) + ' mL on ' + s.slices.length + ' slices (axis ' + s.slice_axis + '): ' + slices +
      (s.instances.length ? '; DICOM instance numbers ' + s.instances.join(', ') : '');
  const list = document.getElementById('warnings');
  for (const text of s.warnings) {
    const item = document.createElement('li');
    item.textContent = text;
    list.appendChild(item);
  }
}
document.getElementById('view').addEventListener('change', e => { setView(e.target.value); });
document.getElementById('opacity').addEventListener('input', setMask);
for (const radio of document.querySelectorAll('input[name=style]')) radio.addEventListener('change', setMask);
document.getElementById('mesh-opacity')?.addEventListener('input', setMeshOpacity);
window.addEventListener('hashchange', () => setView(window.location.hash.slice(1)));
describe();
show().catch(error => {
  document.getElementById('summary').textContent = 'The viewer could not start (WebGL2 needed): ' + error;
});
"""

# Every page's start: offline (the Content-Security-Policy lets nothing load from elsewhere), black.
PAGE_START = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; \
style-src 'unsafe-inline'; img-src data: blob:; connect-src data: blob:; worker-src blob:">
<title>{title}</title>
<style>
  html, body {{ margin: 0; background: #000; color: #ddd; font: 13px sans-serif; }}
  body {{ display: flex; flex-direction: column; height: 100vh; }}
"""

_HEAD = PAGE_START + """  header {{ display: flex; flex: none; gap: 1em; align-items: center; padding: 4px 8px; background: #222;
            height: 24px; }}
  #input-checks {{ flex: none; background: {banner_colour}; color: #000; padding: 4px 8px; max-height: 30vh;
                   overflow: auto; }}
  #input-checks ul {{ margin: 0; padding-left: 1.2em; }}
  #stage {{ width: 100vw; flex: 1; min-height: 0; overflow: hidden; }}
  #report {{ padding: 4px 8px; height: 54px; flex: none; overflow: auto; }}
  #warnings {{ color: #fc6; margin: 0; padding-left: 1.2em; }}
</style>
</head>
<body>
<header>
  <label>View <select id="view">
    <option value="multiplanar">all three</option><option value="axial">axial</option>
    <option value="coronal">coronal</option><option value="sagittal">sagittal</option>
    <option value="render">3D</option></select></label>
  <label><input type="radio" name="style" value="fill" checked> fill</label>
  <label><input type="radio" name="style" value="outline"> outline</label>
  <label>opacity <input id="opacity" type="range" min="0" max="100" value="50"></label>
  <span id="opacity-value"></span>{mesh_controls}
</header>
{banner}<div id="stage"><canvas id="gl"></canvas></div>
<div id="report"><div id="summary"></div><ul id="warnings"></ul>
<small>Research tool, not a medical device. Viewer: NiiVue {niivue_version} (BSD-2-Clause).</small></div>
<script>
"""
_MESH_CONTROLS = """
  <label>mesh <input id="mesh-opacity" type="range" min="0" max="100" value="{opacity}"></label>
  <span id="mesh-opacity-value"></span>"""

# page_parts puts the NiiVue build, IMAGES, SETTINGS and _SCRIPT between _HEAD and _TAIL

_TAIL = """
</script>
</body>
</html>
"""

_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>neuroseg batch</title>
<style>
  body {{ font: 14px sans-serif; margin: 1em; }}
  table {{ border-collapse: collapse; }}
  td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
</style>
</head>
<body>
<h1>neuroseg batch: {count} cases</h1>
<p>Each case's page shows its scan with the mask (see also summary.csv). Research tool, not a medical device.</p>
<table>
<tr><th>case</th><th>series</th><th>tumour found</th><th>volume (mL)</th><th>tumour slices</th>
<th>input checks that warned</th><th>status</th><th>error</th></tr>
{rows}
</table>
</body>
</html>
"""

__all__ = ["write_viewer", "viewer_html", "write_index", "index_html", "VIEWER_FILE", "INDEX_FILE",
           "NIIVUE_VERSION"]
