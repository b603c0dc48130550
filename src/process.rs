//! Child processes slocheck manages (Prometheus, Alertmanager): spawned in
//! their own process group with PR_SET_PDEATHSIG, stopped with SIGTERM →
//! grace → SIGKILL, and always reaped (Drop kills as a last resort).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A running child process. Dropping it without `stop` kills and reaps it.
pub struct ManagedChild {
    child: Option<Child>,
    pid: u32,
    /// Dropping this ends the keeper thread; see `spawn_kept`.
    keeper: Option<mpsc::Sender<()>>,
}

impl ManagedChild {
    /// Spawns `cmd` in its own process group (a terminal Ctrl-C reaches
    /// slocheck only, which then stops its children in order), killed by the
    /// kernel if slocheck dies.
    pub fn spawn(mut cmd: Command) -> Result<ManagedChild, std::io::Error> {
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let (child, keeper) = spawn_kept(cmd)?;
        Ok(ManagedChild {
            pid: child.id(),
            child: Some(child),
            keeper: Some(keeper),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// None while running; otherwise how it ended, in words.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut() {
            None => Some("it was stopped".to_string()),
            Some(child) => match child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(describe(status)),
                Err(e) => Some(format!("cannot be checked: {e}")),
            },
        }
    }

    /// SIGTERM, up to `grace` for a clean shutdown, then SIGKILL; reaped.
    pub async fn stop(mut self, grace: Duration) -> Result<(), std::io::Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let result = if let Ok(None) = child.try_wait() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break Ok(()),
                    Ok(None) if started.elapsed() < grace => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        break child.wait().map(|_| ());
                    }
                    Err(e) => break Err(e),
                }
            }
        } else {
            Ok(())
        };
        self.keeper.take();
        result
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Spawns `cmd` from a dedicated thread that lives until the returned sender
/// is dropped. PR_SET_PDEATHSIG fires when the spawning *thread* exits, so
/// spawning from a tokio blocking thread (which exits when idle) would kill
/// the child mid-run.
fn spawn_kept(mut cmd: Command) -> Result<(Child, mpsc::Sender<()>), std::io::Error> {
    let (child_tx, child_rx) = mpsc::channel();
    let (keep_tx, keep_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("child-keeper".into())
        .spawn(move || {
            let spawned = cmd.spawn();
            let ok = spawned.is_ok();
            let _ = child_tx.send(spawned);
            if ok {
                // Returns when the sender is dropped: the child is gone by then.
                let _ = keep_rx.recv();
            }
        })?;
    let child = child_rx
        .recv()
        .map_err(|_| std::io::Error::other("the spawning thread ended without a result"))??;
    Ok((child, keep_tx))
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller retries on a race).
pub fn free_loopback_port() -> Result<u16, std::io::Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Up to `max` bytes from the end of a log, starting no earlier than `from`.
pub fn read_tail(path: &Path, from: u64, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(max));
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = read_tail(path, 0, 64 * 1024);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_terminates_and_reaps_a_child() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = ManagedChild::spawn(cmd).expect("spawn sleep");
        assert_eq!(child.exited(), None);
        let pid = child.pid();
        child.stop(Duration::from_secs(2)).await.expect("stop");
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn free_port_is_loopback_bindable() {
        let port = free_loopback_port().expect("port");
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("still free");
    }
}
