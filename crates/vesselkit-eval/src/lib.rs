//! Quality metrics and the evaluation runner
