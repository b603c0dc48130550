//! Writes a file so a reader never sees half of it: render into a temporary
//! file in the same folder, then rename over the target.

use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::Error;

/// Renders into `path` atomically, creating its folder when missing.
pub fn write(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(Error::io("create the report folder", dir))?;
    // Reports are for sharing (CI artifacts, web servers): readable by all
    // like any file a tool writes, not 0600 like a temporary file.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(Error::io("create a temporary file in", dir))?;
    {
        let mut out = BufWriter::new(tmp.as_file_mut());
        render(&mut out)
            .and_then(|()| out.flush())
            .map_err(Error::io("write", path))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::io("write", path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_render_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write(&path, |w| w.write_all(b"first")).unwrap();
        let err = write(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("renderer broke"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("out.txt"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.txt");
        write(&path, |w| w.write_all(b"x")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
