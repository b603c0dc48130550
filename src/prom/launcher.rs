//! Finds, configures, starts and stops a managed Prometheus: one child
//! process per run, on a free loopback port, always reaped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use super::client::PromClient;
use super::config::PromConfig;
use super::error::PromError;

/// The oldest Prometheus slocheck is tested with (Debian bookworm's package);
/// older ones lack `keep_firing_for`.
pub const MIN_VERSION: (u32, u32, u32) = (2, 42, 0);
pub const ENV_BIN: &str = "SLOCHECK_PROMETHEUS_BIN";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: u32 = 3;
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The Prometheus binary: `explicit`, else `$SLOCHECK_PROMETHEUS_BIN`, else
/// `prometheus` on PATH; checked to be a Prometheus ≥ 2.42.0.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, PromError> {
    let env = std::env::var_os(ENV_BIN)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = match (explicit, env) {
        (Some(p), _) => resolve_given(p, "--prometheus-bin")?,
        (None, Some(p)) => resolve_given(&p, ENV_BIN)?,
        (None, None) => which::which("prometheus").map_err(|_| PromError::BinaryNotFound {
            searched: "no `prometheus` on PATH".into(),
        })?,
    };
    let output = version_output(&path)?;
    let found = parse_version(&output).ok_or_else(|| PromError::BinaryVersion {
        path: path.clone(),
        output: crate::prom::rules::one_line(&output),
    })?;
    if found < MIN_VERSION {
        return Err(PromError::BinaryTooOld {
            path,
            found: format!("{}.{}.{}", found.0, found.1, found.2),
            required: format!("{}.{}.{}", MIN_VERSION.0, MIN_VERSION.1, MIN_VERSION.2),
        });
    }
    Ok(path)
}

fn resolve_given(p: &Path, from: &str) -> Result<PathBuf, PromError> {
    // A bare name ("prometheus-2.50") is looked up on PATH like a shell would.
    let found = if p.components().count() == 1 {
        which::which(p).ok()
    } else {
        None
    };
    let path = found.unwrap_or_else(|| p.to_path_buf());
    if path.is_file() {
        Ok(path)
    } else {
        Err(PromError::BinaryNotFound {
            searched: format!("{} (from {from}) does not exist", p.display()),
        })
    }
}

/// Runs `bin --version` with a time limit: a wrong binary must not hang us.
fn version_output(bin: &Path) -> Result<String, PromError> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PromError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PromError::BinaryVersion {
                    path: bin.to_path_buf(),
                    output: format!("no answer within {}s", VERSION_TIMEOUT.as_secs()),
                });
            }
        }
    }
    // Old Prometheus versions print the version on stderr.
    let mut text = String::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let _ = pipe.take(64 * 1024).read_to_string(&mut text);
    }
    Ok(text)
}

/// `prometheus, version 2.42.0+ds (branch: …)` → (2, 42, 0).
pub fn parse_version(output: &str) -> Option<(u32, u32, u32)> {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with("prometheus, version "))?;
    let rest = line.trim_start().strip_prefix("prometheus, version ")?;
    let core: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = core.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor, patch))
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller retries on a race).
pub fn free_loopback_port() -> Result<u16, std::io::Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[derive(Debug, Clone)]
pub struct LaunchConfig {
    pub bin: PathBuf,
    pub run_dir: PathBuf,
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    pub job: String,
    /// `host:port` of each scrape target.
    pub targets: Vec<String>,
    pub metrics_path: String,
    pub rule_files: Vec<PathBuf>,
    /// `host:port` of each Alertmanager.
    pub alertmanagers: Vec<String>,
}

/// A running Prometheus child. Dropping it without `stop` kills it.
pub struct ManagedPrometheus {
    child: Option<Child>,
    pid: u32,
    url: Url,
    client: PromClient,
    log_path: PathBuf,
    /// Dropping this ends the keeper thread; see `spawn_kept`.
    keeper: Option<mpsc::Sender<()>>,
}

