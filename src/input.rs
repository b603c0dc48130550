//! Reading the files a user names (scenarios, body files, rule files,
//! Alertmanager configs): at most `MAX_INPUT_BYTES`, and only regular files
//! (or, for files read once, pipes), so `body_file = "/dev/zero"` is a
//! one-line error instead of a process that eats the machine's memory.
//!
//! Errors are `std::io::Error`s so every caller keeps its own message
//! (`cannot read rule file …: <this>`).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The largest input file slocheck reads (64 MiB), documented in the README.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Whether a FIFO (`mkfifo`, `<(…)`) is an acceptable input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipes {
    /// Read once before the run (scenario, body files): a pipe works, and
    /// the caller races the read against the signals (`signals::blocking`).
    Allowed,
    /// Read more than once (rule files: validated, then time-scaled;
    /// Alertmanager configs: checked, then rewritten): a pipe would be empty
    /// or block the second time.
    Refused,
}

/// Reads `path` as UTF-8 text: devices, directories, sockets and anything
/// larger than `MAX_INPUT_BYTES` are refused, pipes as `pipes` says.
pub fn read_to_string(path: &Path, pipes: Pipes) -> io::Result<String> {
    let bytes = read(path, pipes)?;
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// `read_to_string` for bytes.
pub fn read(path: &Path, pipes: Pipes) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO blocks until a writer appears,
    // and a device needs no waiting to be refused.
    let meta = std::fs::metadata(path)?;
    let kind = meta.file_type();
    let refused = if kind.is_file() {
        None
    } else if kind.is_fifo() {
        (pipes == Pipes::Refused)
            .then_some("a pipe; this file is read more than once, so it must be a regular file")
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_char_device() {
        Some("a character device; slocheck reads regular files")
    } else if kind.is_block_device() {
        Some("a block device; slocheck reads regular files")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = refused {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}"),
        ));
    }
    if kind.is_file() && meta.len() > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    let file = File::open(path)?;
    // One byte past the limit tells "exactly 64 MiB" from "more" (a pipe,
    // or a file that grew since the check).
    let cap = MAX_INPUT_BYTES as usize + 1;
    let first = if kind.is_file() {
        meta.len() as usize + 1
    } else {
        64 * 1024
    };
    let bytes = read_capped(file.take(cap as u64), first.min(cap), cap)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads all of `reader` (at most `cap` bytes), doubling the buffer but
/// never past `cap`: `read_to_end` doubles to the next power of two, and a
/// reallocation may copy (mimalloc's does), so a pipe at the limit held
/// 64 + 128 MiB at once.
fn read_capped(mut reader: impl Read, first: usize, cap: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(first);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let need = bytes.len() + n;
        if need > bytes.capacity() {
            let grown = (bytes.capacity() * 2).clamp(need, cap.max(need));
            bytes.reserve_exact(grown - bytes.len());
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "it is larger than {} MiB, the limit for input files",
            MAX_INPUT_BYTES / (1024 * 1024)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte arrives, in order, and the buffer never grows past the
    /// cap (nor to the next power of two beyond it).
    #[test]
    fn capped_reads_keep_every_byte_and_stay_under_the_cap() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for (first, cap) in [(1, 300_001), (64 * 1024, 300_001), (300_001, 300_001)] {
            let got = read_capped(&data[..], first, cap).unwrap();
            assert_eq!(got, data);
            assert!(got.capacity() <= cap, "capacity {} > {cap}", got.capacity());
        }
        // A reader longer than the cap is cut by `take` upstream; here the
        // buffer just grows to what was read.
        let got = read_capped(&data[..], 16, 1_000).unwrap();
        assert_eq!(got.len(), data.len());
    }

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    #[test]
    fn reads_regular_files_and_refuses_devices_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "héllo\n").unwrap();
        assert_eq!(read_to_string(&f, Pipes::Refused).unwrap(), "héllo\n");
        let e = read_to_string(Path::new("/dev/zero"), Pipes::Allowed).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "it is a character device; slocheck reads regular files"
        );
        let e = read_to_string(dir.path(), Pipes::Allowed).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_to_string(&f, Pipes::Allowed).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_pipe_is_read_when_allowed_and_refused_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        // Refused before opening, so no writer is needed.
        let e = read_to_string(&fifo, Pipes::Refused).unwrap_err();
        assert!(e.to_string().starts_with("it is a pipe; "), "{e}");
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "x = 1\n").unwrap())
        };
        assert_eq!(read_to_string(&fifo, Pipes::Allowed).unwrap(), "x = 1\n");
        writer.join().unwrap();
    }

    #[test]
    fn files_past_the_limit_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        // Sparse: no disk used, but the file says 64 MiB + 1.
        let file = File::create(&f).unwrap();
        file.set_len(MAX_INPUT_BYTES + 1).unwrap();
        let e = read(&f, Pipes::Allowed).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            e.to_string(),
            "it is larger than 64 MiB, the limit for input files"
        );
        file.set_len(MAX_INPUT_BYTES).unwrap();
        assert_eq!(
            read(&f, Pipes::Allowed).unwrap().len() as u64,
            MAX_INPUT_BYTES
        );
    }

    #[test]
    fn a_pipe_past_the_limit_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                let chunk = vec![b'x'; 1 << 20];
                // The reader stops after the limit: the write then fails
                // with a broken pipe, which ends this loop.
                while std::io::Write::write_all(&mut w, &chunk).is_ok() {}
            })
        };
        let e = read(&fifo, Pipes::Allowed).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        writer.join().unwrap();
    }
}
