"""The lesions of a mask and what a surgeon or a RANO read asks of each, in scanner millimetres.

A lesion is a connected component of the mask under 26-connectivity (voxels that share a face, an edge
or a corner), as :func:`neuroseg.inference.postprocess` counts them when it drops specks.

Lengths are measured on the surface of the voxels: the centres of the faces between a tumour voxel and
a background voxel (exactly where marching cubes puts a binary mask's vertices). Along a grid axis this
is the tumour's edge-to-edge extent, so a lesion ``n`` voxels across measures ``n`` voxel sizes, not
``n - 1`` as voxel centres would. Every length is taken in scanner mm through the full affine, so an
oblique, anisotropic or flipped grid gives the lengths of the same tumour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroseg.transforms.box import bounding_box
from neuroseg.volume import Volume

CONNECTIVITY = 26
RANO_MIN_DIAMETER_MM = 10.0  # RANO: a measurable lesion is >= 10 mm in both perpendicular diameters ...
RANO_THICK_SLICE_MM = 5.0  # ... or >= twice the slice thickness where slices are thicker than 5 mm,
RANO_MIN_SLICES = 2  # ... and seen on two or more axial slices (one slice's blot is no measurable lesion)
_HULL_ABOVE = 64  # points; fewer are compared pair by pair


def ras_to_lps(point) -> list[float]:
    """DICOM's LPS from nibabel's RAS+: x and y negated."""
    x, y, z = (float(v) for v in point)
    return [-x, -y, z]


def _mm(values, digits: int = 2) -> list[float]:
    return [round(float(v), digits) + 0.0 for v in values]  # + 0.0: no -0.0 in the JSON


@dataclass(frozen=True)
class Bidimensional:
    """The RANO bidimensional measurement of one lesion on its largest axial slice.

    ``slice_axis`` is the grid axis closest to the scanner's S axis (its slices are the axial ones),
    ``slice_index`` the slice along it; ``perpendicular_mm`` is the lesion's width on that slice across
    the longest diameter (its caliper width: the longest perpendicular chord where the section is convex).
    """

    slice_axis: int
    slice_index: int
    longest_mm: float
    perpendicular_mm: float

    @property
    def product_mm2(self) -> float:
        return self.longest_mm * self.perpendicular_mm

    def to_json(self) -> dict:
        return {"slice_axis": self.slice_axis, "slice_index": self.slice_index,
                "longest_mm": round(self.longest_mm, 2), "perpendicular_mm": round(self.perpendicular_mm, 2),
                "product_mm2": round(self.product_mm2, 1)}


@dataclass(frozen=True)
class Lesion:
    """One connected component. Coordinates are scanner mm; ``*_ras`` in RAS+, ``*_lps`` in DICOM LPS."""

    label: int  # 1 = the largest lesion
    voxels: int
    volume_ml: float
    longest_diameter_mm: float
    bidimensional: Bidimensional
    measurable: bool
    centroid_ras: tuple[float, float, float]
    bbox_min_ras: tuple[float, float, float]  # of the surface points (see the module docstring)
    bbox_max_ras: tuple[float, float, float]
    axial_slices: int = 0  # axial slices it is seen on

    @property
    def centroid_lps(self) -> list[float]:
        return ras_to_lps(self.centroid_ras)

    @property
    def bbox_lps(self) -> tuple[list[float], list[float]]:
        """(min, max) in LPS: negating x and y swaps which corner is the minimum on those axes."""
        lo, hi = np.array(ras_to_lps(self.bbox_min_ras)), np.array(ras_to_lps(self.bbox_max_ras))
        return np.minimum(lo, hi).tolist(), np.maximum(lo, hi).tolist()

    def to_json(self) -> dict:
        lps_min, lps_max = self.bbox_lps
        return {"label": self.label, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 3),
                "longest_diameter_mm": round(self.longest_diameter_mm, 2),
                "bidimensional": self.bidimensional.to_json(), "axial_slices": self.axial_slices,
                "measurable": self.measurable,
                "centroid_ras_mm": _mm(self.centroid_ras), "centroid_lps_mm": _mm(self.centroid_lps),
                "bounding_box_ras_mm": {"min": _mm(self.bbox_min_ras), "max": _mm(self.bbox_max_ras)},
                "bounding_box_lps_mm": {"min": _mm(lps_min), "max": _mm(lps_max)}}


@dataclass(frozen=True)
class LesionMeasurements:
    """Every lesion of a mask (largest first) and the totals.

    ``longest_diameter_mm`` spans all lesions together; ``largest_focus_distance_mm`` is the largest
    distance between two lesions' centroids (0 for one lesion, None for none).
    """

    lesions: tuple[Lesion, ...]
    total_volume_ml: float
    longest_diameter_mm: float | None
    largest_focus_distance_mm: float | None
    axial_axis: int
    slice_thickness_mm: float
    connectivity: int = CONNECTIVITY

    @property
    def foci(self) -> int:
        return len(self.lesions)

    def to_json(self) -> dict:
        def rounded(value):
            return None if value is None else round(value, 2)

        return {"connectivity": self.connectivity, "axial_axis": self.axial_axis,
                "slice_thickness_mm": round(self.slice_thickness_mm, 3),
                "measured_on": "voxel surface (face centres between tumour and background voxels)",
                "foci": self.foci, "total_volume_ml": round(self.total_volume_ml, 3),
                "longest_diameter_mm": rounded(self.longest_diameter_mm),
                "largest_focus_distance_mm": rounded(self.largest_focus_distance_mm),
                "lesions": [lesion.to_json() for lesion in self.lesions]}

    def summary(self) -> str:
        """One line for the console."""
        if not self.lesions:
            return "No lesion."
        big = self.lesions[0]
        line = (f"{self.foci} lesion{'s' if self.foci > 1 else ''}, {self.total_volume_ml:.1f} mL; "
                f"largest {big.volume_ml:.1f} mL, {big.longest_diameter_mm:.0f} mm longest, "
                f"{big.bidimensional.longest_mm:.0f} x {big.bidimensional.perpendicular_mm:.0f} mm axial "
                f"({'measurable' if big.measurable else 'not measurable'})")
        if self.foci > 1:
            line += f"; foci up to {self.largest_focus_distance_mm:.0f} mm apart"
        return line


def axial_axis(affine: np.ndarray) -> int:
    """The grid axis whose direction is closest to the scanner S axis: its slices are the axial ones."""
    columns = np.asarray(affine, dtype=float)[:3, :3]
    cosines = np.abs(columns[2]) / np.linalg.norm(columns, axis=0)
    return int(np.argmax(cosines))


def slice_thickness_mm(affine: np.ndarray, axis: int) -> float:
    """Distance between slices along ``axis``, perpendicular to them (the spacing, on a sheared grid less)."""
    columns = np.asarray(affine, dtype=float)[:3, :3]
    a, b = [columns[:, i] for i in range(3) if i != axis]
    return float(abs(np.linalg.det(columns)) / np.linalg.norm(np.cross(a, b)))


def lesion_labels(mask: Volume) -> tuple[np.ndarray, int]:
    """Each lesion of ``mask`` (non-zero = tumour) numbered 1, 2, ... from the largest; 0 is background."""
    cropped, count, corner = _cropped_labels(np.asarray(mask.array) > 0)
    labels = np.zeros(mask.shape, dtype=cropped.dtype)
    labels[tuple(slice(c, c + n) for c, n in zip(corner, cropped.shape))] = cropped
    return labels, count


def _cropped_labels(tumour: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """The lesions numbered from the largest on the tumour's bounding box only (labelling the whole grid
    costs tens of ms for a tumour of a few percent of it), the count and the box's first voxel."""
    from scipy import ndimage

    box = bounding_box(tumour)
    if box is None:  # no tumour (scipy cannot label an empty array)
        return np.zeros((0, 0, 0), dtype=np.int32), 0, np.zeros(3, dtype=int)
    labels, count = ndimage.label(tumour[box], structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-sizes, kind="stable")  # ties keep scan order
    renumber = np.zeros(count + 1, dtype=labels.dtype)
    renumber[order + 1] = np.arange(1, count + 1)
    return renumber[labels], int(count), _offset(box).astype(int)


