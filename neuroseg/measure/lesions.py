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

from neuroseg.volume import Volume

CONNECTIVITY = 26
RANO_MIN_DIAMETER_MM = 10.0  # RANO: a measurable lesion is >= 10 mm in both perpendicular diameters ...
RANO_THICK_SLICE_MM = 5.0  # ... or >= twice the slice thickness where slices are thicker than 5 mm
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
                "bidimensional": self.bidimensional.to_json(), "measurable": self.measurable,
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
    from scipy import ndimage

    labels, count = ndimage.label(np.asarray(mask.array) > 0, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-sizes, kind="stable")  # ties keep scan order
    renumber = np.zeros(count + 1, dtype=labels.dtype)
    renumber[order + 1] = np.arange(1, count + 1)
    return renumber[labels], int(count)


def measure_lesions(mask: Volume) -> LesionMeasurements:
    """Label ``mask`` (non-zero = tumour) into lesions and measure each in scanner mm."""
    from scipy import ndimage

    axis = axial_axis(mask.affine)
    thickness = slice_thickness_mm(mask.affine, axis)
    labels, count = lesion_labels(mask)
    boxes = ndimage.find_objects(labels)
    lesions = tuple(_lesion(labels[box] == n + 1, n + 1, box, mask.affine, axis, thickness)
                    for n, box in enumerate(boxes))
    tumour = labels > 0
    total = None
    if count:
        box = ndimage.find_objects(tumour.astype(np.uint8))[0]
        total = _diameter(voxel_to_ras(surface_points(tumour[box]) + _offset(box), mask.affine))
    centroids = np.array([lesion.centroid_ras for lesion in lesions]).reshape(-1, 3)
    spread = _diameter(centroids) if count else None
    return LesionMeasurements(lesions=lesions, total_volume_ml=float(tumour.sum()) * mask.voxel_volume_ml,
                              longest_diameter_mm=total, largest_focus_distance_mm=spread,
                              axial_axis=axis, slice_thickness_mm=thickness)


def _offset(box) -> np.ndarray:
    return np.array([s.start for s in box], dtype=float)


def voxel_to_ras(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxel coordinates (n, 3) to scanner RAS+ mm through the full affine, origin included."""
    return np.asarray(index, dtype=float) @ affine[:3, :3].T + affine[:3, 3]


def _lesion(component: np.ndarray, label: int, box, affine: np.ndarray, axis: int, thickness: float) -> Lesion:
    """Measure one component, given cropped to its bounding ``box`` of the whole grid."""
    offset = _offset(box)
    surface = surface_points(component) + offset
    world = voxel_to_ras(surface, affine)
    voxels = int(component.sum())
    centroid = voxel_to_ras(np.argwhere(component).mean(axis=0, keepdims=True) + offset, affine)[0]
    bidim = _bidimensional(component, offset, affine, axis)
    limit = RANO_MIN_DIAMETER_MM if thickness <= RANO_THICK_SLICE_MM else 2 * thickness
    return Lesion(label=label, voxels=voxels, volume_ml=voxels * abs(np.linalg.det(affine[:3, :3])) / 1000.0,
                  longest_diameter_mm=_diameter(world), bidimensional=bidim,
                  measurable=bool(bidim.longest_mm >= limit and bidim.perpendicular_mm >= limit),
                  centroid_ras=tuple(float(v) for v in centroid),
                  bbox_min_ras=tuple(float(v) for v in world.min(axis=0)),
                  bbox_max_ras=tuple(float(v) for v in world.max(axis=0)))


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


def _farthest_pair(points: np.ndarray):
    """The longest distance between two of ``points`` (n, d) and that pair; the hull's vertices suffice."""
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import cdist

    if len(points) > _HULL_ABOVE:
        try:
            points = points[ConvexHull(points).vertices]
        except Exception:  # scipy's QhullError: flat or degenerate points; compare them all instead
            pass
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

    Each line is sampled every twentieth of the smallest pixel side; a sample is tumour when the pixel
    holding it is, so a run measures the tumour's pixels edge to edge (error below one step).
    """
    step = float(np.min(np.abs(np.diag(to_mm)))) / 20.0
    along = (q - p) / max(float(np.linalg.norm(q - p)), 1e-12)
    across = np.array([-along[1], along[0]])
    t = np.arange(0.0, float(np.linalg.norm(q - p)) + step, step)
    reach = float(np.linalg.norm(q - p)) + step  # a perpendicular chord is no longer than the longest diameter
    s = np.arange(-reach, reach + step, step)
    to_voxel = np.linalg.inv(to_mm)
    longest = 0
    for chunk in np.array_split(t, max(1, len(t) // 64)):
        points = p + chunk[:, None, None] * along + s[None, :, None] * across  # (lines, samples, 2) mm
        index = np.rint(points @ to_voxel.T).astype(int)
        inside = np.all((index >= 0) & (index < section.shape), axis=-1)
        hit = np.zeros(inside.shape, dtype=bool)
        hit[inside] = section[index[inside][:, 0], index[inside][:, 1]]
        longest = max(longest, _longest_run(hit))
    return longest * step


def _longest_run(hit: np.ndarray) -> int:
    """The most consecutive True values in any row of ``hit``."""
    padded = np.pad(hit.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    rows_up, cols_up = np.nonzero(edges == 1)
    _, cols_down = np.nonzero(edges == -1)
    return int((cols_down - cols_up).max()) if len(rows_up) else 0
