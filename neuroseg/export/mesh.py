"""The tumour as closed surface meshes in scanner mm: tumour.stl and tumour.obj (LPS), tumour.gii (RAS).

How a shell is made, for each lesion (26-connected component, numbered as in :mod:`neuroseg.measure`):

1. shape-based interpolation (Raya & Udupa 1990, as thick-slice surface tools do): on each slice (across the
   axes that are not cut, below) the signed distance in mm to the lesion's outline, negative inside, from
   Euclidean distance transforms with the in-plane spacing; a coarse axis (5 mm slices) is cut into
   sub-slices (until the step is at most the finest spacing times 1.5) and the distance interpolated
   linearly along it, so the outline moves with the in-plane position between two slices: sloped walls, not
   the terraces that thresholding a blurred occupancy gives. A cap slice beyond each end (:func:`_cap`)
   closes the lesion at most half a slice beyond its last slice (the voxel extent), bevelled at the outline;
2. marching cubes (scikit-image) at 0 in voxel coordinates, then every vertex through the full affine,
   origin included: (i, j, k, 1) -> scanner RAS mm;
3. the volume kept: linear interpolation cuts the chords of a convex profile (-8.5 % on an ellipsoid at
   1 x 1 x 5 mm, -6 % on the sample scan), so Newton steps move every outline out by the same distance
   (at most half the coarsest spacing; 0.36 mm on the sample scan) until the enclosed volume is the
   voxels';
4. Taubin smoothing (a low-pass filter that does not shrink the surface, unlike plain Laplacian);
5. faces turned so that normals point outward (an affine with a negative determinant, e.g. LAS, mirrors
   the winding).

Each shell is then checked (:class:`ShellCheck`): watertight, consistently wound and outward, its volume
within 3 % of the lesion's voxels for lesions of 1 mL or more, its centroid within 0.5 mm of theirs, and
every vertex within one voxel diagonal of the voxel surface. Needs the ``mesh`` extra.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroseg.errors import GeometryError, NeurosegError
from neuroseg.io.atomic import atomic_path
from neuroseg.measure import lesion_labels, surface_points, voxel_to_ras
from neuroseg.volume import Volume

MESH_EXTRA = "pip install 'neuroseg[mesh]'"
STL_FILE = "tumour.stl"
OBJ_FILE = "tumour.obj"
GIFTI_FILE = "tumour.gii"
MESH_FILES = (STL_FILE, OBJ_FILE, GIFTI_FILE)
SPACE_TAG = "SPACE=LPS"  # 3D Slicer (4.11+) reads it in an STL header or an OBJ comment
VOLUME_TOLERANCE = 0.03  # for lesions of at least CHECKED_VOLUME_ML
CHECKED_VOLUME_ML = 1.0
CENTROID_TOLERANCE_MM = 0.5
FINE_STEP = 1.5  # supersample a coarse axis until its step is at most this times the finest spacing
TAUBIN = {"lamb": 0.5, "nu": 0.53, "iterations": 10}
_OFFSET_STEPS = 4  # Newton steps on the outline offset that keeps the volume
_OFFSET_TOLERANCE = 0.002  # of the volume: close enough, stop
_OFF_LEVEL_MM = 1e-4  # where a signed distance is exactly 0 (the level), it is taken this far outside


def require_mesh_extra() -> None:
    """One clear line when scikit-image or trimesh is missing."""
    try:
        import skimage.measure  # noqa: F401
        import trimesh  # noqa: F401
    except ImportError:
        raise NeurosegError(f"--mesh needs scikit-image and trimesh: {MESH_EXTRA}") from None


@dataclass(frozen=True)
class ShellCheck:
    """What was checked of one lesion's mesh, against its voxels (volumes in mL, distances in mm)."""

    label: int
    shells: int  # closed surfaces in the lesion's mesh (corner-touching voxels may close apart)
    watertight: bool
    outward: bool  # consistent winding and a positive enclosed volume
    mesh_ml: float
    mask_ml: float
    centroid_error_mm: float
    max_boundary_distance_mm: float  # vertex to the nearest voxel-surface point
    voxel_diagonal_mm: float

    @property
    def volume_error(self) -> float:
        return self.mesh_ml / self.mask_ml - 1.0

    @property
    def failures(self) -> list[str]:
        """The checks this shell fails, in words (empty: all passed)."""
        failed = []
        if not self.watertight:
            failed.append("not watertight")
        if not self.outward:
            failed.append("normals not consistently outward")
        if self.mask_ml >= CHECKED_VOLUME_ML:
            if abs(self.volume_error) > VOLUME_TOLERANCE:
                failed.append(f"volume off by {self.volume_error:+.1%}")
            if self.centroid_error_mm > CENTROID_TOLERANCE_MM:
                failed.append(f"centroid {self.centroid_error_mm:.2f} mm off")
        if self.max_boundary_distance_mm > self.voxel_diagonal_mm:
            failed.append(f"a vertex {self.max_boundary_distance_mm:.2f} mm from the mask")
        return failed

    def to_json(self) -> dict:
        return {"label": self.label, "shells": self.shells, "watertight": self.watertight,
                "outward_normals": self.outward, "mesh_volume_ml": round(self.mesh_ml, 3),
                "mask_volume_ml": round(self.mask_ml, 3), "volume_error": round(self.volume_error, 4),
                "centroid_error_mm": round(self.centroid_error_mm, 3),
                "max_vertex_to_mask_boundary_mm": round(self.max_boundary_distance_mm, 3),
                "voxel_diagonal_mm": round(self.voxel_diagonal_mm, 3), "failures": self.failures}


