//! `--report-dir`: the four files a person and a CI system use, each written
//! atomically, and the Markdown summary appended to `$GITHUB_STEP_SUMMARY`
//! when GitHub Actions provides one.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Report, atomic, html, json, junit, markdown};
use crate::error::Error;

pub const JSON: &str = "report.json";
pub const JUNIT: &str = "junit.xml";
pub const MARKDOWN: &str = "summary.md";
pub const HTML: &str = "report.html";

/// One output format of `slocheck report` / `--report-dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Junit,
    Markdown,
    Html,
}

impl Format {
    pub fn render(self, r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Format::Json => json::write(r, out),
            Format::Junit => junit::write(r, out),
            Format::Markdown => markdown::write(r, out),
            Format::Html => html::write(r, out),
        }
    }

    /// Renders into `path` atomically.
    pub fn write_file(self, r: &Report, path: &Path) -> Result<(), Error> {
        atomic::write(path, |out| self.render(r, out))
    }
}

/// Writes every report into `dir`, trying all of them even when one fails,
/// and returns the paths written or the first error.
pub fn write(r: &Report, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let files = [
        (Format::Json, JSON),
        (Format::Junit, JUNIT),
        (Format::Markdown, MARKDOWN),
        (Format::Html, HTML),
    ];
    let mut written = Vec::new();
    let mut first_error = None;
    for (format, name) in files {
        let path = dir.join(name);
        match format.write_file(r, &path) {
            Ok(()) => written.push(path),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(summary);
        if let Err(e) = append_summary(r, &path) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// GitHub shows this file on the job's page; other steps append to it too,
/// so it is appended to, never replaced.
fn append_summary(r: &Report, path: &Path) -> Result<(), Error> {
    let mut text = Vec::new();
    markdown::write(r, &mut text).map_err(Error::io("render the summary for", path))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&text))
        .map_err(Error::io("append to $GITHUB_STEP_SUMMARY", path))
}
