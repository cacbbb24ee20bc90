//! Plain-text rendering of [`EvalReport`]: one table, "not available" where a stage is missing.

use crate::metrics::Stat;
use crate::runner::{AngioScores, EvalReport, OctScores, RealSplit};
use std::fmt::{self, Display, Formatter, Write};
use vesselkit_core::LesionType;

const NA: &str = "not available";

fn stat(s: &Option<Stat>, unit: &str, digits: usize) -> String {
    match s {
        Some(s) => format!("{:+.*} ± {:.*}{unit} (n={})", digits, s.mean, digits, s.sd, s.n),
        None => NA.into(),
    }
}

/// Signed mean ± SD and the mean absolute value (for relative errors with a tolerance).
fn stat_abs(s: &Option<Stat>, unit: &str, digits: usize) -> String {
    match s {
        Some(s) => format!(
            "{:+.*} ± {:.*}{unit}, mean |e| {:.*}{unit} (n={})",
            digits, s.mean, digits, s.sd, digits, s.mae, s.n
        ),
        None => NA.into(),
    }
}

fn mean(s: &Option<Stat>, digits: usize) -> String {
    match s {
        Some(s) => format!("{:.*} ± {:.*} (n={})", digits, s.mean, digits, s.sd, s.n),
        None => NA.into(),
    }
}

fn frac(v: Option<f64>) -> String {
    v.map_or(NA.into(), |v| format!("{v:.3}"))
}

fn row(out: &mut String, name: &str, value: impl Display) {
    let _ = writeln!(out, "  {name:<34} {value}");
}

fn angio_section(out: &mut String, title: &str, a: &AngioScores) {
    let _ = writeln!(out, "{title} ({} cases, {} failed)", a.cases, a.failures);
    if let Some(e) = &a.first_error {
        row(out, "first error", e);
    }
    row(out, "vessel Dice", mean(&a.dice, 3));
    row(out, "vessel clDice", mean(&a.cl_dice, 3));
    if a.diameter.is_empty() {
        row(out, "diameter error", NA);
    } else {
        let mut prev_hi = 0.0;
        for b in &a.diameter {
            // A band starting below the previous one's end is a summary over several bands.
            let summary = b.lo_mm < prev_hi;
            prev_hi = b.hi_mm;
            let band = if summary {
                format!("diameter error {:.1}-{:.1} mm, all", b.lo_mm, b.hi_mm)
            } else if b.hi_mm.is_finite() {
                format!("diameter error {:.1}-{:.1} mm", b.lo_mm, b.hi_mm)
            } else {
                format!("diameter error >= {:.1} mm", b.lo_mm)
            };
            row(out, &band, stat(&b.error, " mm", 3));
        }
        row(out, "centerline coverage", frac(a.centerline_coverage));
        if a.diluted_diameter_error_mm.is_some() {
            row(
                out,
                "diameter error, diluted contrast",
                stat(&a.diluted_diameter_error_mm, " mm", 3),
            );
        }
    }
    let l = &a.lesions;
    if l.cases == 0 {
        row(out, "lesions", NA);
    } else {
        row(
            out,
            "lesion sensitivity",
            format!("{} ({}/{})", frac(l.sensitivity), l.matched, l.true_lesions),
        );
        let clear = l.true_lesions - l.overlapped_lesions;
        let clear_matched = l.matched - l.overlapped_matched;
        let share = |a: usize, n: usize| frac((n > 0).then(|| a as f64 / n as f64));
        row(
            out,
            "  approach in clear view",
            format!("{} ({clear_matched}/{clear})", share(clear_matched, clear)),
        );
        row(
            out,
            "  approach inside another vessel",
            format!(
                "{} ({}/{})",
                share(l.overlapped_matched, l.overlapped_lesions),
                l.overlapped_matched,
                l.overlapped_lesions
            ),
        );
        row(
            out,
            "lesion PPV",
            format!("{} ({}/{})", frac(l.ppv), l.matched, l.detections),
        );
        row(out, "MLD error", stat(&l.mld_error_mm, " mm", 3));
        row(out, "MLD error, ring and web", stat(&l.mld_error_focal_mm, " mm", 3));
        row(out, "MLD error, typed as truth", stat(&l.mld_error_typed_mm, " mm", 3));
        row(out, "%DS error", stat(&l.ds_error_pct, " %", 1));
        row(out, "type accuracy", frac(l.type_accuracy));
        for (t, r) in &l.recall_by_type {
            row(out, &format!("recall {t}"), frac(*r));
        }
        let _ = writeln!(
            out,
            "  confusion (rows true, cols predicted: ring web subtotal occlusion tortuous)"
        );
        for (i, t) in LesionType::ALL.iter().enumerate() {
            let cells: Vec<String> = l.confusion.counts[i].iter().map(|c| format!("{c:>5}")).collect();
            let _ = writeln!(out, "    {:<10}{}", t.as_str(), cells.join(""));
        }
        row(out, "rank Kendall tau (matched)", mean(&l.kendall_tau, 3));
        let cnt = |v: Option<(usize, usize)>| v.map_or(NA.into(), |(a, b)| format!("{a}/{b} cases"));
        row(out, "obeys rec. 9 (true types)", cnt(l.rec9_true_types));
        row(out, "obeys rec. 9 (own types)", cnt(l.rec9_predicted_types));
    }
    row(out, "ms per frame", mean(&a.ms_per_frame, 1));
}

