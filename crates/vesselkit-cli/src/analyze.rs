//! `vesselkit analyze` and the summary table it prints.

use crate::CliError;
use std::path::{Path, PathBuf};
use vesselkit::{Analysis, Options, Report};

/// Where each output of one analysis goes.
#[derive(Default, Clone)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub overlay: Option<PathBuf>,
    pub sr: Option<PathBuf>,
}

/// Read and analyse one input; the report carries the input's path and modality.
pub fn analyze_file(
    path: &Path,
    read: &vesselkit_io::ReadOptions,
    opts: &Options,
    catheter: Option<&vesselkit::CatheterMark>,
) -> Result<(Analysis, vesselkit_core::Cine), CliError> {
    let mut loaded = vesselkit_io::read(path, read).map_err(|e| CliError(e.to_string()))?;
    if let Some(mark) = catheter {
        loaded.cine.calibration = vesselkit::catheter_calibration(loaded.cine.frames.view(), mark)
            .map_err(|e| CliError(format!("{}: --catheter: {e}", path.display())))?;
    }
    let mut a = vesselkit::analyze(&loaded.cine, opts).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    a.report.input.path = Some(path.display().to_string());
    a.report.input.modality = loaded.metadata.modality.clone();
    Ok((a, loaded.cine))
}

/// Write the requested files for one analysis.
pub fn write_outputs(a: &Analysis, cine: &vesselkit_core::Cine, out: &Outputs) -> Result<(), CliError> {
    if let Some(p) = &out.json
        && p.as_os_str() != "-"
    {
        std::fs::write(p, a.report.to_json()).map_err(|e| CliError(format!("{}: {e}", p.display())))?;
    }
    if let Some(p) = &out.csv {
        std::fs::write(p, vesselkit::report::csv::lesions_csv(&a.report))
            .map_err(|e| CliError(format!("{}: {e}", p.display())))?;
    }
    if let Some(p) = &out.overlay {
        let frame = cine
            .frame(a.frame_used)
            .ok_or_else(|| CliError("analysed frame is missing".into()))?;
        vesselkit::report::overlay::write_png(p, frame, &a.report).map_err(|e| CliError(e.to_string()))?;
    }
    if let Some(p) = &out.sr {
        vesselkit::report::sr::write(p, &a.report).map_err(|e| CliError(e.to_string()))?;
    }
    Ok(())
}

/// `dir/stem_<input stem>.ext` when several inputs share one output name.
pub fn per_input(path: &Option<PathBuf>, input: &Path, many: bool) -> Option<PathBuf> {
    let p = path.as_ref()?;
    if !many || p.as_os_str() == "-" {
        return Some(p.clone());
    }
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let ext = p
        .extension()
        .map(|s| format!(".{}", s.to_string_lossy()))
        .unwrap_or_default();
    let inp = input
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "input".into());
    Some(p.with_file_name(format!("{stem}_{inp}{ext}")))
}

/// A short human-readable summary: vessels, then the ranked lesions.
pub fn table(r: &Report) -> String {
    let u = if r.calibration.is_calibrated() { "mm" } else { "px" };
    let mut s = String::new();
    s += &format!(
        "{}: {} x {} px, {} frame(s), analysed frame {}, scale {} ({})\n",
        r.input.path.as_deref().unwrap_or("input"),
        r.input.rows,
        r.input.cols,
        r.input.frames,
        r.input.frame_used.map_or("-".into(), |f| f.to_string()),
        if r.calibration.is_calibrated() {
            format!("{:.4} mm/px", r.calibration.mm_per_px)
        } else {
            "none".into()
        },
        r.calibration.source
    );
    let total: f64 = r.vessels.iter().map(|v| v.length_mm).sum();
    s += &format!(
        "vessels: {} branches, {:.1} {u} of centerline\n",
        r.vessels.len(),
        total
    );
    if r.lesions.is_empty() {
        s += "lesions: none found\n";
    } else {
        s += &format!(
            "{:>4} {:>3} {:<10} {:>5} {:>7} {:>7} {:>6} {:>7}  {:<14} {}\n",
            "prio",
            "id",
            "type",
            "conf",
            &format!("MLD {u}"),
            &format!("Ref {u}"),
            "%DS",
            &format!("len {u}"),
            "balloon",
            "reason"
        );
        let mut ls: Vec<_> = r.lesions.iter().collect();
        ls.sort_by_key(|l| (l.priority, l.id));
        for l in ls {
            let b: Vec<String> = l.balloon_mm.iter().map(|x| format!("{x:.1}")).collect();
            s += &format!(
                "{:>4} {:>3} {:<10} {:>5.2} {:>7.2} {:>7.2} {:>6.1} {:>7.1}  {:<14} {}\n",
                l.priority,
                l.id,
                format!("{} ({})", l.lesion_type.as_str(), l.kawakami),
                l.confidence,
                l.mld_mm,
                l.reference_diameter_mm,
                l.diameter_stenosis_pct,
                l.length_mm,
                b.join(" -> "),
                l.reason
            );
        }
    }
    for sess in &r.plan.sessions {
        s += &format!("session {}: lesions {:?} {}\n", sess.index, sess.lesions, sess.note);
    }
    if r.plan.sessions.is_empty() && !r.lesions.is_empty() {
        // Say why there is no plan (e.g. no physical scale).
        if let Some(n) = r.plan.notes.first() {
            s += &format!("plan: {n}\n");
        }
    }
    for w in &r.warnings {
        s += &format!("warning: {w}\n");
    }
    s += &format!("{}\n", r.notice);
    s
}
