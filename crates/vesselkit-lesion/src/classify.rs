//! Kawakami type rules (domain.md rule 6), checked in the order D → C → E → B → A.
//!
//! Edges under-read a near-occlusion whose lumen is below the resolution [Q10], so C also
//! fires on a narrowing (≥ `poor_filling_min_ds_pct`) with *poor distal filling in the image*:
//! contrast per mm of diameter beyond it below `poor_filling_max_ratio` of that before it.
//! With flow grade 1-2 this takes base confidence 0.75; without cine, the margin below the
//! ratio threshold times `no_cine_confidence`. A cut-off with a faint vessel along its
//! continuation (see `detection.beyond_end_min_ratio`, in a cine `cine_beyond_end_min_ratio`) has distal vessel visible: C, not D.
//!
//! **Confidence.** Each rule that fires gives a base confidence from the margin of the deciding
//! measurement past its threshold: `0.5` exactly at the threshold rising linearly to `1.0` one
//! "scale" beyond it (the scales are stated per rule below). Rules decided by two independent
//! signs that agree (cut-off and flow grade 0) start at 1.0. The base is then multiplied by
//! `classification.no_cine_confidence` when C vs D had to be decided without flow grade, by
//! `classification.fallback_confidence` when no rule fired (base 0.5), and by `0.5 + 0.5 · f` where `f` is
//! the fraction of reliable profile samples in the lesion window.

use crate::model::{Evidence, RuleFired};
use crate::rules::Rules;
use vesselkit_core::{LesionType, Tortuosity};

/// The outcome of the rules for one lesion.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub lesion_type: LesionType,
    pub rule: RuleFired,
    pub text: String,
    pub confidence: f64,
}

/// 0.5 at `x == threshold`, rising linearly to 1 at `threshold + scale`; 0.5 below (the rule
/// fired on another criterion).
fn margin(x: f64, threshold: f64, scale: f64) -> f64 {
    if !(x.is_finite() && scale > 0.0) {
        return 0.5;
    }
    0.5 + 0.5 * ((x - threshold) / scale).clamp(0.0, 1.0)
}

/// Largest DM, bend count and bend over the given tortuosity records.
fn worst_of(records: &[Option<Tortuosity>]) -> (f64, u32, f64) {
    let mut dm = 1.0f64;
    let mut bends = 0u32;
    let mut max_bend = 0.0f64;
    for t in records.iter().flatten() {
        if t.dm.is_finite() {
            dm = dm.max(t.dm);
        }
        bends = bends.max(t.bends);
        if t.max_bend_deg.is_finite() {
            max_bend = max_bend.max(t.max_bend_deg);
        }
    }
    (dm, bends, max_bend)
}

/// The lesion's own tortuosity: the segment beyond it on its branch and the winding around
/// it. The branches further below (`distal_tortuosity`) are left out: a winding sub-branch
/// far downstream does not make the lesion type E (on the phantoms it only turned rings and
/// webs into tortuous lesions: 6 of 6 changes on 200 frames).
fn lesion_tortuosity(ev: &Evidence) -> (f64, u32, f64) {
    worst_of(&[ev.segment_tortuosity, ev.local_tortuosity])
}

/// Whether the segment beyond the lesion meets the E tortuosity criteria (DM or bend count).
pub fn is_tortuous(ev: &Evidence, rules: &Rules) -> bool {
    let c = &rules.classification;
    let (dm, bends, _) = lesion_tortuosity(ev);
    dm > c.tortuous_min_dm || bends >= c.tortuous_min_bends
}

/// Ranking risk flag: the lesion, or any branch below it, meets the E tortuosity criteria
/// (the wire has to pass the windings further down as well).
pub fn tortuous_path(ev: &Evidence, rules: &Rules) -> bool {
    let c = &rules.classification;
    let (dm, bends, _) = worst_of(&[ev.segment_tortuosity, ev.local_tortuosity, ev.distal_tortuosity]);
    dm > c.tortuous_min_dm || bends >= c.tortuous_min_bends
}