def tumour_voxels(mask: np.ndarray) -> np.ndarray:
    """``np.argwhere(mask > 0)`` (voxel indices, n x 3), looked for in the mask's bounding box only."""
    mask = np.asarray(mask)
    box = bounding_box(mask)
    if box is None:
        return np.zeros((0, 3), dtype=np.intp)
    return np.argwhere(mask[box] > 0) + [s.start for s in box]


def measure_lesions(mask: Volume) -> LesionMeasurements:
    """Label ``mask`` (non-zero = tumour) into lesions and measure each in scanner mm."""
    from scipy import ndimage

    axis = axial_axis(mask.affine)
    thickness = slice_thickness_mm(mask.affine, axis)
    labels, count, corner = _cropped_labels(np.asarray(mask.array) > 0)
    lesions, hulls = [], []
    for n, box in enumerate(ndimage.find_objects(labels) if count else []):
        world = voxel_to_ras(surface_points(labels[box] == n + 1) + _offset(box) + corner, mask.affine)
        hulls.append(_hull_vertices(world))
        lesions.append(_lesion(labels[box] == n + 1, n + 1, box, corner, world, hulls[-1], mask.affine, axis,
                               thickness))
    centroids = np.array([lesion.centroid_ras for lesion in lesions]).reshape(-1, 3)
    # The farthest pair of the union lies on the union of the lesions' hulls.
    total = _diameter(np.concatenate(hulls)) if count else None
    spread = _diameter(centroids) if count else None
    return LesionMeasurements(lesions=tuple(lesions), total_volume_ml=float(np.count_nonzero(labels)) *
                              mask.voxel_volume_ml, longest_diameter_mm=total, largest_focus_distance_mm=spread,
                              axial_axis=axis, slice_thickness_mm=thickness)


