//! The report model. Field names and meanings follow the project's report format; fields may be
//! added, existing ones keep their meaning.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use vesselkit_core::{Calibration, LesionType, Point, RESEARCH_NOTICE};

/// Schema identifier written into every report.
pub const SCHEMA: &str = "vesselkit.report/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Software {
    pub name: String,
    pub version: String,
}

impl Default for Software {
    fn default() -> Self {
        Self {
            name: "vesselkit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// What was analysed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InputInfo {
    pub path: Option<String>,
    pub modality: Option<String>,
    pub rows: usize,
    pub cols: usize,
    pub frames: usize,
    /// The frame the vessel tree was measured on (best opacification in a cine).
    pub frame_used: Option<usize>,
    /// A cine's frames whose registered mean the mask and centerlines came from (the frame
    /// used and its well-filled neighbours); empty when the frame used alone gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mask_frames: Vec<usize>,
}

fn nan_from_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// One branch of the vessel tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VesselReport {
    pub id: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub length_mm: f64,
    pub centerline: Vec<Point>,
    /// Lumen diameter at each centerline point; `null` where it could not be measured.
    #[serde(deserialize_with = "nan_from_null")]
    pub diameter_mm: Vec<f64>,
    pub distal_end: String,
    pub tortuosity: serde_json::Value,
    pub flow_grade: Option<u8>,
    pub arrival_ms: Option<f64>,
}

/// A lesion site in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub row: f64,
    pub col: f64,
}

impl From<Point> for Site {
    fn from(p: Point) -> Self {
        Site { row: p.row, col: p.col }
    }
}

/// One lesion with its type, the evidence behind it, its priority and balloon suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionReport {
    pub id: usize,
    pub vessel: Option<usize>,
    pub site: Site,
    #[serde(rename = "type")]
    pub lesion_type: LesionType,
    /// Kawakami letter A-E.
    pub kawakami: char,
    pub confidence: f64,
    pub mld_mm: f64,
    pub reference_diameter_mm: f64,
    pub diameter_stenosis_pct: f64,
    pub length_mm: f64,
    pub evidence: serde_json::Value,
    pub priority: u32,
    pub reason: String,
    /// Suggested balloon diameter per session, first to last.
    pub balloon_mm: Vec<f64>,
    /// Warnings such as a balloon-to-vessel ratio above 1.0.
    #[serde(default)]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionReport {
    pub index: u32,
    pub lesions: Vec<usize>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanReport {
    pub sessions: Vec<SessionReport>,
    /// Endpoints and cautions carried as data, with their sources.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// OCT summary (pullback or frame), kept free-form so the OCT stage can grow.
pub type OctReport = serde_json::Value;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub software: Software,
    pub input: InputInfo,
    pub calibration: Calibration,
    pub vessels: Vec<VesselReport>,
    pub lesions: Vec<LesionReport>,
    pub plan: PlanReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oct: Option<OctReport>,
    #[serde(default)]
    pub timings_ms: BTreeMap<String, f64>,
    /// What limits the whole report (for example no physical scale), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub notice: String,
}

impl Report {
    /// An empty report for `input` with the research notice set.
    pub fn new(input: InputInfo, calibration: Calibration) -> Self {
        Self {
            schema: SCHEMA.into(),
            software: Software::default(),
            input,
            calibration,
            vessels: Vec::new(),
            lesions: Vec::new(),
            plan: PlanReport::default(),
            oct: None,
            timings_ms: BTreeMap::new(),
            warnings: Vec::new(),
            notice: RESEARCH_NOTICE.into(),
        }
    }

    /// The report as a JSON value. When the image is uncalibrated, every `*_mm` key becomes
    /// `*_px` (and `*_mm2` `*_px2`) so that no pixel value is ever labelled as millimetres.
    pub fn to_json_value(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if !self.calibration.is_calibrated() {
            rename_units(&mut v);
        }
        v
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_json_value()).unwrap_or_default()
    }

    /// Parse a report written by [`Report::to_json`] (calibrated reports only).
    pub fn from_json(text: &str) -> crate::Result<Self> {
        serde_json::from_str(text).map_err(|e| crate::ReportError::Invalid {
            field: "report",
            reason: e.to_string(),
        })
    }
}

fn rename_units(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let new = if let Some(stem) = k.strip_suffix("_mm2") {
                    Some(format!("{stem}_px2"))
                } else {
                    k.strip_suffix("_mm").map(|stem| format!("{stem}_px"))
                };
                if let Some(mut val) = map.remove(&k) {
                    rename_units(&mut val);
                    map.insert(new.unwrap_or(k), val);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(rename_units),
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Report {
        let mut r = Report::new(
            InputInfo {
                path: Some("x.dcm".into()),
                modality: Some("XA".into()),
                rows: 64,
                cols: 64,
                frames: 1,
                frame_used: Some(0),
                mask_frames: Vec::new(),
            },
            Calibration::user(0.2).unwrap(),
        );
        r.vessels.push(VesselReport {
            id: 0,
            parent: None,
            children: vec![],
            length_mm: 10.0,
            centerline: vec![Point::new(10.0, 10.0), Point::new(10.0, 50.0)],
            diameter_mm: vec![3.0, f64::NAN],
            distal_end: "taper".into(),
            tortuosity: serde_json::json!({"dm": 1.0}),
            flow_grade: None,
            arrival_ms: None,
        });
        r.lesions.push(LesionReport {
            id: 0,
            vessel: Some(0),
            site: Site { row: 10.0, col: 30.0 },
            lesion_type: LesionType::Ring,
            kawakami: 'A',
            confidence: 0.9,
            mld_mm: 1.0,
            reference_diameter_mm: 4.0,
            diameter_stenosis_pct: 75.0,
            length_mm: 2.5,
            evidence: serde_json::json!({"rule": "A"}),
            priority: 1,
            reason: "ring-like, 75 % DS".into(),
            balloon_mm: vec![2.0, 3.0],
            flags: vec![],
        });
        r
    }

    #[test]
    fn json_has_the_documented_fields_and_round_trips() {
        let r = sample();
        let v = r.to_json_value();
        assert_eq!(v["schema"], "vesselkit.report/1");
        assert_eq!(v["calibration"]["source"], "user");
        assert_eq!(v["lesions"][0]["type"], "ring");
        assert_eq!(v["lesions"][0]["diameter_stenosis_pct"], 75.0);
        assert_eq!(v["vessels"][0]["diameter_mm"][1], serde_json::Value::Null);
        assert_eq!(v["notice"], RESEARCH_NOTICE);
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.lesions, r.lesions);
        assert!(back.vessels[0].diameter_mm[1].is_nan());
    }

    #[test]
    fn uncalibrated_values_are_named_px() {
        let mut r = sample();
        r.calibration = Calibration::uncalibrated();
        let v = r.to_json_value();
        assert_eq!(v["lesions"][0]["mld_px"], 1.0);
        assert!(v["lesions"][0].get("mld_mm").is_none());
        assert_eq!(v["vessels"][0]["length_px"], 10.0);
        assert_eq!(v["calibration"]["mm_per_px"], 1.0); // the scale itself keeps its name
    }
}
