"""Thresholds of the input checks and the ranges the model was validated on, in one place.

The training tifs record no voxel spacing (their 1 mm is nominal), so the validated ranges come
from the real scans the project has run and checked: the clinical FLAIR of TCGA-FG-6692 (0.9 mm,
5.5 mm slices, 208x256x26), the BraTS FLAIR (1 mm isotropic, skull-stripped), the 88 lgg-flair
FLAIRs (256x256, 20-88 slices), the kaggle_3m tifs and the Trio MPRAGE (1 mm, 176 sagittal
slices). ``scripts/input_checks_real_scans.py`` measures every check on all of them
(docs/results/input-checks-real-scans.json); docs/MODEL_CARD.md lists how often each was right.
"""

# Coverage (in-plane field of view of the axial working slices, mm)
VALIDATED_FOV = "187-256 mm (checked scans; a head is about 150 x 190 mm)"
WARN_FOV_MM = 160.0  # the smaller in-plane side below this: a cropped or partial field of view
REFUSE_MATRIX = 8  # fewer voxels than this along an in-plane axis: no anatomy to segment
REFUSE_FOV_MM = 20.0  # both in-plane sides below this: far too small to be a head
VALIDATED_CUT = "head cut on two image sides on 0-42 % of middle slices (checked scans; most 0 %)"
WARN_CUT = 0.6  # part of the middle slices whose head outline runs along two or more image sides
VALIDATED_SLICES = "20-256 slices (checked scans)"
WARN_SLICES = 12

# Resolution (mm)
VALIDATED_INPLANE = "0.9-1.0 mm (clinical, BraTS and Trio scans; the training tifs' 1 mm is nominal)"
INPLANE_MM = (0.3, 1.5)  # outside: warn
VALIDATED_THICKNESS = "1-5.5 mm (BraTS 1 mm, clinical FLAIR 5.5 mm)"
THICKNESS_MM = (0.3, 7.0)

# Content
VALIDATED_HEAD_FRACTION = "head covers 20-75 % of the middle slices (checked scans)"
WARN_HEAD_FRACTION = 0.12  # the head covers less of its middle slices: mostly background
VALIDATED_CLIPPED = "under 1 % of head voxels at the maximum (checked scans)"
WARN_CLIPPED = 0.03  # part of the head's voxels at the image's maximum value: a clipped range
VALIDATED_LEVELS = "at least 50 distinct intensities in the head (the 8-bit tifs have about 200)"
WARN_LEVELS = 16
VALIDATED_SPREAD = "head intensities spread 0.5-3 x their median (5th-95th percentile)"
WARN_SPREAD = 0.1  # (p95 - p5) / median of the head below this: a constant or near-empty head
VALIDATED_STRUCTURE = "neighbour correlation 0.77-0.96 (checked scans)"
WARN_STRUCTURE = 0.5  # white noise is near 0
VALIDATED_SKULL = "skull on: 88 lgg-flair + clinical FLAIR; skull-stripped: 1 scan (BraTS)"
SKULL_RING = 0.55  # outer band exact background: BraTS 76 %, every scan with its skull 35 % or less

# Sequence from the image (see sequence.py)
IMAGE_T1_BELOW = 0.85  # real FLAIRs 0.89 and up (92 scans)
IMAGE_T2_ABOVE = 1.40  # real FLAIRs 1.26 and below; the one T2 1.46