def _offset(box) -> np.ndarray:
    return np.array([s.start for s in box], dtype=float)


def voxel_to_ras(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxel coordinates (n, 3) to scanner RAS+ mm through the full affine, origin included."""
    return np.asarray(index, dtype=float) @ affine[:3, :3].T + affine[:3, 3]


def _lesion(component: np.ndarray, label: int, box, corner: np.ndarray, world: np.ndarray, hull: np.ndarray,
            affine: np.ndarray, axis: int, thickness: float) -> Lesion:
    """Measure one component, given cropped to its ``box`` of the labels that start at ``corner`` of the
    whole grid, with its surface points in scanner mm (``world``) and their hull's vertices."""
    offset = _offset(box) + corner
    voxels = int(component.sum())
    centroid = voxel_to_ras(np.argwhere(component).mean(axis=0, keepdims=True) + offset, affine)[0]
    bidim = _bidimensional(component, offset, affine, axis)
    limit = RANO_MIN_DIAMETER_MM if thickness <= RANO_THICK_SLICE_MM else 2 * thickness
    slices = int(component.any(axis=tuple(a for a in range(3) if a != axis)).sum())
    return Lesion(label=label, voxels=voxels, volume_ml=voxels * abs(np.linalg.det(affine[:3, :3])) / 1000.0,
                  longest_diameter_mm=_diameter(hull), bidimensional=bidim,
                  measurable=bool(bidim.longest_mm >= limit and bidim.perpendicular_mm >= limit
                                  and slices >= RANO_MIN_SLICES),
                  centroid_ras=tuple(float(v) for v in centroid),
                  bbox_min_ras=tuple(float(v) for v in world.min(axis=0)),
                  bbox_max_ras=tuple(float(v) for v in world.max(axis=0)), axial_slices=slices)


def surface_points(component: np.ndarray, axes=(0, 1, 2)) -> np.ndarray:
    """Voxel coordinates (n, 3) of the centres of the faces between tumour and background.

    Only faces normal to ``axes`` are taken (the in-plane ones make a slice's outline).
    """
    padded = np.pad(component, 1).astype(np.int8)
    points = []
    for axis in axes:
        face = np.argwhere(np.diff(padded, axis=axis) != 0).astype(float)  # between index and index + 1
        face[:, axis] += 0.5
        points.append(face - 1.0)  # back from the padded grid
    return np.concatenate(points)


def _diameter(points: np.ndarray) -> float:
    return _farthest_pair(points)[0]


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    """The vertices of the convex hull of ``points`` (n, d): the farthest pair is among them."""
    from scipy.spatial import ConvexHull

    if len(points) <= _HULL_ABOVE:
        return points
    try:
        return points[ConvexHull(points).vertices]
    except Exception:  # scipy's QhullError: flat or degenerate points; keep them all
        return points


def _farthest_pair(points: np.ndarray):
    """The longest distance between two of ``points`` (n, d) and that pair."""
    from scipy.spatial.distance import cdist

    points = _hull_vertices(points)
    if len(points) < 2:
        return 0.0, points[0], points[0]
    distances = cdist(points, points)
    i, j = np.unravel_index(np.argmax(distances), distances.shape)
    return float(distances[i, j]), points[i], points[j]


def _bidimensional(component: np.ndarray, offset: np.ndarray, affine: np.ndarray, axis: int) -> Bidimensional:
    """Longest in-plane diameter on the axial slice where it is largest, and the longest chord across it there."""
    in_plane = [a for a in range(3) if a != axis]
    _, to_mm = np.linalg.qr(affine[:3, :3][:, in_plane])  # in-plane voxel steps to orthonormal 2D mm
    outline = surface_points(component, axes=in_plane)
    slices = np.rint(outline[:, axis]).astype(int)
    found = []  # (longest, k, p, q) of each slice
    for k in np.unique(slices):
        longest, p, q = _farthest_pair(outline[slices == k][:, in_plane] @ to_mm.T)
        found.append((longest, int(k), p, q))
    top = max(f[0] for f in found)
    best = max((_chord_across(np.take(component, k, axis=axis), to_mm, p, q), k, longest)
               for longest, k, p, q in found if longest >= top - 1e-6)  # ties: the widest
    width, k, longest = best
    return Bidimensional(slice_axis=axis, slice_index=k + int(offset[axis]), longest_mm=longest,
                         perpendicular_mm=width)


def _chord_across(section: np.ndarray, to_mm: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """The longest run of ``section`` (a 2D mask) on the lines perpendicular to p-q, in mm.

    A line is tumour where it crosses a tumour pixel's square, so a run measures the pixels edge to edge.
    The run lengths are exact: along a line they are the pieces between its crossings of the pixel grid,
    and between two outline corners (as a line sweeps from p to q) every run end slides along one pixel
    edge, so the run length is linear in the sweep and its maximum lies at a corner or at p or q. Only
    those lines are measured, each just before and just after the corner.
    """
    length = float(np.linalg.norm(q - p))
    along = (q - p) / max(length, 1e-12)
    across = np.array([-along[1], along[0]])
    sweep = (_outline_corners(section) @ to_mm.T - p) @ along
    eps = 1e-6 * max(length, 1.0)
    sweep = np.unique(np.concatenate([sweep - eps, sweep + eps, [0.0, length]]))
    sweep = sweep[(sweep >= 0.0) & (sweep <= length)]
    to_voxel = np.linalg.inv(to_mm)
    step = to_voxel @ across  # pixel index per mm along a line
    start = (p + sweep[:, None] * along) @ to_voxel.T  # each line's pixel index where it crosses p-q
    chunks = max(1, len(sweep) * sum(section.shape) // 1_000_000)
    return max(_longest_runs(section, part, step) for part in np.array_split(start, chunks))


def _outline_corners(section: np.ndarray) -> np.ndarray:
    """Pixel-index positions (n, 2) of the corners where tumour and background pixels meet."""
    padded = np.pad(section.astype(np.int8), 1)
    around = padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]
    return np.argwhere((around > 0) & (around < 4)) - 0.5


def _longest_runs(section: np.ndarray, start: np.ndarray, step: np.ndarray) -> float:
    """The longest tumour run in mm on the lines ``start + s * step`` (pixel index; s in mm), all at once."""
    crossings = []
    for axis in range(2):  # where each line crosses the grid lines between pixels (none when parallel)
        if abs(step[axis]) > 1e-12:
            edges = np.arange(-1, section.shape[axis]) + 0.5
            crossings.append((edges[None, :] - start[:, axis:axis + 1]) / step[axis])
    s = np.sort(np.concatenate(crossings, axis=1), axis=1)
    width = np.diff(s, axis=1)  # the pieces between crossings: each inside one pixel
    index = np.rint(start[:, None, :] + ((s[:, 1:] + s[:, :-1]) / 2)[..., None] * step).astype(int)
    inside = np.all((index >= 0) & (index < section.shape), axis=-1)
    hit = width <= 1e-9  # a line through a grid corner: no length, no break
    hit[inside] |= section[index[inside][:, 0], index[inside][:, 1]].astype(bool)
    total = np.cumsum(np.where(hit, width, 0.0), axis=1)
    since = np.maximum.accumulate(np.where(hit, 0.0, total), axis=1)  # the total where the run began
    return float((total - since).max()) if total.size else 0.0
