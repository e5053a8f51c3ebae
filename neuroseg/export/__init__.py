"""Writers: NIfTI mask and probabilities, JSON report, QC picture (DICOM-SEG in dicom_seg)."""
