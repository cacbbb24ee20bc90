//! `vesselkit info`: what a file holds, without decoding its pixels where the format allows.

use std::path::Path;
use vesselkit_io::{FileFormat, Metadata, ReadOptions, read_dicom_metadata, sniff};

/// Metadata of one file; DICOM pixel data is not decoded.
pub fn metadata(path: &Path, opts: &ReadOptions) -> Result<Metadata, vesselkit_io::IoError> {
    match sniff(path)? {
        FileFormat::Dicom => read_dicom_metadata(path, opts),
        _ => Ok(vesselkit_io::read(path, opts)?.metadata),
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), |x| x.to_string())
}

/// Human-readable block for one file.
pub fn describe(m: &Metadata) -> String {
    let mut s = format!("{}\n", m.path);
    let kind = match (&m.format, &m.sop_class_name) {
        (FileFormat::Dicom, Some(n)) => format!("DICOM, {n}"),
        (f, _) => format!("{f:?}").to_uppercase(),
    };
    s += &format!("  format        {kind}\n");
    s += &format!("  modality      {}\n", opt(&m.modality));
    s += &format!(
        "  size          {} rows x {} cols, {} frame{}, {} bits stored of {}, {}\n",
        m.rows,
        m.cols,
        m.frames,
        if m.frames == 1 { "" } else { "s" },
        m.bits_stored,
        m.bits_allocated,
        m.photometric_interpretation.as_deref().unwrap_or("-")
    );
    if let (Some(name), Some(uid)) = (&m.transfer_syntax_name, &m.transfer_syntax_uid) {
        s += &format!("  transfer      {name} ({uid})\n");
    }
    let timing = match (m.frame_times_ms.len(), &m.frame_time_source) {
        (0, _) => "-".to_string(),
        (1, _) => "single frame".to_string(),
        (n, src) => {
            let span = m.frame_times_ms[n - 1] - m.frame_times_ms[0];
            format!(
                "{:.2} ms per frame on average, {:.0} ms in all ({})",
                span / (n - 1) as f64,
                span,
                opt(src)
            )
        }
    };
    s += &format!("  frame time    {timing}\n");
    if m.positioner_primary_angle_deg.is_some() || m.positioner_secondary_angle_deg.is_some() {
        s += &format!(
            "  positioner    primary {} deg, secondary {} deg\n",
            opt(&m.positioner_primary_angle_deg),
            opt(&m.positioner_secondary_angle_deg)
        );
    }
    let c = &m.calibration;
    let value = if c.is_calibrated() {
        format!("{:.4} mm/px", c.mm_per_px)
    } else {
        "none (values in px)".into()
    };
    s += &format!("  calibration   {value}, source {}", c.source);
    if let Some(d) = &c.detail {
        s += &format!(" ({d})");
    }
    s.push('\n');
    if let Some(o) = &m.oct {
        s += &format!(
            "  oct           {} frames, A-line spacing {} mm, z offset {} px, refractive index {}\n",
            if o.polar { "polar" } else { "cartesian" },
            opt(&o.a_line_spacing_mm),
            o.z_offset_px,
            opt(&o.refractive_index)
        );
    }
    for w in &m.warnings {
        s += &format!("  warning       {w}\n");
    }
    s
}
