"""The tumour as closed surface meshes in scanner mm: tumour.stl and tumour.obj (LPS), tumour.gii (RAS).

How a shell is made, for each lesion (26-connected component, numbered as in :mod:`neuroseg.measure`):

1. the lesion is cropped with two voxels of background all round (one so that a tumour touching the image
   border still closes, one more to hold the blur of step 2);
2. the lesion becomes a 0..1 occupancy field; where the voxels are anisotropic (5 mm slices) each coarse
   voxel is cut into sub-voxels (until the step is at most the finest spacing times 1.5) and the field is
   blurred along those axes only (a Gaussian of a third of a voxel), so the level 0.5 runs through the
   middle of each step between slices instead of along its edges;
3. marching cubes (scikit-image) at level 0.5 in voxel coordinates, then every vertex through the full
   affine, origin included: (i, j, k, 1) -> scanner RAS mm;
4. Taubin smoothing (a low-pass filter that does not shrink the surface, unlike plain Laplacian);
5. faces turned so that normals point outward (an affine with a negative determinant, e.g. LAS, mirrors
   the winding).

Each shell is then checked (:class:`ShellCheck`): watertight, consistently wound and outward, its volume
within 3 % of the lesion's voxels for lesions of 1 mL or more, its centroid within 0.5 mm of theirs, and
every vertex within one voxel diagonal of the voxel surface. Needs the ``mesh`` extra.
"""

from __future__ import annotations

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
_PAD = 2  # voxels of background round a lesion: one closes the surface, one more holds the blur
_BLUR = 1.0 / 3.0  # Gaussian sigma along a supersampled axis, in its voxels


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
                "method": "occupancy (coarse axes cut into sub-voxels and blurred along them), marching cubes at "
                          f"0.5 in voxel space, full affine, Taubin smoothing ({TAUBIN['iterations']} iterations)",
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


def _occupancy(component: np.ndarray, factors) -> np.ndarray:
    """The lesion as a 0..1 field on a grid ``factors`` times finer, padded by ``_PAD`` voxels all round.

    Each voxel becomes ``factor`` sub-voxels along a coarse axis, and only those axes are blurred (a
    Gaussian of a third of the voxel): the level 0.5 then runs through the middle of each step between
    slices instead of along its edges, so the terraces go and the volume stays.
    """
    from scipy import ndimage

    field = np.pad(component, _PAD).astype(np.float32)
    for axis, factor in enumerate(factors):
        if factor > 1:
            field = np.repeat(field, factor, axis=axis)
            field = ndimage.gaussian_filter1d(field, sigma=factor * _BLUR, axis=axis, mode="constant")
    return field


def _shell(component: np.ndarray, offset: np.ndarray, affine: np.ndarray, factors, smooth: bool):
    import trimesh
    from skimage.measure import marching_cubes

    factors = np.asarray(factors, dtype=float)
    verts, faces, _, _ = marching_cubes(_occupancy(component, factors.astype(int)), level=0.5,
                                        spacing=tuple(1.0 / factors))
    index = verts + (0.5 / factors - 0.5) - _PAD + offset  # sub-voxel centres back to the whole grid's voxels
    mesh = trimesh.Trimesh(voxel_to_ras(index, affine), faces, process=True)
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, **TAUBIN)
    if mesh.volume < 0:  # the affine mirrored the winding (negative determinant)
        mesh.invert()
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