@dataclass(frozen=True)
class TumourMesh:
    """One mesh per lesion (largest first), vertices in scanner RAS+ mm, and the checks of each."""

    meshes: tuple  # trimesh.Trimesh each
    checks: tuple[ShellCheck, ...]
    supersampling: tuple[int, int, int]  # fine steps per voxel along each array axis

    def combined(self):
        import trimesh

        return trimesh.util.concatenate(list(self.meshes)) if self.meshes else trimesh.Trimesh()

    def to_json(self) -> dict:
        return {"files": {"stl": f"{STL_FILE} (binary, LPS mm, header {SPACE_TAG})",
                          "obj": f"{OBJ_FILE} (LPS mm, comment {SPACE_TAG})", "gifti": f"{GIFTI_FILE} (RAS mm)"},
                "method": "shape-based interpolation (in-plane signed distance to each slice's outline, "
                          "interpolated linearly onto sub-slices; outlines moved out by the offset that keeps the "
                          "voxels' volume), marching cubes at 0 in voxel space, full affine, Taubin smoothing "
                          f"({TAUBIN['iterations']} iterations)",
                "supersampling": list(self.supersampling), "lesions": [c.to_json() for c in self.checks]}


def build_mesh(mask: Volume, smooth: bool = True) -> TumourMesh:
    """A closed, outward-facing shell per lesion of ``mask`` in scanner RAS+ mm, with its checks."""
    from scipy import ndimage

    require_mesh_extra()
    labels, count = lesion_labels(mask)
    factors = supersampling(mask.spacing)
    meshes, checks = [], []
    for n, box in enumerate(ndimage.find_objects(labels)):
        component = labels[box] == n + 1
        offset = np.array([s.start for s in box], dtype=float)
        mesh = _shell(component, offset, mask.affine, factors, smooth)
        meshes.append(mesh)
        checks.append(_check(mesh, component, offset, mask.affine, n + 1))
    return TumourMesh(tuple(meshes), tuple(checks), factors)


def supersampling(spacing) -> tuple[int, int, int]:
    """Fine steps per voxel along each axis: a coarse axis is cut until its step is near the finest."""
    spacing = np.asarray(spacing, dtype=float)
    return tuple(int(max(1, np.ceil(s / (FINE_STEP * spacing.min()) - 1e-9))) for s in spacing)


