//! The `vesselkit` command-line tool. Research use only; not for clinical decision making.

mod analyze;
mod demo;
mod eval;
mod info;
mod phantom;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;

/// An error already phrased for the user (it names the file or option at fault).
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// Source of the vessel mask in `analyze`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segmenter {
    Filters,
    UnetDca1,
    /// A weight file written by `scripts/train_unet.py`.
    Weights(PathBuf),
}

impl std::str::FromStr for Segmenter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "filters" => Ok(Self::Filters),
            "unet-dca1" => Ok(Self::UnetDca1),
            path if std::path::Path::new(path).is_file() => Ok(Self::Weights(PathBuf::from(path))),
            other => Err(format!(
                "{other:?} is neither `filters`, `unet-dca1` nor an existing weight file"
            )),
        }
    }
}

/// The two points of `--catheter`: `ROW0,COL0,ROW1,COL1` in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CatheterPoints([f64; 4]);

impl std::str::FromStr for CatheterPoints {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let v: Vec<f64> = s
            .split(',')
            .map(|t| t.trim().parse::<f64>().map_err(|_| format!("{t:?} is not a number")))
            .collect::<Result<_, _>>()?;
        match v[..] {
            [a, b, c, d] if v.iter().all(|x| x.is_finite()) => Ok(Self([a, b, c, d])),
            _ => Err(format!("expected ROW0,COL0,ROW1,COL1 (four finite numbers), got {s:?}")),
        }
    }
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
    /// Analyse angiograms: vessel tree, diameters, lesions typed and ranked, balloon plan.
    Analyze {
        /// DICOM (single frame or cine), PNG, TIFF or NPY files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Scale in mm per pixel (overrides the files' calibration).
        #[arg(long, conflicts_with = "catheter")]
        pixel_spacing: Option<f64>,
        /// Take the scale from a catheter marked along its axis from (ROW0, COL0) to (ROW1,
        /// COL1), px, at least 4 px apart; needs --french. Mark a contrast-empty stretch clear
        /// of vessels. Overrides the file's calibration; one input only.
        #[arg(long, value_name = "ROW0,COL0,ROW1,COL1", requires = "french")]
        catheter: Option<CatheterPoints>,
        /// Outer size of the marked catheter in French (1 Fr = 1/3 mm).
        #[arg(long, requires = "catheter")]
        french: Option<f64>,
        /// The frame the catheter was marked on.
        #[arg(long, default_value_t = 0, requires = "catheter")]
        catheter_frame: usize,
        /// Analyse this frame of a cine instead of the best-opacified one.
        #[arg(long)]
        frame: Option<usize>,
        /// Frames on each side of a cine's best one averaged, once registered, for its mask and
        /// centerlines (0: the best frame alone); diameters always come from the best frame.
        #[arg(long, default_value_t = 1)]
        mask_mean_frames: usize,
        /// Where the vessel mask comes from: `filters` (vesselness and top-hat hysteresis, any
        /// scale), `unet-dca1` (a small U-Net fitted on the DCA1 coronary training frames,
        /// 300 x 300 px with vessels up to ~6 px in radius; for frames like those), or the path
        /// of a weight file from `scripts/train_unet.py` (one network or several concatenated).
        #[arg(long, default_value = "filters", value_name = "filters|unet-dca1|FILE")]
        segmenter: Segmenter,
        /// Write the JSON report here (`-` for standard output).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the lesion table as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the overlay picture (PNG).
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// Write a DICOM Structured Report (TID 1500).
        #[arg(long)]
        sr: Option<PathBuf>,
        /// Rule table (JSON or TOML) overriding the default thresholds.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Generate a phantom with ground truth (PNG, NPY, DICOM and a truth JSON).
    Phantom {
        #[arg(long, value_enum)]
        kind: phantom::Kind,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// 0 (easy) to 1 (hard); angiographic phantoms only.
        #[arg(long)]
        difficulty: Option<f64>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Judge the pipeline on seeded phantoms (and real data with --real) and print one table.
    Eval {
        /// Number of angiographic phantoms.
        #[arg(long, default_value_t = 10)]
        cases: usize,
        /// Number of cine phantoms.
        #[arg(long, default_value_t = 2)]
        cine_cases: usize,
        /// Number of single OCT phantom frames (1 to 4 channels in turn).
        #[arg(long, default_value_t = 8)]
        oct_cases: usize,
        /// Number of OCT phantom pullbacks.
        #[arg(long, default_value_t = 1)]
        pullback_cases: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Folder holding xca-dca1-subset/ and ivoct-pullback/ (e.g. ../shared/data).
        #[arg(long)]
        real: Option<PathBuf>,
        /// Scale of the real OCT frames, mm per pixel (the exports carry none; 1/149.4 mm/px comes
        /// from their burned-in 1 mm markers).
        #[arg(long, default_value_t = 1.0 / 149.4)]
        oct_pixel_spacing: f64,
        /// Pass every angiographic phantom frame (single and cine) through 12-bit lossy JPEG at
        /// this quality (1-100) before analysis, as an archive would return it.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
        jpeg_quality: Option<u8>,
        /// Also write the figures as JSON (`-` for standard output).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Generate a pulmonary phantom cine, analyse it and write the report, overlay and SR.
    Demo {
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn read_options(pixel_spacing: Option<f64>) -> Result<vesselkit_io::ReadOptions, CliError> {
    let mut opts = vesselkit_io::ReadOptions::default();
    if let Some(s) = pixel_spacing {
        vesselkit_core::Calibration::user(s).map_err(|e| CliError(format!("--pixel-spacing: {e}")))?;
        opts = opts.with_user_mm_per_px(s);
    }
    Ok(opts)
}

fn one_line(msg: &str, file: &std::path::Path) -> String {
    let msg = msg.replace('\n', " ");
    if msg.contains(&file.display().to_string()) {
        msg
    } else {
        format!("{}: {msg}", file.display())
    }
}

fn run_info(files: &[PathBuf], json: bool, pixel_spacing: Option<f64>) -> Result<ExitCode, CliError> {
    let opts = read_options(pixel_spacing)?;
    let mut failed = 0;
    let mut out = Vec::new();
    for f in files {
        match info::metadata(f, &opts) {
            Ok(m) if json => out.push(serde_json::to_value(&m).unwrap_or_default()),
            Ok(m) => println!("{}", info::describe(&m)),
            Err(e) => {
                failed += 1;
                // One line naming the file and the problem; the other files are still reported.
                let msg = one_line(&e.to_string(), f);
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
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[allow(clippy::too_many_arguments)]
fn run_analyze(
    inputs: &[PathBuf],
    pixel_spacing: Option<f64>,
    catheter: Option<vesselkit::CatheterMark>,
    frame: Option<usize>,
    mask_mean_frames: usize,
    segmenter: Segmenter,
    outputs: analyze::Outputs,
    rules: Option<PathBuf>,
) -> Result<ExitCode, CliError> {
    if catheter.is_some() && inputs.len() > 1 {
        return Err(CliError(format!(
            "--catheter marks one image, but {} inputs were given",
            inputs.len()
        )));
    }
    let read = read_options(pixel_spacing)?;
    let mut opts = vesselkit::Options {
        frame,
        ..Default::default()
    };
    opts.angio.flow.mask_mean_half_width = mask_mean_frames;
    let segmenter_err = |e: vesselkit::angio::AngioError| CliError(format!("--segmenter: {e}"));
    opts.angio.segment.learned = match segmenter {
        Segmenter::Filters => None,
        Segmenter::UnetDca1 => Some(vesselkit::angio::LearnedMask::dca1().map_err(segmenter_err)?),
        Segmenter::Weights(path) => Some(
            vesselkit::angio::LearnedMask::from_path(&path, vesselkit::angio::LearnedMask::DCA1_THRESHOLD)
                .map_err(segmenter_err)?,
        ),
    };
    if let Some(p) = rules {
        opts.rules = vesselkit::lesion::Rules::from_path(&p).map_err(|e| CliError(format!("--rules: {e}")))?;
    }
    let many = inputs.len() > 1;
    let bar = ProgressBar::new(inputs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let to_stdout = outputs.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let mut failed = 0;
    let mut reports = Vec::new();
    for input in inputs {
        bar.set_message(input.display().to_string());
        let per = analyze::Outputs {
            json: analyze::per_input(&outputs.json, input, many),
            csv: analyze::per_input(&outputs.csv, input, many),
            overlay: analyze::per_input(&outputs.overlay, input, many),
            sr: analyze::per_input(&outputs.sr, input, many),
        };
        match analyze::analyze_file(input, &read, &opts, catheter.as_ref()).and_then(|(a, cine)| {
            analyze::write_outputs(&a, &cine, &per)?;
            Ok(a)
        }) {
            Ok(a) => {
                if to_stdout {
                    reports.push(a.report.to_json_value());
                } else {
                    bar.suspend(|| println!("{}", analyze::table(&a.report)));
                }
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("vesselkit: {}", one_line(&e.0, input)));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if to_stdout {
        let v = if many {
            serde_json::Value::Array(reports)
        } else {
            reports.pop().unwrap_or_default()
        };
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    if let Some(n) = std::env::var("VESSELKIT_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        rayon_threads(n);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info {
            files,
            json,
            pixel_spacing,
        } => run_info(&files, json, pixel_spacing),
        Command::Analyze {
            inputs,
            pixel_spacing,
            catheter,
            french,
            catheter_frame,
            frame,
            mask_mean_frames,
            segmenter,
            json,
            csv,
            overlay,
            sr,
            rules,
        } => run_analyze(
            &inputs,
            pixel_spacing,
            catheter
                .zip(french)
                .map(|(CatheterPoints([r0, c0, r1, c1]), french)| vesselkit::CatheterMark {
                    p0: vesselkit::core::Point::new(r0, c0),
                    p1: vesselkit::core::Point::new(r1, c1),
                    french,
                    frame: catheter_frame,
                }),
            frame,
            mask_mean_frames,
            segmenter,
            analyze::Outputs { json, csv, overlay, sr },
            rules,
        ),
        Command::Phantom {
            kind,
            seed,
            difficulty,
            out,
        } => phantom::run(kind, seed, difficulty, &out).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }),
        Command::Eval {
            cases,
            cine_cases,
            oct_cases,
            pullback_cases,
            seed,
            real,
            oct_pixel_spacing,
            jpeg_quality,
            json,
        } => eval::run(
            eval::Counts {
                cases,
                cine_cases,
                oct_cases,
                pullback_cases,
            },
            seed,
            real.as_deref(),
            oct_pixel_spacing,
            jpeg_quality,
            json.as_deref(),
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Demo { out, seed } => demo::run(&out, seed).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vesselkit: {e}");
            ExitCode::from(2)
        }
    }
}

/// Size rayon's global pool from `VESSELKIT_NUM_THREADS`.
fn rayon_threads(n: usize) {
    if n > 0 {
        // An error only means the pool was already built; the default size then stays.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    }
}
