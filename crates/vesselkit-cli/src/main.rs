//! The `vesselkit` command-line tool. Research use only; not for clinical decision making.

mod info;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "vesselkit",
    version,
    about = "Vessel analysis for X-ray angiography and intravascular OCT (research use only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print modality, size, frames, transfer syntax, frame time and calibration of each file.
    Info {
        /// DICOM, PNG, TIFF or NPY files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON (one array, one object per file) instead of text.
        #[arg(long)]
        json: bool,
        /// Scale in mm per pixel that overrides the files' own calibration.
        #[arg(long)]
        pixel_spacing: Option<f64>,
    },
}

fn read_options(pixel_spacing: Option<f64>) -> Result<vesselkit_io::ReadOptions, String> {
    let mut opts = vesselkit_io::ReadOptions::default();
    if let Some(s) = pixel_spacing {
        vesselkit_core::Calibration::user(s).map_err(|e| e.to_string())?;
        opts = opts.with_user_mm_per_px(s);
    }
    Ok(opts)
}

fn run_info(files: &[PathBuf], json: bool, pixel_spacing: Option<f64>) -> ExitCode {
    let opts = match read_options(pixel_spacing) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vesselkit: --pixel-spacing: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    let mut out = Vec::new();
    for f in files {
        match info::metadata(f, &opts) {
            Ok(m) => {
                if json {
                    out.push(serde_json::to_value(&m).unwrap_or_default());
                } else {
                    println!("{}", info::describe(&m));
                }
            }
            Err(e) => {
                failed += 1;
                // One line naming the file and the problem; the other files are still reported.
                let msg = e.to_string().replace('\n', " ");
                let msg = if msg.contains(&f.display().to_string()) {
                    msg
                } else {
                    format!("{}: {msg}", f.display())
                };
                eprintln!("vesselkit: {msg}");
                if json {
                    out.push(serde_json::json!({"path": f.display().to_string(), "error": msg}));
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Info {
            files,
            json,
            pixel_spacing,
        } => run_info(&files, json, pixel_spacing),
    }
}
