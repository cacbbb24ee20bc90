//! The filter maps a learned mask takes besides the frame (see `vesselkit_angio::unet`), for
//! every DCA1 image, so that `scripts/train_unet.py --features DIR` trains on exactly what
//! `segment` feeds the model.
//!
//! `cargo run --release -p vesselkit-angio --example dca1_features -- OUT_DIR [DATA_DIR]` writes
//! `OUT_DIR/{train,test}_N.f32`: the normalised vesselness then the normalised top-hat contrast
//! of `SegmentOptions::dca1()`, each rows x cols f32 little endian.

use std::path::PathBuf;
use vesselkit_angio::{SegmentOptions, segment, unet::filter_features};

#[path = "../tests/common/dca1_data.rs"]
mod dca1_data;
use dca1_data::load_gray;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: dca1_features OUT_DIR [DATA_DIR]")?);
    let Some(dir) = dca1_data::dir_or_skip(args.next()) else {
        return Ok(());
    };
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    for folder in ["train", "test"] {
        // Images are numbered from 1 without gaps.
        for n in 1.. {
            let img_path = dir.join(folder).join(format!("{n}.png"));
            if !img_path.exists() {
                break;
            }
            let img = load_gray(&img_path)?;
            let seg = segment(img.view(), &SegmentOptions::dca1()).map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            for plane in filter_features(&seg.vesselness, &seg.contrast) {
                bytes.extend(plane.iter().flat_map(|v| v.to_le_bytes()));
            }
            std::fs::write(out.join(format!("{folder}_{n}.f32")), bytes).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
