//! The C ABI from Rust (as a C caller would use it) and a real C program compiled against the
//! header and the static library.

use std::ffi::{CStr, CString};
use vesselkit_c::{
    VkStatus, vk_analyze_pixels, vk_analyze_pixels_with, vk_free_string, vk_info_file, vk_last_error, vk_version,
};

fn last_error() -> String {
    unsafe { CStr::from_ptr(vk_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn version_matches_the_crate() {
    let v = unsafe { CStr::from_ptr(vk_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

#[test]
fn bad_arguments_give_status_and_message() {
    let mut out = std::ptr::null_mut();
    let st = unsafe { vk_info_file(std::ptr::null(), 0.0, &mut out) };
    assert_eq!(st, VkStatus::InvalidArgument);
    assert!(last_error().contains("path is NULL"));

    let missing = CString::new("/nonexistent/file.dcm").unwrap();
    let st = unsafe { vk_info_file(missing.as_ptr(), 0.0, &mut out) };
    assert_eq!(st, VkStatus::Read);
    assert!(last_error().contains("/nonexistent/file.dcm"), "{}", last_error());

    let st = unsafe { vk_analyze_pixels(std::ptr::null(), 1, 4, 4, 0.2, &mut out) };
    assert_eq!(st, VkStatus::InvalidArgument);
    let px = [0.0f32; 16];
    let st = unsafe { vk_analyze_pixels(px.as_ptr(), 1, 0, 16, 0.2, &mut out) };
    assert_eq!(st, VkStatus::InvalidArgument);
    assert!(last_error().contains("empty"), "{}", last_error());
    let st = unsafe { vk_analyze_pixels(px.as_ptr(), 1, 4, 4, f64::NAN, &mut out) };
    assert_eq!(st, VkStatus::InvalidArgument);
}

#[test]
fn analyses_a_flat_image_to_an_empty_report() {
    let px = vec![1000.0f32; 64 * 64];
    let mut out = std::ptr::null_mut();
    let st = unsafe { vk_analyze_pixels(px.as_ptr(), 1, 64, 64, 0.2, &mut out) };
    assert_eq!(st, VkStatus::Ok, "{}", last_error());
    let json = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
    unsafe { vk_free_string(out) };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema"], "vesselkit.report/1");
    assert_eq!(v["input"]["rows"], 64);
    assert_eq!(v["lesions"].as_array().map(|a| a.len()), Some(0));
    assert!(v["notice"].as_str().unwrap().contains("Research use only"));
}

/// `vk_analyze_pixels_with` on `frames` (each `rows x cols`, row-major) at 0.2 mm/px: the
/// report, or the status and message.
fn analyse_with(
    px: &[f32],
    frames: usize,
    rows: usize,
    cols: usize,
    options: Option<&str>,
) -> Result<serde_json::Value, (VkStatus, String)> {
    let options = options.map(|o| CString::new(o).unwrap());
    let mut out = std::ptr::null_mut();
    let st = unsafe {
        vk_analyze_pixels_with(
            px.as_ptr(),
            frames,
            rows,
            cols,
            0.2,
            options.as_ref().map_or(std::ptr::null(), |o| o.as_ptr()),
            &mut out,
        )
    };
    if st != VkStatus::Ok {
        return Err((st, last_error()));
    }
    let json = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
    unsafe { vk_free_string(out) };
    Ok(serde_json::from_str(&json).unwrap())
}

#[test]
fn options_choose_the_rules_the_segmenter_and_the_frame() {
    use vesselkit_phantom::{AngioParams, generate_angio};
    let ph = generate_angio(&AngioParams::default(), 1).unwrap();
    let (rows, cols) = ph.image.dim();
    let frame: Vec<f32> = ph.image.iter().copied().collect();
    let lesions = |v: &serde_json::Value| v["lesions"].as_array().unwrap().len();
    let branches = |v: &serde_json::Value| v["vessels"].as_array().unwrap().len();

    let defaults = analyse_with(&frame, 1, rows, cols, None).unwrap();
    assert!(lesions(&defaults) > 0);
    for same in ["", "  ", "{}"] {
        assert_eq!(
            analyse_with(&frame, 1, rows, cols, Some(same)).unwrap()["lesions"],
            defaults["lesions"]
        );
    }

    // A rule table from a file: narrowings must reach 95 % to count, so fewer lesions.
    let rules = std::env::temp_dir().join(format!("vk-capi-rules-{}.toml", std::process::id()));
    std::fs::write(&rules, "[detection]\nmin_ds_pct = 95.0\n").unwrap();
    let strict = analyse_with(
        &frame,
        1,
        rows,
        cols,
        Some(&format!("{{\"rules\": {:?}}}", rules.display().to_string())),
    )
    .unwrap();
    std::fs::remove_file(&rules).ok();
    assert!(
        lesions(&strict) < lesions(&defaults),
        "{} vs {}",
        lesions(&strict),
        lesions(&defaults)
    );

    // The learned mask gives another tree than the filters.
    let learned = analyse_with(&frame, 1, rows, cols, Some(r#"{"segmenter": "unet-dca1"}"#)).unwrap();
    assert_ne!(learned["vessels"], defaults["vessels"]);
    assert!(branches(&learned) > 0);

    // Two frames, the first blank: the best-opacified one is measured unless told otherwise.
    let mut two = vec![frame[0]; rows * cols];
    two.extend_from_slice(&frame);
    let best = analyse_with(&two, 2, rows, cols, None).unwrap();
    assert_eq!(best["input"]["frame_used"], 1);
    let first = analyse_with(&two, 2, rows, cols, Some(r#"{"frame": 0}"#)).unwrap();
    assert_eq!(first["input"]["frame_used"], 0);
    assert_eq!(lesions(&first), 0);

    // Bad options: a status and a message naming what is wrong.
    let tiny = [1000.0f32; 16 * 16];
    for (options, says) in [
        (r#"{"frame": 5}"#, "frame"),
        (r#"{"frame": -1}"#, "non-negative integer"),
        (r#"{"bogus": 1}"#, "unknown key \"bogus\""),
        (r#"{"segmenter": "cnn"}"#, "\"cnn\""),
        (r#"{"segmenter": 3}"#, "\"segmenter\" must be a string"),
        (r#"{"rules": "/nonexistent/rules.toml"}"#, "/nonexistent/rules.toml"),
        ("[1, 2]", "not a JSON object"),
        ("{", "options_json"),
    ] {
        let (st, msg) = analyse_with(&tiny, 1, 16, 16, Some(options)).unwrap_err();
        assert_eq!(st, VkStatus::InvalidArgument, "{options}: {msg}");
        assert!(msg.contains(says), "{options}: {msg}");
    }
}

/// The "catheter" option takes the scale from a catheter marked in the frame: a 6 Fr (2 mm)
/// hollow catheter drawn over a phantom frame at 0.2 mm/px gives 0.2 mm/px, source "catheter",
/// whatever spacing the caller passed; bad marks are named.
#[test]
fn the_catheter_option_calibrates_from_a_marked_catheter() {
    use vesselkit_phantom::{AngioParams, generate_angio};
    let ph = generate_angio(&AngioParams::default(), 1).unwrap();
    let (rows, cols) = ph.image.dim();
    // Along (260, 0) -> (150, 160): outer radius 1 mm = 5 px, inner 0.7 of it.
    let len = (110f64 * 110.0 + 160.0 * 160.0).sqrt();
    let dir = (-110.0 / len, 160.0 / len);
    let frame: Vec<f32> = ph
        .image
        .indexed_iter()
        .map(|((r, c), &v)| {
            let y = ((r as f64 - 260.0) * dir.1 - c as f64 * dir.0).abs() * 0.2;
            let chord = 2.0 * (1.0 - y * y).max(0.0).sqrt() - 2.0 * (0.49 - y * y).max(0.0).sqrt();
            v * (-0.6 * chord).exp() as f32
        })
        .collect();
    let mark = r#"{"catheter": {"p0": [232.5, 40], "p1": [177.5, 120], "french": 6}}"#;
    let v = analyse_with(&frame, 1, rows, cols, Some(mark)).unwrap();
    assert_eq!(v["calibration"]["source"], "catheter");
    let got = v["calibration"]["mm_per_px"].as_f64().unwrap();
    assert!((got - 0.2).abs() < 0.2 * 0.015, "{got}");

    for (options, status, says) in [
        (r#"{"catheter": 6}"#, VkStatus::InvalidArgument, "must be an object"),
        (
            r#"{"catheter": {"p0": [1, 2], "p1": [9, 9]}}"#,
            VkStatus::InvalidArgument,
            "\"french\"",
        ),
        (
            r#"{"catheter": {"p0": [1], "p1": [9, 9], "french": 6}}"#,
            VkStatus::InvalidArgument,
            "[row, col]",
        ),
        (
            r#"{"catheter": {"p0": [1, 2], "p1": [9, 9], "french": 6, "fr": 1}}"#,
            VkStatus::InvalidArgument,
            "unknown key \"fr\"",
        ),
        (
            r#"{"catheter": {"p0": [1, 2], "p1": [9, 9], "french": 6, "frame": 2}}"#,
            VkStatus::InvalidArgument,
            "catheter frame",
        ),
        (
            r#"{"catheter": {"p0": [8, 2], "p1": [8, 3], "french": 6}}"#,
            VkStatus::InvalidArgument,
            "4 px",
        ),
        (
            r#"{"catheter": {"p0": [8, 2], "p1": [8, 12], "french": 40}}"#,
            VkStatus::InvalidArgument,
            "catheter_french",
        ),
        (
            r#"{"catheter": {"p0": [8, 2], "p1": [8, 12], "french": 6}}"#,
            VkStatus::Analysis,
            "not found",
        ),
    ] {
        let tiny = [1000.0f32; 16 * 16];
        let (st, msg) = analyse_with(&tiny, 1, 16, 16, Some(options)).unwrap_err();
        assert_eq!(st, status, "{options}: {msg}");
        assert!(msg.contains("catheter") && msg.contains(says), "{options}: {msg}");
    }
}

/// Compile `tests/smoke.c` against the header and link the static library cargo just built.
#[test]
fn a_c_program_links_and_runs() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if std::process::Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("no C compiler ({cc}); skipping the C link test");
        return;
    }
    // target/<profile>/deps/c_abi-xxxx -> target/<profile>/libvesselkit_c.a
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let lib = profile_dir.join("libvesselkit_c.a");
    if !lib.exists() {
        eprintln!(
            "{} not built (run cargo build -p vesselkit-capi); skipping",
            lib.display()
        );
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("vk-smoke-{}", std::process::id()));
    let status = std::process::Command::new(&cc)
        .arg(dir.join("tests/smoke.c"))
        .arg("-I")
        .arg(dir.join("include"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-lstdc++", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "C compile/link failed");
    let run = std::process::Command::new(&out).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text} {}", String::from_utf8_lossy(&run.stderr));
    assert!(text.contains("version 0."), "{text}");
    assert!(text.contains("null path -> 1"), "{text}");
    assert!(text.contains("schema ok"), "{text}");
    assert!(text.contains("options ok"), "{text}");
    assert!(text.contains("bad option -> 1"), "{text}");
    std::fs::remove_file(&out).ok();
}
