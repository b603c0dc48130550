//! Ctrl-C and SIGTERM: the first one cancels the run (load stops, children
//! are stopped in order, a partial report is written); a second one exits at
//! once (children die with us through their parent-death signal).

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::exit;

/// Directories to remove even on a forced exit (a second Ctrl-C skips all
/// destructors). Children die through their parent-death signal.
static FORCED_EXIT_CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub fn remove_on_forced_exit(dir: PathBuf) {
    if let Ok(mut dirs) = FORCED_EXIT_CLEANUP.lock() {
        dirs.push(dir);
    }
}

pub fn forget_on_forced_exit(dir: &std::path::Path) {
    if let Ok(mut dirs) = FORCED_EXIT_CLEANUP.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// Which signal cancelled the run (0: none yet).
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicI32>);

impl Interrupt {
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }

    /// The documented exit code for the signal received: 130 for SIGINT,
    /// 143 for SIGTERM.
    pub fn exit_code(&self) -> u8 {
        match self.signal() {
            Some(15) => exit::TERMINATED,
            _ => exit::INTERRUPTED,
        }
    }
}

/// Installs the handlers; must run inside a tokio runtime.
pub fn install(cancel: CancellationToken) -> std::io::Result<Interrupt> {
    let interrupt = Interrupt::default();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let flag = interrupt.clone();
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            if flag.0.swap(sig, Ordering::Relaxed) != 0 {
                eprintln!("slocheck: second interrupt, exiting now");
                if let Ok(dirs) = FORCED_EXIT_CLEANUP.lock() {
                    for d in dirs.iter() {
                        let _ = std::fs::remove_dir_all(d);
                    }
                }
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            eprintln!("slocheck: interrupted, stopping (press Ctrl-C again to exit at once)");
            cancel.cancel();
        }
    });
    Ok(interrupt)
}
