//! Finds, configures, starts and stops a managed Prometheus: one child
//! process per run, on a free loopback port, always reaped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use super::client::PromClient;
use super::config::{PromConfig, ScrapeConfig};
use super::error::PromError;
pub use crate::process::free_loopback_port;
use crate::process::{ManagedChild, ReadyError, log_file, start_on_free_port, wait_http_ready};

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
    /// Further scrape jobs, e.g. the generator's `--metrics-listen`.
    pub extra_jobs: Vec<ScrapeConfig>,
    /// Some: scrape the targets over https with these TLS settings.
    pub scrape_tls: Option<super::config::ScrapeTls>,
}

/// A running Prometheus child. Dropping it without `stop` kills it.
pub struct ManagedPrometheus {
    child: ManagedChild,
    pid: u32,
    url: Url,
    client: PromClient,
    log_path: PathBuf,
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
        let mut config = PromConfig::new(
            cfg.scrape_interval,
            cfg.evaluation_interval,
            &cfg.job,
            &cfg.targets,
            &cfg.metrics_path,
            &cfg.rule_files,
            &cfg.alertmanagers,
        )
        .with_scrape_tls(cfg.scrape_tls.clone());
        // After the TLS settings: the generator's own exporter is plain http.
        config.scrape_configs.extend(cfg.extra_jobs);
        let yaml = config.to_yaml().map_err(|message| PromError::Config {
            path: config_path.clone(),
            message,
        })?;
        std::fs::write(&config_path, yaml).map_err(io("write", &config_path))?;

        let port_error = io("find a free port on", Path::new("127.0.0.1"));
        start_on_free_port(PORT_ATTEMPTS, &log_path, port_error, |port| {
            let (bin, config_path, data_dir, log_path) =
                (&cfg.bin, &config_path, &data_dir, &log_path);
            async move {
                let mut managed = Self::spawn(bin, config_path, data_dir, log_path, port)?;
                managed.wait_ready(cancel).await?;
                Ok(managed)
            }
        })
        .await
    }

    fn spawn(
        bin: &Path,
        config: &Path,
        data: &Path,
        log_path: &Path,
        port: u16,
    ) -> Result<ManagedPrometheus, PromError> {
        let (log, log_err) = log_file(log_path).map_err(|source| PromError::Io {
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
            .stderr(log_err);
        let child = ManagedChild::spawn(cmd).map_err(|source| PromError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
        let pid = child.pid();
        let url =
            Url::parse(&format!("http://127.0.0.1:{port}/")).map_err(|e| PromError::BadUrl {
                url: format!("http://127.0.0.1:{port}/"),
                reason: e.to_string(),
            })?;
        let client = PromClient::new(url.clone(), Duration::from_secs(10))?;
        Ok(ManagedPrometheus {
            child,
            pid,
            url,
            client,
            log_path: log_path.to_path_buf(),
        })
    }

    async fn wait_ready(&mut self, cancel: &CancellationToken) -> Result<(), PromError> {
        let ready_url = self.url.join("-/ready").map_err(|e| PromError::BadUrl {
            url: self.url.to_string(),
            reason: e.to_string(),
        })?;
        let alive = || self.check_alive_when("before it was ready");
        wait_http_ready(ready_url.as_str(), READY_TIMEOUT, alive, cancel)
            .await
            .map_err(|e| match e {
                ReadyError::Client(e) => PromError::Client(e),
                ReadyError::Exited(e) => e,
                ReadyError::Cancelled => PromError::Cancelled("starting prometheus"),
                ReadyError::TimedOut(waited) => PromError::NotReady {
                    url: self.url.to_string(),
                    waited,
                    log_tail: self.log_tail(20),
                },
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
        match self.child.exited() {
            None => Ok(()),
            Some(status) => Err(PromError::Exited {
                status,
                when,
                log_tail: self.log_tail(20),
            }),
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log_path, lines)
    }

    /// SIGTERM, up to 5 s for a clean shutdown, then SIGKILL; always reaped.
    pub async fn stop(self) -> Result<(), PromError> {
        let pid = self.pid;
        self.child
            .stop(STOP_GRACE)
            .await
            .map_err(|source| PromError::Io {
                what: "stop prometheus with pid",
                path: PathBuf::from(pid.to_string()),
                source,
            })
    }
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
}
