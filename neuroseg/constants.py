"""Constants shared across modules."""

# Working orientation: the training tifs' own (axis codes of nibabel, the direction
# each array axis increases toward). Slices are axial; displayed as array.T they show
# anterior at the top and the patient's right on the image's left (radiological view).
WORKING_AXCODES = ("L", "P", "S")

# Inputs larger than this many voxels are refused before their data is read.
MAX_VOXELS = 1024 * 1024 * 1024
MAX_DIM = 4096

# Intensities after normalisation are clipped to this range.
NORMALISED_RANGE = (0.0, 2.5)
