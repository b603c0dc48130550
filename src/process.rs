//! Child processes slocheck manages (Prometheus, Alertmanager): spawned in
//! their own process group with PR_SET_PDEATHSIG, stopped with SIGTERM →
//! grace → SIGKILL, and always reaped (Drop kills as a last resort); started
//! on a free loopback port and waited on until their HTTP readiness endpoint
//! answers.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

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
        crate::signals::kill_on_forced_exit(child.id());
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

    /// None while running; whether it exited with status 0 otherwise.
    pub fn succeeded(&mut self) -> Option<bool> {
        match self.child.as_mut()?.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.success()),
            Err(_) => Some(false),
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
        crate::signals::forget_child(self.pid);
        result
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        crate::signals::forget_child(self.pid);
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

/// The log file opened for appending, twice: the child's stdout and stderr.
pub fn log_file(path: &Path) -> io::Result<(File, File)> {
    let out = File::options().create(true).append(true).open(path)?;
    let err = out.try_clone()?;
    Ok((out, err))
}

/// Starts a server child on a free loopback port: `start(port)` spawns it and
/// waits until it is ready (dropping, i.e. killing, it on failure). Another
/// process can take the port between our probe and the child's bind, so when
/// the part of `log_path` written by this attempt says "address already in
/// use", it retries on a new port, `attempts` times in all.
pub async fn start_on_free_port<T, E, Fut>(
    attempts: u32,
    log_path: &Path,
    port_error: impl FnOnce(io::Error) -> E,
    mut start: impl FnMut(u16) -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = match free_loopback_port() {
            Ok(port) => port,
            Err(e) => return Err(port_error(e)),
        };
        let log_start = std::fs::metadata(log_path).map(|m| m.len()).unwrap_or(0);
        match start(port).await {
            Ok(started) => return Ok(started),
            Err(e) => {
                let raced = read_tail(log_path, log_start, 2000).contains("address already in use");
                if !(raced && attempt < attempts) {
                    return Err(e);
                }
            }
        }
    }
}

/// Why `wait_http_ready` gave up; each launcher maps it to its own error.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError<E: std::error::Error + 'static> {
    #[error("cannot build the HTTP client for the readiness check: {0}")]
    Client(#[source] reqwest::Error),
    /// `is_alive` failed: the child exited before it was ready.
    #[error(transparent)]
    Exited(E),
    #[error("interrupted while waiting for readiness")]
    Cancelled,
    #[error("not ready after {}s", .0.as_secs())]
    TimedOut(Duration),
}

/// Polls `url` every 100 ms until it answers 2xx, `is_alive` fails, `cancel`
/// fires or `timeout` passes.
pub async fn wait_http_ready<E: std::error::Error + 'static>(
    url: &str,
    timeout: Duration,
    mut is_alive: impl FnMut() -> Result<(), E>,
    cancel: &CancellationToken,
) -> Result<(), ReadyError<E>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .map_err(ReadyError::Client)?;
    let started = Instant::now();
    while started.elapsed() < timeout {
        is_alive().map_err(ReadyError::Exited)?;
        if let Ok(resp) = http.get(url).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(ReadyError::Cancelled),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    Err(ReadyError::TimedOut(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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

    #[tokio::test]
    async fn start_retries_only_on_a_port_race_and_at_most_attempts_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("child.log");
        let mut tries = 0;
        let raced: Result<(), String> = start_on_free_port(
            3,
            &log,
            |e| e.to_string(),
            |_port| {
                tries += 1;
                let log = log.clone();
                async move {
                    let (mut out, _) = log_file(&log).expect("open log");
                    writeln!(out, "bind: address already in use").expect("write log");
                    Err("not ready".to_string())
                }
            },
        )
        .await;
        assert_eq!(raced, Err("not ready".to_string()));
        assert_eq!(tries, 3);

        let mut tries = 0;
        let other: Result<(), String> = start_on_free_port(
            3,
            &log,
            |e| e.to_string(),
            |_port| {
                tries += 1;
                async { Err("crashed".to_string()) }
            },
        )
        .await;
        assert_eq!(other, Err("crashed".to_string()));
        assert_eq!(tries, 1, "an old race in the log must not cause a retry");
    }

    #[tokio::test]
    async fn wait_ready_stops_on_a_dead_child_and_on_cancel() {
        let url = format!(
            "http://127.0.0.1:{}/-/ready",
            free_loopback_port().expect("port")
        );
        let cancel = CancellationToken::new();
        let dead = wait_http_ready(
            &url,
            Duration::from_secs(5),
            || Err(io::Error::other("gone")),
            &cancel,
        )
        .await;
        assert!(matches!(dead, Err(ReadyError::Exited(_))), "{dead:?}");
        cancel.cancel();
        let cancelled = wait_http_ready(
            &url,
            Duration::from_secs(5),
            || Ok::<(), io::Error>(()),
            &cancel,
        )
        .await;
        assert!(
            matches!(cancelled, Err(ReadyError::Cancelled)),
            "{cancelled:?}"
        );
    }
}
