//! Readers (DICOM XA/XRF/IVOCT, PNG, TIFF, NPY) and report writers
