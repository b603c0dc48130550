//! Ctrl-C and SIGTERM: the first one cancels the run (load stops, children
//! are stopped in order, a partial report is written); a second one exits at
//! once, after killing the children and removing the run directory (any
//! child missed dies with us through its parent-death signal).
//! Blocking work before a run (reading files that may be pipes) is raced
//! against the first signal, so no stage can ignore it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::exit;

/// Directories to remove even on a forced exit (a second Ctrl-C skips all
/// destructors).
static FORCED_EXIT_CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Children to kill first on a forced exit: they write into those
/// directories, and their parent-death signal would come only after the
/// directories were removed (a child still writing can leave one behind).
static FORCED_EXIT_KILL: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn kill_on_forced_exit(pid: u32) {
    if let Ok(mut pids) = FORCED_EXIT_KILL.lock() {
        pids.push(pid);
    }
}

pub fn forget_child(pid: u32) {
    if let Ok(mut pids) = FORCED_EXIT_KILL.lock() {
        pids.retain(|p| *p != pid);
    }
}

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

/// Kills the registered children, then removes the registered directories.
fn forced_exit_cleanup() {
    let pids = FORCED_EXIT_KILL
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    // A killed child is gone once it can be reaped; wait a moment (never
    // long: a second Ctrl-C must exit) so none still writes into a
    // directory being removed.
    let mut alive = pids;
    for _ in 0..100 {
        alive.retain(|pid| {
            let pid = nix::unistd::Pid::from_raw(*pid as i32);
            let flags = Some(nix::sys::wait::WaitPidFlag::WNOHANG);
            matches!(
                nix::sys::wait::waitpid(pid, flags),
                Ok(nix::sys::wait::WaitStatus::StillAlive)
            )
        });
        if alive.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if let Ok(dirs) = FORCED_EXIT_CLEANUP.lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
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
                forced_exit_cleanup();
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            eprintln!("slocheck: interrupted, stopping (press Ctrl-C again to exit at once)");
            cancel.cancel();
        }
    });
    Ok(interrupt)
}

/// Runs `work` (reading the scenario, its rules and configs: a FIFO blocks
/// in `open` until a writer appears) on the blocking pool, raced against
/// `cancel`: the first SIGINT/SIGTERM returns `Error::Interrupted` at once.
/// The abandoned thread cannot hold the exit: `cli::main` shuts the runtime
/// down with a timeout.
pub async fn blocking<T: Send + 'static>(
    cancel: &CancellationToken,
    interrupt: &Interrupt,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let task = tokio::task::spawn_blocking(work);
    tokio::select! {
        joined = task => joined.unwrap_or_else(|e| {
            Err(Error::Environment(format!("reading the input stopped unexpectedly: {e}")))
        }),
        _ = cancel.cancelled() => Err(Error::Interrupted(interrupt.exit_code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocking_work_returns_its_result_or_the_interruption() {
        let (cancel, interrupt) = (CancellationToken::new(), Interrupt::default());
        let ok = blocking(&cancel, &interrupt, || Ok(7)).await;
        assert_eq!(ok.unwrap(), 7);
        // Work that never ends on its own (a FIFO without a writer).
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stuck = blocking(&cancel, &interrupt, move || {
            let _ = rx.recv();
            Ok(())
        });
        cancel.cancel();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), stuck).await;
        assert!(matches!(r, Ok(Err(Error::Interrupted(exit::INTERRUPTED)))));
        drop(tx);
    }
}
