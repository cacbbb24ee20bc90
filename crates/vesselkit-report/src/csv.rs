//! One CSV row per lesion, for spreadsheets.

use crate::model::Report;

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        String::new()
    }
}

/// The lesion table as CSV text (header included). Units follow the calibration: `_mm` columns
/// become `_px` when the image is uncalibrated.
pub fn lesions_csv(report: &Report) -> String {
    let u = if report.calibration.is_calibrated() { "mm" } else { "px" };
    let mut out = format!(
        "id,priority,type,kawakami,confidence,vessel,row,col,mld_{u},reference_diameter_{u},diameter_stenosis_pct,\
         length_{u},balloon_{u},flags,reason,calibration_source\n"
    );
    let mut lesions: Vec<_> = report.lesions.iter().collect();
    lesions.sort_by_key(|l| (l.priority, l.id));
    for l in lesions {
        let balloons: Vec<String> = l.balloon_mm.iter().map(|b| format!("{b:.2}")).collect();
        let row = [
            l.id.to_string(),
            l.priority.to_string(),
            l.lesion_type.as_str().to_string(),
            l.kawakami.to_string(),
            format!("{:.3}", l.confidence),
            l.vessel.map(|v| v.to_string()).unwrap_or_default(),
            format!("{:.2}", l.site.row),
            format!("{:.2}", l.site.col),
            num(l.mld_mm),
            num(l.reference_diameter_mm),
            num(l.diameter_stenosis_pct),
            num(l.length_mm),
            balloons.join(";"),
            quote(&l.flags.join(";")),
            quote(&l.reason),
            report.calibration.source.as_str().to_string(),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn one_row_per_lesion_with_values() {
        let text = lesions_csv(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("id,priority,type,kawakami"));
        assert!(lines[0].contains("mld_mm"));
        let cells: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(cells[2], "ring");
        assert_eq!(cells[3], "A");
        assert_eq!(cells[8], "1.0000");
        assert_eq!(cells[10], "75.0000");
        assert_eq!(cells[12], "2.00;3.00");
        // The reason holds a comma, so it is quoted; the calibration source is the last cell.
        assert!(lines[1].contains("\"ring-like, 75 % DS\""));
        assert_eq!(*cells.last().unwrap(), "user");
    }
}
