"""Measurements of a tumour mask in scanner millimetres: per lesion and in total.

A layer between inference and export: it reads a mask ``Volume`` and returns plain dataclasses,
shared by the report, the mesh writer and the longitudinal comparison. It may import io,
transforms and volume, never export, batch, net or cli.
"""

from neuroseg.measure.lesions import (
    CONNECTIVITY,
    Bidimensional,
    Lesion,
    LesionMeasurements,
    axial_axis,
    lesion_labels,
    measure_lesions,
    surface_points,
    tumour_voxels,
    voxel_to_ras,
)

__all__ = ["CONNECTIVITY", "Bidimensional", "Lesion", "LesionMeasurements", "axial_axis",
           "lesion_labels", "measure_lesions", "surface_points", "tumour_voxels", "voxel_to_ras"]