impl std::fmt::Debug for ManagedPrometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedPrometheus")
            .field("pid", &self.pid)
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl ManagedPrometheus {
    pub async fn start(
        cfg: LaunchConfig,
        cancel: &CancellationToken,
    ) -> Result<ManagedPrometheus, PromError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| PromError::Io { what, path, source }
        };
        let data_dir = cfg.run_dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(io("create the run directory", &data_dir))?;
        let config_path = cfg.run_dir.join("prometheus.yml");
        let log_path = cfg.run_dir.join("prometheus.log");
        let config = PromConfig::new(
            cfg.scrape_interval,
            cfg.evaluation_interval,
            &cfg.job,
            &cfg.targets,
            &cfg.metrics_path,
            &cfg.rule_files,
            &cfg.alertmanagers,
        );
        let yaml = config.to_yaml().map_err(|message| PromError::Config {
            path: config_path.clone(),
            message,
        })?;
        std::fs::write(&config_path, yaml).map_err(io("write", &config_path))?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port =
                free_loopback_port().map_err(io("find a free port on", Path::new("127.0.0.1")))?;
            let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let mut managed = Self::spawn(&cfg.bin, &config_path, &data_dir, &log_path, port)?;
            match managed.wait_ready(cancel).await {
                Ok(()) => return Ok(managed),
                Err(e) => {
                    let tail = read_tail(&log_path, log_start, 400);
                    // Another process took the port between our probe and
                    // Prometheus' bind: try a new port.
                    let raced = tail.contains("address already in use");
                    drop(managed);
                    if !(raced && attempt < PORT_ATTEMPTS) {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn spawn(
        bin: &Path,
        config: &Path,
        data: &Path,
        log_path: &Path,
        port: u16,
    ) -> Result<ManagedPrometheus, PromError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|source| PromError::Io {
                what: "open the log file",
                path: log_path.to_path_buf(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| PromError::Io {
            what: "open the log file",
            path: log_path.to_path_buf(),
            source,
        })?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Own process group: a terminal Ctrl-C reaches slocheck only, which
            // then stops Prometheus in order.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let (child, keeper) = spawn_kept(cmd).map_err(|source| PromError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
        let pid = child.id();
        let url =
            Url::parse(&format!("http://127.0.0.1:{port}/")).map_err(|e| PromError::BadUrl {
                url: format!("http://127.0.0.1:{port}/"),
                reason: e.to_string(),
            })?;
        let client = PromClient::new(url.clone(), Duration::from_secs(10))?;
        Ok(ManagedPrometheus {
            child: Some(child),
            pid,
            url,
            client,
            log_path: log_path.to_path_buf(),
            keeper: Some(keeper),
        })
    }

    async fn wait_ready(&mut self, cancel: &CancellationToken) -> Result<(), PromError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .no_proxy()
            .build()
            .map_err(PromError::Client)?;
        let ready_url = self.url.join("-/ready").map_err(|e| PromError::BadUrl {
            url: self.url.to_string(),
            reason: e.to_string(),
        })?;
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            self.check_alive_when("before it was ready")?;
            if let Ok(resp) = http.get(ready_url.clone()).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(PromError::Cancelled("starting prometheus")),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        Err(PromError::NotReady {
            url: self.url.to_string(),
            waited: READY_TIMEOUT,
            log_tail: self.log_tail(20),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn client(&self) -> PromClient {
        self.client.clone()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Errors if Prometheus has exited (e.g. died mid-run), with its log tail.
    pub fn check_alive(&mut self) -> Result<(), PromError> {
        self.check_alive_when("during the run")
    }

    fn check_alive_when(&mut self, when: &'static str) -> Result<(), PromError> {
        let status = match self.child.as_mut() {
            None => Some("it was stopped".to_string()),
            Some(child) => match child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(describe(status)),
                Err(e) => Some(format!("cannot be checked: {e}")),
            },
        };
        match status {
            None => Ok(()),
            Some(status) => Err(PromError::Exited {
                status,
                when,
                log_tail: self.log_tail(20),
            }),
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = read_tail(&self.log_path, 0, 64 * 1024);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, up to 5 s for a clean shutdown, then SIGKILL; always reaped.
    pub async fn stop(mut self) -> Result<(), PromError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let result = if let Ok(None) = child.try_wait() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break Ok(()),
                    Ok(None) if started.elapsed() < STOP_GRACE => {
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
        result.map_err(|source| PromError::Io {
            what: "stop prometheus with pid",
            path: PathBuf::from(self.pid.to_string()),
            source,
        })
    }
}

impl Drop for ManagedPrometheus {
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
/// Prometheus mid-run.
pub(crate) fn spawn_kept(mut cmd: Command) -> Result<(Child, mpsc::Sender<()>), std::io::Error> {
    let (child_tx, child_rx) = mpsc::channel();
    let (keep_tx, keep_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("prometheus-keeper".into())
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

/// Up to `max` bytes from the end of the log, starting no earlier than `from`.
fn read_tail(path: &Path, from: u64, max: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version(
                "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)\n  build user: x"
            ),
            Some((2, 42, 0))
        );
        assert_eq!(
            parse_version("prometheus, version 3.1.0 (branch: HEAD)"),
            Some((3, 1, 0))
        );
        assert_eq!(
            parse_version("prometheus, version 2.30.0"),
            Some((2, 30, 0))
        );
        assert_eq!(parse_version("prometheus, version 2.45"), Some((2, 45, 0)));
        assert_eq!(parse_version("alertmanager, version 0.25.0"), None);
        assert_eq!(parse_version("prometheus, version x"), None);
        assert_eq!(parse_version(""), None);
        assert!(parse_version("prometheus, version 2.30.0").is_some_and(|v| v < MIN_VERSION));
    }

    #[test]
    fn free_port_is_loopback_bindable() {
        let port = free_loopback_port().expect("port");
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("still free");
    }
}
