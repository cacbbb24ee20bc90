//! `vesselkit demo`: a pulmonary phantom cine through the whole chain, written to files.

use crate::CliError;
use indicatif::ProgressBar;
use std::path::Path;
use std::time::Duration;
use vesselkit_phantom as ph;

pub fn run(out: &Path, seed: u64) -> Result<(), CliError> {
    std::fs::create_dir_all(out).map_err(|e| CliError(format!("{}: {e}", out.display())))?;
    let spin = ProgressBar::new_spinner();
    spin.enable_steady_tick(Duration::from_millis(120));

    spin.set_message("generating a pulmonary phantom cine");
    let files = crate::phantom::run(crate::phantom::Kind::Cine, seed, None, out)?;
    let dcm = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .ok_or_else(|| CliError("the phantom wrote no DICOM file".into()))?
        .clone();

    spin.set_message(format!("analysing {}", dcm.display()));
    let read = vesselkit_io::ReadOptions::default();
    let (a, cine) = crate::analyze::analyze_file(&dcm, &read, &vesselkit::Options::default(), None)?;
    let outputs = crate::analyze::Outputs {
        json: Some(out.join("report.json")),
        csv: Some(out.join("lesions.csv")),
        overlay: Some(out.join("overlay.png")),
        sr: Some(out.join("report_sr.dcm")),
    };
    crate::analyze::write_outputs(&a, &cine, &outputs)?;
    spin.finish_and_clear();

    println!("{}", crate::analyze::table(&a.report));
    // What the phantom really holds, to compare with the table above.
    let truth_path = out.join("cine_truth.json");
    if let Ok(text) = std::fs::read_to_string(&truth_path)
        && let Ok(truth) = serde_json::from_str::<ph::CineTruth>(&text)
    {
        println!("phantom truth ({} lesions):", truth.geometry.lesions.len());
        for l in &truth.geometry.lesions {
            println!(
                "  {:<10} at ({:>6.1}, {:>6.1})  MLD {:.2} mm, reference {:.2} mm, length {:.1} mm",
                l.lesion_type.as_str(),
                l.site.row,
                l.site.col,
                l.mld_mm,
                l.reference_diameter_mm,
                l.length_mm
            );
        }
    }
    println!("\nwritten to {}:", out.display());
    for f in [
        "cine.dcm",
        "cine_truth.json",
        "report.json",
        "lesions.csv",
        "overlay.png",
        "report_sr.dcm",
    ] {
        println!("  {}", out.join(f).display());
    }
    Ok(())
}
