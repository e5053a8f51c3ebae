"""compare.html: the two visits in one self-contained page (NiiVue), the change map toggled over them, and
the table of lesions.

Both visits are shown on the baseline grid: the follow-up scan is resampled onto it through the rigid
transform (linear), as compare.png shows it; its lesions were measured on its own grid (the table's numbers).
The page is built from the single-visit viewer's parts (:mod:`neuroseg.export.viewer`): the vendored NiiVue
build, the images inlined as gzipped NIfTI, no network. When the two scans may not be one head, a red banner
(plain HTML, so it shows without WebGL) says so above everything else.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from neuroseg.export.viewer import (NIIVUE_VERSION, PAGE_START, compact_image, display_window, images_json,
                                    niivue_bundle, nifti_base64, script_json, tumour_centre_mm)
from neuroseg.io.atomic import atomic_path
from neuroseg.longitudinal.response import CAVEAT, NEW_LABEL, RESOLVED_LABEL, STABLE_LABEL

# the change map's colours, as compare.png draws them: stable yellow, new red, resolved blue
CHANGE_COLOURS = {"stable": (255, 220, 0), "new": (255, 40, 40), "resolved": (60, 140, 255)}
CHANGE_VALUES = {"stable": STABLE_LABEL, "new": NEW_LABEL, "resolved": RESOLVED_LABEL}
ALARM_COLOUR = "#d00000"  # the not-the-same-head banner: nothing else on the page is this red
FOLLOWUP_NOTE = ("The follow-up is shown resampled onto the baseline grid through the rigid registration "
                 "(linear interpolation); each visit was measured on its own grid.")


def lesion_rows(comparison) -> list[dict]:
    """One row per matched pair (a lesion that split or merged appears in several), new and resolved lesion."""
    before, after = comparison.measurements
    by_b = {lesion.label: lesion for lesion in before.lesions}
    by_f = {lesion.label: lesion for lesion in after.lesions}
    matching = comparison.matching
    rows = [_row("matched", by_b.get(b), by_f.get(f)) for b, f, _ in matching.pairs]
    rows += [_row("new", None, by_f.get(f)) for f in matching.new]
    rows += [_row("resolved", by_b.get(b), None) for b in matching.resolved]
    return rows


def _row(status: str, baseline, followup) -> dict:
    return {"status": status, "baseline": _visit(baseline), "followup": _visit(followup)}


def _visit(lesion) -> dict | None:
    if lesion is None:
        return None
    two = lesion.bidimensional
    return {"lesion": lesion.label, "volume_ml": round(lesion.volume_ml, 2),
            "diameters_mm": [round(two.longest_mm, 1), round(two.perpendicular_mm, 1)],
            "product_mm2": round(two.product_mm2, 1), "measurable": lesion.measurable}


def table_html(comparison) -> str:
    """The lesion table: each lesion at each visit, then the totals and the suggested categories."""
    lines = [_table_row(row) for row in lesion_rows(comparison)]
    before, after = comparison.measurements
    rano, volumetric = comparison.rano, comparison.volumetric
    total = (f'<tr class="total"><td>total</td><td></td><td>{before.total_volume_ml:.2f}</td>'
             f'<td>SPD {rano["spd_baseline_mm2"]:.1f}</td><td></td><td>{after.total_volume_ml:.2f}</td>'
             f'<td>SPD {rano["spd_followup_mm2"]:.1f}</td><td></td></tr>')
    return ('<table id="lesions"><tr><th>status</th><th>baseline lesion</th><th>volume (mL)</th>'
            "<th>bidimensional (mm &times; mm = mm&sup2;)</th><th>follow-up lesion</th><th>volume (mL)</th>"
            "<th>bidimensional (mm &times; mm = mm&sup2;)</th><th>measurable</th></tr>\n"
            + "\n".join(lines) + "\n" + total + "</table>\n"
            + f'<p id="category">{html.escape(category_line(rano, volumetric))}</p>\n')


def _table_row(row: dict) -> str:
    before, after = row["baseline"], row["followup"]
    cells = [row["status"]] + _cells(before) + _cells(after)
    measurable = " / ".join("yes" if v["measurable"] else "no" for v in (before, after) if v)
    cells.append(measurable)
    return f'<tr class="{row["status"]}">' + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _cells(visit) -> list:
    if visit is None:
        return ["-", "-", "-"]
    longest, perpendicular = visit["diameters_mm"]
    return [visit["lesion"], f'{visit["volume_ml"]:.2f}', f"{longest:.1f} x {perpendicular:.1f} = {visit['product_mm2']:.1f}"]


def category_line(rano: dict, volumetric: dict) -> str:
    if rano.get("category") is None and rano.get("withheld"):
        return "NO RESPONSE CATEGORY: " + rano["rule"]
    change = volumetric.get("change_percent")
    return (f"Suggested (FLAIR alone): RANO-LGG {rano.get('category') or 'none'} ({rano['rule']}); volumetric "
            f"{volumetric.get('category') or 'none'} (volume change "
            f"{'n/a' if change is None else f'{change:+.1f} %'}).")


def alarm_html(comparison) -> str:
    """The loud banner when the scans may not be one head ('' when they look like one, well aligned)."""
    if comparison.registration.trusted:
        return ""
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in comparison.registration.problems)
    return ('<div id="not-same-head" role="alert"><strong>NOT COMPARED: these two scans may not be the same '
            "head, or are not aligned. No response category is given; do not read the change map as a change."
            f"</strong><ul>{problems}</ul></div>\n")


def page_settings(comparison) -> dict:
    image = comparison.baseline.image
    registration = comparison.registration
    return {
        # the follow-up's window from its own grid: the resampling leaves near-zero values around the head
        "windows": {"baseline": display_window(np.asarray(image.array)),
                    "followup": display_window(np.asarray(comparison.followup.image.array))},
        "colours": {name: list(rgb) for name, rgb in CHANGE_COLOURS.items()},
        "centre_mm": tumour_centre_mm(comparison.change),
        "same_head": registration.trusted,
        "sources": {"baseline": comparison.baseline.label, "followup": comparison.followup.label},
    }


def page_parts(comparison) -> list[str]:
    """The page, in parts (the bundle and the images are most of it, so they are not joined into one string)."""
    baseline = comparison.baseline.image
    followup = comparison.followup_on_baseline
    change = np.asarray(comparison.change.array)
    images = {"baseline": nifti_base64(compact_image(baseline.array), baseline.affine),
              "followup": nifti_base64(np.asarray(followup.array, dtype=np.float32), followup.affine)}
    for name, value in CHANGE_VALUES.items():
        images[name] = nifti_base64((change == value).astype(np.uint8), comparison.change.affine)
    sources = f"{comparison.baseline.label} -> {comparison.followup.label}"
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in comparison.warnings)
    head = _HEAD.format(title=html.escape(f"neuroseg compare: {sources}"), alarm_colour=ALARM_COLOUR,
                        alarm=alarm_html(comparison), sources=html.escape(sources), note=html.escape(FOLLOWUP_NOTE),
                        table=table_html(comparison), warnings=warnings, caveat=html.escape(CAVEAT),
                        niivue_version=NIIVUE_VERSION, **_legend())
    return [head, niivue_bundle(), "\n</script>\n<script>\nconst IMAGES = ", images_json(images),
            ";\nconst SETTINGS = ", script_json(page_settings(comparison)), ";\n", _SCRIPT, _TAIL]


def _legend() -> dict:
    return {f"{name}_colour": "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in CHANGE_COLOURS.items()}


def compare_viewer_html(comparison) -> str:
    return "".join(page_parts(comparison))


def write_compare_viewer(comparison, path) -> Path:
    """Write compare.html for ``comparison`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(page_parts(comparison))
    return path


# The state lives in the controls; the address may set it too (#axial&visit=followup&change=off), so a page can
# be opened, or screenshot, showing one visit with or without the change map.
_SCRIPT = """
const nv = new niivue.Niivue({backColor: [0, 0, 0, 1], isRadiologicalConvention: true, show3Dcrosshair: false,
                               crosshairColor: [0.2, 0.8, 1, 0.6], dragAndDropEnabled: false});
const layers = {};
const CHANGES = ['stable', 'new', 'resolved'];
function setView(name) {
  const types = {multiplanar: nv.sliceTypeMultiplanar, axial: nv.sliceTypeAxial,
                 coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal};
  nv.setSliceType(types[name] ?? nv.sliceTypeMultiplanar);
  document.getElementById('view').value = name in types ? name : 'multiplanar';
}
function update() {
  const visit = document.querySelector('input[name=visit]:checked').value;
  const shown = document.getElementById('change').checked;
  const opacity = Number(document.getElementById('opacity').value) / 100;
  nv.setOpacity(nv.getVolumeIndexByID(layers.baseline.id), visit === 'baseline' ? 1 : 0);
  nv.setOpacity(nv.getVolumeIndexByID(layers.followup.id), visit === 'followup' ? 1 : 0);
  for (const name of CHANGES) nv.setOpacity(nv.getVolumeIndexByID(layers[name].id), shown ? opacity : 0);
  document.getElementById('opacity-value').textContent = Math.round(opacity * 100) + ' %';
  document.body.dataset.visit = visit;
  document.body.dataset.change = shown ? 'on' : 'off';
  nv.drawScene();
}
function fromAddress() {
  const parts = window.location.hash.slice(1).split('&').filter(Boolean);
  const options = Object.fromEntries(parts.filter(p => p.includes('=')).map(p => p.split('=')));
  setView(parts.find(p => !p.includes('=')) || 'multiplanar');
  const radio = document.querySelector(`input[name=visit][value="${options.visit}"]`);
  if (radio) radio.checked = true;
  if (options.change) document.getElementById('change').checked = options.change !== 'off';
}
async function load(name, colormap, low, high) {
  const layer = await niivue.NVImage.loadFromBase64({base64: IMAGES[name], name: name + '.nii.gz',
      colormap: colormap, cal_min: low, cal_max: high, opacity: 1});
  layer.colorbarVisible = false;
  nv.addVolume(layer);
  layers[name] = layer;
}
async function show() {
  nv.attachTo('gl');
  for (const name of CHANGES) {
    const [r, g, b] = SETTINGS.colours[name];
    nv.addColormap('change-' + name, {R: [0, r], G: [0, g], B: [0, b], A: [0, 255], I: [0, 255]});
  }
  await load('baseline', 'gray', ...SETTINGS.windows.baseline);
  await load('followup', 'gray', ...SETTINGS.windows.followup);
  for (const name of CHANGES) await load(name, 'change-' + name, 0.5, 1);
  if (SETTINGS.centre_mm) nv.scene.crosshairPos = nv.mm2frac(SETTINGS.centre_mm);
  fromAddress();
  update();
  document.body.dataset.ready = 'yes';
}
document.getElementById('view').addEventListener('change', e => { setView(e.target.value); });
for (const input of document.querySelectorAll('input[name=visit], #change')) input.addEventListener('change', update);
document.getElementById('opacity').addEventListener('input', update);
window.addEventListener('hashchange', () => { fromAddress(); update(); });
show().catch(error => {
  document.getElementById('failed').textContent = 'The images could not be shown (WebGL2 needed): ' + error;
});
"""

_HEAD = PAGE_START + """  header {{ display: flex; flex: none; flex-wrap: wrap; gap: 1em; align-items: center; padding: 4px 8px;
            background: #222; }}
  #not-same-head {{ flex: none; background: {alarm_colour}; color: #fff; padding: 8px; font-size: 16px; }}
  #not-same-head ul {{ margin: 0; padding-left: 1.2em; font-size: 13px; }}
  #stage {{ width: 100vw; flex: 1; min-height: 200px; overflow: hidden; }}
  #report {{ padding: 4px 8px; flex: none; max-height: 40vh; overflow: auto; }}
  #lesions {{ border-collapse: collapse; }}
  #lesions td, #lesions th {{ border: 1px solid #555; padding: 1px 6px; text-align: left; }}
  #warnings {{ color: #fc6; margin: 0; padding-left: 1.2em; }}
  .swatch {{ display: inline-block; width: 0.9em; height: 0.9em; vertical-align: middle; }}
</style>
</head>
<body>
{alarm}<header>
  <span>{sources}</span>
  <label><input type="radio" name="visit" value="baseline" checked> baseline</label>
  <label><input type="radio" name="visit" value="followup"> follow-up (registered)</label>
  <label><input type="checkbox" id="change" checked> change map</label>
  <span><span class="swatch" style="background:{stable_colour}"></span> stable
    <span class="swatch" style="background:{new_colour}"></span> new
    <span class="swatch" style="background:{resolved_colour}"></span> resolved</span>
  <label>opacity <input id="opacity" type="range" min="0" max="100" value="60"></label>
  <span id="opacity-value"></span>
  <label>View <select id="view">
    <option value="multiplanar">all three</option><option value="axial">axial</option>
    <option value="coronal">coronal</option><option value="sagittal">sagittal</option></select></label>
</header>
<div id="stage"><canvas id="gl"></canvas></div>
<div id="report"><div id="failed"></div><p id="note">{note}</p>
{table}<ul id="warnings">{warnings}</ul>
<p><small>{caveat} Viewer: NiiVue {niivue_version} (BSD-2-Clause).</small></p></div>
<script>
"""

_TAIL = """
</script>
</body>
</html>
"""

__all__ = ["write_compare_viewer", "compare_viewer_html", "lesion_rows"]
