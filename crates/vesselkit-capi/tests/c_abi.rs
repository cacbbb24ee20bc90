//! The C ABI from Rust (as a C caller would use it) and a real C program compiled against the
//! header and the static library.

use std::ffi::{CStr, CString};
use vesselkit_c::{VkStatus, vk_analyze_pixels, vk_free_string, vk_info_file, vk_last_error, vk_version};

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
    std::fs::remove_file(&out).ok();
}
