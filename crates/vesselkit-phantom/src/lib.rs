//! Synthetic angiograms, cine runs and OCT pullbacks with ground truth
