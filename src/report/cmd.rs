//! `slocheck report`: re-renders a saved report.json into any of the
//! formats `--report-dir` writes, without Prometheus or the target.

use std::path::PathBuf;

use clap::Args;

use super::dir::Format;
use super::{json, terminal};
use crate::error::Error;
use crate::exit;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report.json written by `slocheck run --report-dir` or `--json`.
    pub report: PathBuf,
    /// Write the self-contained HTML report here.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Write the Markdown summary here.
    #[arg(long, value_name = "OUT")]
    pub md: Option<PathBuf>,
    /// Write the JUnit XML here.
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
}

/// Renders what was asked; with no output named, prints the terminal
/// summary. Exits 0 when rendered: the saved verdict is in the output, the
/// gate was `slocheck run`.
pub fn run(a: &ReportArgs) -> Result<u8, Error> {
    let report = json::load(&a.report)?;
    let outputs = [
        (Format::Html, &a.html),
        (Format::Markdown, &a.md),
        (Format::Junit, &a.junit),
    ];
    let mut any = false;
    for (format, path) in outputs {
        if let Some(path) = path {
            format.write_file(&report, path)?;
            any = true;
        }
    }
    if !any {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) is not an error of the report.
        let _ = terminal::write(&report, &mut out, terminal::use_color());
    }
    Ok(exit::PASS)
}
