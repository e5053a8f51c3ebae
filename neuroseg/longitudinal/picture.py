"""compare.png: baseline, registered follow-up and the change map, on the same baseline slices.

Radiological view as in qc.png (anterior up, the patient's right on the image's left). The numbers are in
the title; a comparison whose scans may not be one head says so in orange over the whole width.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TILE = 220
COLUMNS = 4
TITLE_LINE = 14
COLOURS = {1: (255, 220, 0), 2: (255, 40, 40), 3: (60, 140, 255)}  # stable, new, resolved
BASELINE_OUTLINE, FOLLOWUP_OUTLINE = (255, 220, 0), (255, 120, 0)
WARNING = (255, 150, 0)
ROWS = ("baseline", "follow-up, registered", "change: yellow both, red new, blue resolved")


def render_comparison(comparison, path) -> Path:
    from PIL import Image, ImageDraw

    from neuroseg.io.atomic import atomic_path
    from neuroseg.transforms import Reorientation

    reorientation = Reorientation.to_working(comparison.baseline.image)
    working = reorientation.apply_volume(comparison.baseline.image)
    before = working.array
    after = reorientation.apply(comparison.followup_on_baseline.array)
    change = reorientation.apply(comparison.change.array)
    slices = _slices(change)
    lines = title_lines(comparison)
    top = TITLE_LINE * len(lines) + 4
    width_mm, height_mm = before.shape[0] * working.spacing[0], before.shape[1] * working.spacing[1]
    scale = TILE / max(width_mm, height_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    sheet = Image.new("RGB", (max(1, len(slices)) * TILE, top + len(ROWS) * (TILE + TITLE_LINE)), "black")
    draw = ImageDraw.Draw(sheet)
    for n, (text, colour) in enumerate(lines):
        draw.text((4, 2 + n * TITLE_LINE), text, fill=colour)
    for row, name in enumerate(ROWS):
        y = top + row * (TILE + TITLE_LINE)
        draw.text((4, y), name, fill=(200, 200, 200))
        for column, k in enumerate(slices):
            tile = _tile(before if row != 1 else after, change, k, row)
            tile = Image.fromarray(tile).resize(size, Image.NEAREST)
            x = column * TILE
            sheet.paste(tile, (x + (TILE - size[0]) // 2, y + TITLE_LINE + (TILE - size[1]) // 2))
            if row == 0:
                source_k = reorientation.working_to_source_slice(k, before.shape[2])
                draw.text((x + TILE - 70, y), f"slice {source_k}", fill=(255, 255, 0))
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", compress_level=1)
    return path


def title_lines(comparison) -> list[tuple[str, tuple]]:
    """The numbers, one line each: volumes, products, categories, registration; warnings in orange."""
    before, after = comparison.measurements
    rano, volumetric, registration = comparison.rano, comparison.volumetric, comparison.registration
    lines = [(f"volume {before.total_volume_ml:.1f} -> {after.total_volume_ml:.1f} mL "
              f"({_percent(volumetric['change_percent'])}); SPD {rano['spd_baseline_mm2']:.0f} -> "
              f"{rano['spd_followup_mm2']:.0f} mm2 ({_percent(rano['change_percent'])}); lesions "
              f"{before.foci} -> {after.foci}, new {len(comparison.matching.new)}, "
              f"resolved {len(comparison.matching.resolved)}", (255, 255, 255))]
    if registration.trusted:
        lines.append((f"suggested from FLAIR alone: RANO-LGG {rano['category'] or 'none'} "
                      f"({rano['rule']}); volumetric {volumetric['category'] or 'none'}", (255, 255, 0)))
    lines.append((f"registration {registration.method}: head Dice {registration.head_dice:.3f}, correlation "
                  f"{registration.correlation:.2f}, metric {registration.metric:.3f}",
                  (200, 200, 200) if registration.trusted else WARNING))
    if not registration.trusted:
        lines.append(("NOT THE SAME HEAD, OR NOT ALIGNED: no response category", WARNING))
    lines.append(("RANO also weighs enhancement, clinical status and steroids: not seen here", (180, 180, 180)))
    return lines


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def _slices(change: np.ndarray) -> list[int]:
    n = change.shape[2]
    found = np.flatnonzero(change.any(axis=(0, 1)))
    pool = found if found.size else np.arange(n)
    count = min(COLUMNS, pool.size)
    return sorted({int(pool[i]) for i in np.linspace(0, pool.size - 1, count).round().astype(int)})


def _tile(image: np.ndarray, change: np.ndarray, k: int, row: int) -> np.ndarray:
    from scipy import ndimage

    plane = image[:, :, k].T
    values = plane[np.isfinite(plane) & (plane > 0)]
    low, high = np.percentile(values, [1, 99.5]) if values.size else (0.0, 1.0)
    gray = (np.clip((np.nan_to_num(plane) - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    labels = change[:, :, k].T
    if row == 2:
        for label, colour in COLOURS.items():
            rgb[labels == label] = (0.45 * rgb[labels == label] + 0.55 * np.array(colour)).astype(np.uint8)
        return rgb
    region = np.isin(labels, (1, 3)) if row == 0 else np.isin(labels, (1, 2))
    edge = region & ~ndimage.binary_erosion(region)
    rgb[edge] = BASELINE_OUTLINE if row == 0 else FOLLOWUP_OUTLINE
    return rgb