def _slice_distance(component: np.ndarray, spacing, factors, margin_mm: float) -> np.ndarray:
    """The signed distance (mm, negative inside) of each slice's points to the lesion's outline in that slice.

    A slice spans the axes that are not cut (``factors`` 1); the distance transforms take their spacing.
    Background pads those axes (:func:`_pads`: one voxel, more to hold an outline moved out by ``margin_mm``).
    """
    from scipy import ndimage

    cut = [axis for axis in range(3) if factors[axis] > 1]
    plane = [axis for axis in range(3) if factors[axis] == 1]
    pads = _pads(spacing, factors, margin_mm)
    inside = np.pad(component.astype(bool), [(0, 0) if axis in cut else (pads[axis],) * 2 for axis in range(3)])
    half = 0.5 * spacing[plane].min()
    moved = np.moveaxis(inside, cut + plane, range(3))  # the cut axes first: each index is one slice
    distance = np.empty(moved.shape, dtype=np.float32)
    for index in np.ndindex(moved.shape[:len(cut)]):
        slice_ = moved[index]
        outside = ndimage.distance_transform_edt(~slice_, sampling=spacing[plane])
        depth = ndimage.distance_transform_edt(slice_, sampling=spacing[plane])
        distance[index] = np.where(slice_, half - depth, outside - half)
    return np.moveaxis(distance, range(3), cut + plane)


def _interpolated(distance: np.ndarray, spacing, factors, offset_mm: float) -> np.ndarray:
    """Shape-based interpolation: ``distance`` less ``offset_mm`` (the outlines moved out by that much),
    capped and interpolated linearly along each cut axis onto its sub-slices, so that the zero level moves
    with the in-plane position between two slices (a sloped wall, not a terrace).

    Along a cut axis a cap slice pads each end (:func:`_cap`): the lesion closes between its last slice and
    the cap, at most half a slice beyond (the voxel extent). Index ``i`` of the result along an axis is voxel
    ``i / factor - pad`` (:func:`_pads`).
    """
    field = distance - np.float32(offset_mm)
    for axis in range(3):
        if factors[axis] > 1:
            field = _interpolate(_capped(field, axis, spacing[axis]), axis, factors[axis])
    # A sample exactly at the level gives marching cubes coincident vertices that close apart: off it, outside.
    return np.ascontiguousarray(np.where(field == 0, _OFF_LEVEL_MM, field), dtype=np.float32)


def _pads(spacing, factors, margin_mm: float) -> np.ndarray:
    """Slices added at each end of each axis: a cap slice along a cut axis; along the others voxels of
    background, one to close the lesion and more to hold its outline moved out by up to ``margin_mm``."""
    return np.array([1 if factor > 1 else 1 + int(np.ceil(margin_mm / s)) for s, factor in zip(spacing, factors)])


def _capped(field: np.ndarray, axis: int, thickness: float) -> np.ndarray:
    """``field`` with a cap slice (:func:`_cap`) at each end of ``axis``."""
    first, last = (_cap(np.take(field, [end], axis=axis), thickness) for end in (0, -1))
    return np.concatenate([first, field, last], axis=axis)


def _cap(edge: np.ndarray, thickness: float) -> np.ndarray:
    """The cap beyond slice ``edge``: ``max(|d|, bevel)``, the bevel the slice thickness or, for a lesion
    thinner than that in the slice, its deepest point: a point at depth |d| closes ``|d| / (|d| + bevel)``
    of a slice beyond, half a slice (the voxel extent) from a depth of ``bevel`` on."""
    bevel = min(thickness, max(float(-edge.min()), 0.0))
    return np.maximum(np.abs(edge), bevel)


def _interpolate(field: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """Linear interpolation along ``axis`` onto ``factor`` steps a voxel (the slices themselves kept)."""
    moved = np.moveaxis(field, axis, 0)
    weight = (np.arange(factor, dtype=np.float32) / factor).reshape(-1, *[1] * (moved.ndim - 1))
    steps = (1 - weight)[None] * moved[:-1, None] + weight[None] * moved[1:, None]
    fine = np.concatenate([steps.reshape(-1, *moved.shape[1:]), moved[-1:]])
    return np.moveaxis(fine, 0, axis)


def _shell(component: np.ndarray, offset: np.ndarray, affine: np.ndarray, factors, smooth: bool):
    import trimesh

    factors = np.asarray(factors, dtype=int)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    bound_mm = 0.5 * spacing.max()
    distance = _slice_distance(component, spacing, factors, bound_mm)
    origin = offset - _pads(spacing, factors, bound_mm)  # the voxel index of the field's first sample
    surface = functools.partial(_surface, distance, spacing, factors, origin, affine)
    mask_mm3 = component.sum() * abs(np.linalg.det(affine[:3, :3]))
    mesh = _volume_kept(surface, mask_mm3, bound_mm)
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, **TAUBIN)
    if mesh.volume < 0:  # the affine mirrored the winding (negative determinant)
        mesh.invert()
    return mesh