fn oct_section(out: &mut String, o: &OctScores) {
    let _ = writeln!(out, "OCT phantoms ({} frames, {} failed)", o.frames, o.failures);
    if let Some(e) = &o.first_error {
        row(out, "first error", e);
    }
    row(out, "lumen Dice", mean(&o.lumen_dice, 3));
    row(out, "lumen area error", stat(&o.area_error_mm2, " mm²", 3));
    row(out, "lumen area error, relative", stat_abs(&o.area_error_pct, " %", 2));
    row(out, "  frames of 2+ channels", stat_abs(&o.web_area_error_pct, " %", 2));
    row(out, "channel count accuracy", frac(o.channel_accuracy));
    row(out, "  frames of 2+ channels", frac(o.web_channel_accuracy));
    row(out, "pullback area error", stat(&o.pullback_area_error_mm2, " mm²", 3));
    row(
        out,
        "pullback area error, relative",
        stat_abs(&o.pullback_area_error_pct, " %", 2),
    );
    row(
        out,
        "pullback MLA position error",
        mean(&o.pullback_mla_position_error_mm, 2),
    );
    row(out, "ms per frame", mean(&o.ms_per_frame, 1));
}

fn real_split(out: &mut String, title: &str, s: &RealSplit) {
    let _ = writeln!(out, "{title} {} ({} images, {} failed)", s.name, s.cases, s.failures);
    if let Some(e) = &s.first_error {
        row(out, "first error", e);
    }
    row(out, "Dice", mean(&s.dice, 3));
    if title.starts_with("real angio") {
        row(out, "clDice", mean(&s.cl_dice, 3));
    }
    row(out, "ms per frame", mean(&s.ms_per_frame, 1));
}

impl Display for EvalReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(out, "vesselkit evaluation: pipeline `{}`", self.pipeline);
        if let Some(c) = &self.config {
            let _ = writeln!(
                out,
                "phantoms from seed {}: {} angio, {} cine, {} OCT, {} pullback; lesion match <= {} mm",
                c.seed, c.cases, c.cine_cases, c.oct_cases, c.pullback_cases, c.lesion_tolerance_mm
            );
        }
        if let Some(a) = &self.angio {
            angio_section(&mut out, "angiography phantoms", a);
        }
        if let Some(a) = &self.cine {
            angio_section(&mut out, "cine phantoms", a);
        }
        if let Some(o) = &self.oct {
            oct_section(&mut out, o);
        }
        if let Some(r) = &self.real {
            for s in &r.angio {
                real_split(&mut out, "real angio", s);
            }
            if let Some(s) = &r.oct {
                real_split(&mut out, "real OCT", s);
            }
        }
        let _ = writeln!(out, "{}", self.notice);
        f.write_str(&out)
    }
}