/// Applies the type rules to measured evidence.
pub fn classify(ev: &Evidence, rules: &Rules) -> Decision {
    let c = &rules.classification;
    let ds = ev.diameter_stenosis_pct;
    let sub = c.subtotal_min_ds_pct;
    let sub_scale = (100.0 - sub).max(1.0);
    let near_occlusive = ds >= sub;
    let reliability = 0.5 + 0.5 * ev.reliable_fraction.clamp(0.0, 1.0);
    let done = |t: LesionType, rule: RuleFired, text: String, base: f64| Decision {
        lesion_type: t,
        rule,
        text,
        confidence: (base * reliability).clamp(0.0, 1.0),
    };

    // D: occlusion.
    match (ev.cutoff, ev.flow_grade) {
        (true, Some(0)) => {
            return done(
                LesionType::Occlusion,
                RuleFired::DCutoffNoFlow,
                "D: centreline cut-off and no distal filling (flow grade 0)".into(),
                1.0,
            );
        }
        (true, None) if !ev.distal_vessel_visible => {
            return done(
                LesionType::Occlusion,
                RuleFired::DCutoffImageOnly,
                "D: cut-off without distal vessel; flow past it not measured (no cine, or no probe past the \
                 tip), decided from the image"
                    .into(),
                c.no_cine_confidence,
            );
        }
        (false, Some(0)) if near_occlusive => {
            // Scale: the stenosis margin up to 100 %; one sign only, so at most 0.75.
            return done(
                LesionType::Occlusion,
                RuleFired::DNoFlow,
                format!("D: flow grade 0 beyond a {ds:.0}% narrowing (no visible cut-off)"),
                0.75 * margin(ds, sub, sub_scale),
            );
        }
        _ => {}
    }

    // Poor distal filling seen in the image: the vessel beyond the narrowing is much fainter per
    // mm of diameter than before it, so the narrowest lumen is below what edges resolve.
    let poor_fill = !ev.cutoff
        && ds >= c.poor_filling_min_ds_pct
        && ev.distal_opacity_ratio.is_some_and(|r| r < c.poor_filling_max_ratio);

    // C: subtotal.
    match ev.flow_grade {
        Some(g @ 1..=2) if near_occlusive || ev.cutoff => {
            let base = if ev.cutoff { 0.8 } else { margin(ds, sub, sub_scale) };
            return done(
                LesionType::Subtotal,
                RuleFired::CNearOcclusionSlowFlow,
                format!("C: {ds:.0}% narrowing (>= {sub:.0}%) with slow distal filling (flow grade {g})"),
                base,
            );
        }
        Some(g @ 1..=2) if poor_fill => {
            return done(
                LesionType::Subtotal,
                RuleFired::CNearOcclusionSlowFlow,
                format!(
                    "C: {ds:.0}% narrowing with poor distal filling in the image (distal/proximal contrast \
                     per mm {:.2}) and slow distal filling (flow grade {g})",
                    ev.distal_opacity_ratio.unwrap_or(f64::NAN)
                ),
                0.75,
            );
        }
        None if near_occlusive && ev.distal_vessel_visible => {
            let refill = ev
                .cine_refill_ratio
                .filter(|&r| ev.cutoff && r >= rules.detection.cine_refill_min_ratio);
            let how = match refill {
                Some(r) => format!(
                    "the distal vessel refilling over the run ({r:.2} of the stump's contrast, still anatomy \
                     subtracted); flow past the cut-off not timed"
                ),
                None if ev.cutoff => {
                    "visible distal vessel; flow past the cut-off not timed, decided from the image".into()
                }
                None => "visible distal vessel; flow unknown (no cine), decided from the image".into(),
            };
            return done(
                LesionType::Subtotal,
                RuleFired::CNearOcclusionImageOnly,
                format!("C: {ds:.0}% narrowing (>= {sub:.0}%) with {how}"),
                margin(ds, sub, sub_scale) * c.no_cine_confidence,
            );
        }
        _ => {}
    }

    // C from one frame: the vessel beyond the narrowing fills much less than before it.
    if ev.flow_grade.is_none()
        && poor_fill
        && let Some(r) = ev.distal_opacity_ratio
    {
        // Scale: the ratio from the threshold down to half of it.
        return done(
            LesionType::Subtotal,
            RuleFired::CPoorDistalFilling,
            format!(
                "C: {ds:.0}% narrowing with poor distal filling (distal/proximal contrast per mm {r:.2} < {:.2}); \
                 flow unknown (no cine), decided from the image",
                c.poor_filling_max_ratio
            ),
            margin(c.poor_filling_max_ratio - r, 0.0, 0.5 * c.poor_filling_max_ratio) * c.no_cine_confidence,
        );
    }

    // E: tortuous. Scales: DM 0.5 × (threshold − 1) (at least 0.1), 2 bends, 45°.
    let (dm, bends, _) = lesion_tortuosity(ev);
    let angle = ev.lesion_angle_deg.unwrap_or(f64::NAN);
    let mut e_conf: Option<f64> = None;
    let mut e_why = Vec::new();
    if dm > c.tortuous_min_dm {
        e_conf = Some(margin(
            dm,
            c.tortuous_min_dm,
            (0.5 * (c.tortuous_min_dm - 1.0)).max(0.1),
        ));
        e_why.push(format!("distal DM {dm:.2} > {:.2}", c.tortuous_min_dm));
    }
    if bends >= c.tortuous_min_bends {
        let m = margin(bends as f64, c.tortuous_min_bends as f64, 2.0);
        e_conf = Some(e_conf.map_or(m, |x| x.max(m)));
        e_why.push(format!("{bends} bends >= {}", c.tortuous_min_bends));
    }
    if angle >= c.severe_angle_deg {
        let m = margin(angle, c.severe_angle_deg, 45.0);
        e_conf = Some(e_conf.map_or(m, |x| x.max(m)));
        e_why.push(format!("lesion angle {angle:.0}° >= {:.0}°", c.severe_angle_deg));
    }
    if let Some(base) = e_conf {
        return done(
            LesionType::Tortuous,
            RuleFired::ETortuous,
            format!("E: {}", e_why.join(", ")),
            base,
        );
    }

    // B: web. Scales: as many extra samples as the minimum; half the density threshold.
    let n_min = c.web_min_samples as f64;
    if ev.channels_max >= c.web_min_channels as u32 && ev.multichannel_samples >= c.web_min_samples {
        return done(
            LesionType::Web,
            RuleFired::BChannels,
            format!(
                "B: {} lumen channels ({} lucent band(s)) over {} samples",
                ev.channels_max, ev.lucent_bands, ev.multichannel_samples
            ),
            margin(ev.multichannel_samples as f64, n_min, n_min.max(1.0)),
        );
    }
    if let Some(r) = ev.density_ratio_min
        && r < c.web_max_density_ratio
        && ev.low_density_samples >= c.web_min_samples
    {
        return done(
            LesionType::Web,
            RuleFired::BDensity,
            format!(
                "B: densitometric/geometric ratio {r:.2} < {:.2} over {} samples",
                c.web_max_density_ratio, ev.low_density_samples
            ),
            margin(c.web_max_density_ratio - r, 0.0, 0.5 * c.web_max_density_ratio),
        );
    }

    // B from densitometry: a mild narrowing inside which the centreline carries much less
    // contrast per mm of diameter than the vessel (a lucent band along the lumen), filling
    // normally beyond. Scale: half the ratio threshold.
    if !ev.cutoff
        && ds < c.web_plateau_max_ds_pct
        && ev.densitometric_ds_pct.is_none()
        && ev.low_contrast_samples >= c.web_min_samples
        && ev.distal_opacity_ratio.is_none_or(|r| r >= c.poor_filling_max_ratio)
        && let Some(r) = ev.centreline_contrast_ratio_min
        && r < c.web_contrast_max_ratio
    {
        return done(
            LesionType::Web,
            RuleFired::BCentrelineContrast,
            format!(
                "B: mild {ds:.0}% narrowing whose centreline contrast per mm falls to {r:.2} (< {:.2}) of the \
                 vessel's over {} samples: a lucent band along the lumen",
                c.web_contrast_max_ratio, ev.low_contrast_samples
            ),
            margin(c.web_contrast_max_ratio - r, 0.0, 0.5 * c.web_contrast_max_ratio),
        );
    }

    // B from the shape alone: a mild narrowing whose lumen stays flat between abrupt shoulders
    // (a slit-like lumen whose lucent bands are not resolved). One indirect sign: at most 0.75.
    // Scale: as much plateau again as the minimum.
    if !ev.cutoff
        && ds < c.web_plateau_max_ds_pct
        && let Some(pl) = ev.plateau_mm
        && pl >= c.web_plateau_min_mm - crate::detect::ARC_EPS_MM
    {
        return done(
            LesionType::Web,
            RuleFired::BPlateau,
            format!(
                "B: mild {ds:.0}% narrowing with a flat lumen over {pl:.1} mm (>= {:.1} mm) between abrupt \
                 shoulders; lucent bands not resolved",
                c.web_plateau_min_mm
            ),
            0.75 * margin(pl, c.web_plateau_min_mm, c.web_plateau_min_mm.max(0.1)),
        );
    }

    // A: ring. Scales: the length limit itself; the symmetry range above its threshold.
    let max_len = c.ring_max_length_ref * ev.reference_diameter_mm;
    let symmetric = ev.symmetry.is_none_or(|s| s >= c.ring_min_symmetry);
    if ev.focal && symmetric {
        let len_m = margin(max_len - ev.length_mm, 0.0, max_len);
        let (sym_m, sym_txt) = match ev.symmetry {
            Some(s) => (
                margin(s, c.ring_min_symmetry, (1.0 - c.ring_min_symmetry).max(0.05)),
                format!("symmetry {s:.2}"),
            ),
            // Unknown symmetry cannot support the rule: count it as at the threshold.
            None => (0.5, "symmetry not measured".to_string()),
        };
        return done(
            LesionType::Ring,
            RuleFired::ARing,
            format!(
                "A: focal {ds:.0}% narrowing, length {:.1} mm <= {:.1} mm, {sym_txt}, no internal defect",
                ev.length_mm, max_len
            ),
            len_m.min(sym_m),
        );
    }

    let mut why = Vec::new();
    if !ev.focal {
        why.push(format!("length {:.1} mm > {:.1} mm", ev.length_mm, max_len));
    }
    if let Some(s) = ev.symmetry
        && s < c.ring_min_symmetry
    {
        why.push(format!("symmetry {s:.2} < {:.2}", c.ring_min_symmetry));
    }
    if ev.cutoff {
        why.push(format!("cut-off with flow grade {:?}", ev.flow_grade));
    }
    done(
        LesionType::Ring,
        RuleFired::Fallback,
        format!("no rule fired ({}); nearest type ring", why.join(", ")),
        0.5 * c.fallback_confidence,
    )
}