def _surface(distance, spacing, factors, origin, affine, offset_mm: float):
    """Marching cubes (scikit-image) at 0 of the interpolated distance with its outlines moved out by
    ``offset_mm``, every vertex through the full affine (``origin``: the voxel index of the first sample)."""
    import trimesh
    from skimage.measure import marching_cubes

    field = _interpolated(distance, spacing, factors, offset_mm)
    verts, faces, _, _ = marching_cubes(field, level=0.0, spacing=tuple(1.0 / factors))
    return trimesh.Trimesh(voxel_to_ras(verts + origin, affine), faces, process=True)


def _volume_kept(surface, mask_mm3: float, bound_mm: float):
    """The surface whose outlines are moved out (at most ``bound_mm``) until it encloses the voxels' volume.

    Interpolating outlines linearly between slices cuts the chords of a convex lesion's profile, and its caps
    close inside the last slices' extent: at offset 0 the surface encloses a few percent less than the voxels.
    Newton steps on the offset (the volume grows by about the surface area per mm) give that back.
    """
    offset = 0.0
    mesh = surface(offset)
    mesh.metadata["outline_offset_mm"] = offset
    for _ in range(_OFFSET_STEPS):
        error = mask_mm3 - abs(mesh.volume)
        if abs(error) <= _OFFSET_TOLERANCE * mask_mm3 or mesh.area == 0:
            break
        offset = float(np.clip(offset + error / mesh.area, -bound_mm, bound_mm))
        moved = surface(offset)
        if not moved.is_watertight:
            break
        mesh = moved
        mesh.metadata["outline_offset_mm"] = offset  # for whoever measures it
    return mesh


def _check(mesh, component: np.ndarray, offset: np.ndarray, affine: np.ndarray, label: int) -> ShellCheck:
    from scipy.spatial import cKDTree

    mask_ml = component.sum() * abs(np.linalg.det(affine[:3, :3])) / 1000.0
    centroid = voxel_to_ras(np.argwhere(component).mean(axis=0, keepdims=True) + offset, affine)[0]
    boundary = voxel_to_ras(surface_points(component) + offset, affine)
    distance, _ = cKDTree(boundary).query(mesh.vertices)
    shells = mesh.split(only_watertight=False)
    mesh_centroid = mesh.center_mass if mesh.is_watertight else mesh.vertices.mean(axis=0)
    return ShellCheck(label=label, shells=len(shells), watertight=bool(mesh.is_watertight),
                      outward=bool(mesh.is_winding_consistent and mesh.volume > 0 and
                                   all(s.volume > 0 for s in shells)),
                      mesh_ml=float(mesh.volume) / 1000.0, mask_ml=float(mask_ml),
                      centroid_error_mm=float(np.linalg.norm(mesh_centroid - centroid)),
                      max_boundary_distance_mm=float(distance.max()),
                      voxel_diagonal_mm=float(np.linalg.norm(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))))


def check_or_raise(tumour: TumourMesh) -> list[str]:
    """Raise GeometryError where a shell is open, inside out or off the mask; return other failures
    (volume, centroid: an irregular lesion may legitimately smooth a few percent away) as warnings."""
    warnings = []
    for check in tumour.checks:
        failures = check.failures
        placement = [f for f in failures if not f.startswith(("volume", "centroid"))]
        if placement:
            raise GeometryError(f"Mesh of lesion {check.label} failed its check: {'; '.join(placement)}")
        warnings += [f"mesh of lesion {check.label}: {f}" for f in failures]
    return warnings


def write_tumour_mesh(mask: Volume, folder) -> tuple[list[Path], dict]:
    """Build, check and write the mesh of ``mask``; the files and report.json's ``mesh`` section."""
    tumour = build_mesh(mask)
    warnings = check_or_raise(tumour)
    return write_mesh(tumour, folder), {**tumour.to_json(), "warnings": warnings}


