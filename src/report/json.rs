//! `report.json`: the versioned machine-readable result, written atomically,
//! and read back by `slocheck report` to re-render it.

use std::io::Write;
use std::path::Path;

use super::{Report, SCHEMA_VERSION, atomic};
use crate::error::Error;

pub fn write(report: &Report, mut out: impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")
}

/// Writes `report` to `path` so a reader never sees a half-written file.
pub fn write_file(report: &Report, path: &Path) -> Result<(), Error> {
    atomic::write(path, |out| write(report, out))
}

/// Reads a saved `report.json`; a different schema version is refused
/// rather than half-understood.
pub fn load(path: &Path) -> Result<Report, Error> {
    // A report that cannot be read is a wrong argument (exit 2), not a
    // broken environment.
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: not JSON: {e} (hint: pass the report.json that `slocheck run --report-dir` wrote)",
            path.display()
        ))
    })?;
    let version = value.get("schema_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(SCHEMA_VERSION)) {
        return Err(Error::Invalid(format!(
            "{}: schema_version {} is not the {SCHEMA_VERSION} this slocheck reads (hint: re-render with the slocheck version that wrote it)",
            path.display(),
            version.map_or_else(|| "missing".to_string(), |v| v.to_string())
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        Error::Invalid(format!(
            "{}: not a slocheck report at `{}`: {}",
            path.display(),
            e.path(),
            e.inner()
        ))
    })
}
