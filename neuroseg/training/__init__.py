"""Training and evaluation of the slice classifier and the ResUNet segmenter."""