def write_mesh(tumour: TumourMesh, folder) -> list[Path]:
    """Write tumour.stl, tumour.obj (LPS mm, tagged) and tumour.gii (RAS mm) into ``folder``."""
    folder = Path(folder)
    vertices, faces, groups = _merged(tumour.meshes)
    lps = vertices * np.array([-1.0, -1.0, 1.0])  # a rotation by 180 degrees about S: the winding stays
    return [_write_stl(folder / STL_FILE, lps, faces), _write_obj(folder / OBJ_FILE, lps, faces, groups),
            _write_gifti(folder / GIFTI_FILE, vertices, faces)]


def _merged(meshes):
    vertices, faces, groups, base = [], [], [], 0
    for mesh in meshes:
        vertices.append(np.asarray(mesh.vertices, dtype=float))
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + base)
        groups.append(len(mesh.faces))
        base += len(mesh.vertices)
    if not meshes:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), []
    return np.concatenate(vertices), np.concatenate(faces), groups


def _write_stl(path: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Binary STL. The 80-byte header carries SPACE=LPS, which 3D Slicer finds anywhere in the header (a
    substring search of what vtkSTLReader returns), so it need not follow 'solid'. It does not begin with
    'solid': readers that sniff that prefix (common in small tools) would take the file for ASCII STL; VTK
    (by content) and trimesh (by file size) read it as binary either way. See the README."""
    triangles = vertices[faces].astype(np.float32)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    record = np.zeros(len(faces), dtype=[("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    record["normal"], record["v"] = normals, triangles
    header = f"neuroseg tumour surface, mm. {SPACE_TAG}".encode("ascii").ljust(80, b" ")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as out:
            out.write(header + struct.pack("<I", len(faces)) + record.tobytes())
    return path


def _write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray, groups) -> Path:
    lines = [f"# neuroseg tumour surface, mm. {SPACE_TAG}", "# one object per lesion, largest first"]
    lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in vertices]
    start = 0
    for n, count in enumerate(groups):
        lines.append(f"o lesion_{n + 1}")
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces[start:start + count]]
        start += count
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _write_gifti(path: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """GIfTI surface in scanner RAS+ mm (NiiVue and the neuroimaging tools' convention)."""
    import nibabel as nib
    from nibabel.gifti import GiftiCoordSystem, GiftiDataArray, GiftiImage

    scanner = nib.nifti1.xform_codes.code["scanner"]
    points = GiftiDataArray(vertices.astype(np.float32), intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32",
                            coordsys=GiftiCoordSystem(scanner, scanner, np.eye(4)))
    triangles = GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE", datatype="NIFTI_TYPE_INT32")
    image = GiftiImage(darrays=[points, triangles])
    image.meta["Description"] = "neuroseg tumour surface, scanner RAS+ mm"
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path


LESIONS_FILE = "lesions.json"


def load_mask(path) -> Volume:
    """A mask file (NIfTI): 0 is background, any other whole number tumour; other values are refused."""
    from neuroseg.errors import InputError
    from neuroseg.io.nifti import load_nifti

    volume = load_nifti(path)
    values = volume.array
    if np.any(values != np.round(values)) or np.any(values < 0):
        raise InputError(f"{path}: not a mask (holds values other than whole numbers >= 0; a probability "
                         f"map must be thresholded first)")
    return volume.with_array((values > 0).astype(np.uint8))


def mesh_mask_file(path, folder, force: bool = False):
    """``neuroseg mesh``: the mesh files and lesions.json (measurements and mesh checks) of a mask file.

    Returns the files written, the measurements and the warnings.
    """
    import json

    from neuroseg.export.files import prepare_output_dir
    from neuroseg.io.atomic import all_or_nothing, atomic_write_text
    from neuroseg.measure import measure_lesions

    require_mesh_extra()
    mask = load_mask(path)
    folder = prepare_output_dir(folder, [*MESH_FILES, LESIONS_FILE], force)
    measurements = measure_lesions(mask)
    with all_or_nothing():
        written, section = write_tumour_mesh(mask, folder)
        report = {"mask": str(path), "lesions": measurements.to_json(), "mesh": section}
        written.append(atomic_write_text(folder / LESIONS_FILE, json.dumps(report, indent=2) + "\n"))
    return written, measurements, section["warnings"]
