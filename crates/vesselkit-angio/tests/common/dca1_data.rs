//! The DCA1 coronary angiogram subset in `../shared/data`, shared by the DCA1 test and examples.

use ndarray::Array2;
use std::path::{Path, PathBuf};

/// `xca-dca1-subset` beside the workspace (`None` when absent: callers skip).
pub fn default_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/xca-dca1-subset");
    dir.exists().then_some(dir)
}

/// The data folder given on the command line, else [`default_dir`]; `None` (after saying so)
/// when it does not exist, for examples that then skip.
#[allow(dead_code)]
pub fn dir_or_skip(arg: Option<String>) -> Option<PathBuf> {
    let dir = arg.map(PathBuf::from).or_else(default_dir).unwrap_or_default();
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("skipping: DCA1 data not found (pass DATA_DIR)");
        None
    }
}

/// An 8-bit image (or mask) as grey levels 0-255.
pub fn load_gray(p: &Path) -> Result<Array2<f32>, String> {
    let img = image::open(p).map_err(|e| format!("{}: {e}", p.display()))?.to_luma8();
    let (w, h) = img.dimensions();
    Ok(Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
        img.get_pixel(c as u32, r as u32)[0] as f32
    }))
}
