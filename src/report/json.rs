//! `report.json`: the versioned machine-readable result, written atomically
//! (temporary file in the same folder, then rename).

use std::io::Write;
use std::path::Path;

use super::Report;
use crate::error::Error;

pub fn write(report: &Report, mut out: impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")
}

/// Writes `report` to `path` so a reader never sees a half-written file.
pub fn write_file(report: &Report, path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(Error::io("create the report folder", dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(Error::io("create a temporary file in", dir))?;
    write(report, std::io::BufWriter::new(tmp.as_file_mut())).map_err(Error::io("write", path))?;
    tmp.persist(path)
        .map_err(|e| Error::io("write", path)(e.error))?;
    Ok(())
}
