//! Finds, starts and stops a managed Pushgateway (where the evaluation batch
//! job pushes): one child per run on a free loopback port, in-memory only,
//! always reaped; the same start/ready helpers as Prometheus and Alertmanager.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::process::{
    ManagedChild, ReadyError, log_file, log_tail, start_on_free_port, wait_http_ready,
};

pub const ENV_BIN: &str = "SLOCHECK_PUSHGATEWAY_BIN";
/// Upstream's name first, then Debian's.
const NAMES: [&str; 2] = ["pushgateway", "prometheus-pushgateway"];
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PushgatewayError {
    #[error(
        "pushgateway not found: {searched} (hint: run ci/setup.sh, set {ENV_BIN}, or give [model] pushgateway_url)"
    )]
    BinaryNotFound { searched: String },
    #[error("cannot start pushgateway {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pushgateway exited {when} ({status}); last log lines: {log_tail}")]
    Exited {
        status: String,
        when: &'static str,
        log_tail: String,
    },
    #[error("pushgateway at {url} not ready after {}s; last log lines: {log_tail}", waited.as_secs())]
    NotReady {
        url: String,
        waited: Duration,
        log_tail: String,
    },
    #[error("pushgateway {url} is unreachable: {reason} (hint: check [model] pushgateway_url)")]
    Unreachable { url: String, reason: String },
    #[error("cannot build the HTTP client for the pushgateway readiness check: {0}")]
    Client(#[source] reqwest::Error),
    #[error("interrupted while starting the pushgateway")]
    Cancelled,
}

/// `explicit`, else `$SLOCHECK_PUSHGATEWAY_BIN`, else `pushgateway` or
/// `prometheus-pushgateway` on PATH.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, PushgatewayError> {
    let env = std::env::var_os(ENV_BIN)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    match explicit.map(Path::to_path_buf).or(env) {
        Some(p) => {
            let found = (p.components().count() == 1)
                .then(|| which::which(&p).ok())
                .flatten()
                .unwrap_or_else(|| p.clone());
            if found.is_file() {
                Ok(found)
            } else {
                Err(PushgatewayError::BinaryNotFound {
                    searched: format!("{} does not exist", p.display()),
                })
            }
        }
        None => NAMES
            .iter()
            .find_map(|n| which::which(n).ok())
            .ok_or_else(|| PushgatewayError::BinaryNotFound {
                searched: format!("neither {} on PATH", NAMES.join(" nor ")),
            }),
    }
}

/// A running Pushgateway. Dropping it without `stop` kills it.
pub struct ManagedPushgateway {
    child: ManagedChild,
    url: Url,
    log_path: PathBuf,
}

impl ManagedPushgateway {
    /// Starts `bin` on a free loopback port, logging into `run_dir`, and
    /// waits for `/-/ready`.
    pub async fn start(
        bin: &Path,
        run_dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<ManagedPushgateway, PushgatewayError> {
        let log_path = run_dir.join("pushgateway.log");
        let port_error = |source| PushgatewayError::Io {
            what: "find a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        };
        let log = &log_path;
        start_on_free_port(PORT_ATTEMPTS, log, port_error, |port| async move {
            let mut pg = Self::spawn(bin, log, port)?;
            pg.wait_ready(cancel).await?;
            Ok(pg)
        })
        .await
    }

    fn spawn(bin: &Path, log_path: &Path, port: u16) -> Result<Self, PushgatewayError> {
        let (out, err) = log_file(log_path).map_err(|source| PushgatewayError::Io {
            what: "open the log file",
            path: log_path.to_path_buf(),
            source,
        })?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Empty: in memory only, nothing left behind after the run.
            .arg("--persistence.file=")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = ManagedChild::spawn(cmd).map_err(|source| PushgatewayError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
        let url = Url::parse(&format!("http://127.0.0.1:{port}/"))
            .unwrap_or_else(|_| unreachable!("a loopback URL with a port always parses"));
        Ok(ManagedPushgateway {
            child,
            url,
            log_path: log_path.to_path_buf(),
        })
    }

    async fn wait_ready(&mut self, cancel: &CancellationToken) -> Result<(), PushgatewayError> {
        let ready = format!("{}-/ready", self.url);
        let alive = || self.check_alive_when("before it was ready");
        wait_http_ready(&ready, READY_TIMEOUT, alive, cancel)
            .await
            .map_err(|e| match e {
                ReadyError::Client(e) => PushgatewayError::Client(e),
                ReadyError::Exited(e) => e,
                ReadyError::Cancelled => PushgatewayError::Cancelled,
                ReadyError::TimedOut(waited) => PushgatewayError::NotReady {
                    url: self.url.to_string(),
                    waited,
                    log_tail: log_tail(&self.log_path, 20),
                },
            })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Errors if the Pushgateway has exited, with its log tail.
    pub fn check_alive(&mut self) -> Result<(), PushgatewayError> {
        self.check_alive_when("during the run")
    }

    fn check_alive_when(&mut self, when: &'static str) -> Result<(), PushgatewayError> {
        match self.child.exited() {
            None => Ok(()),
            Some(status) => Err(PushgatewayError::Exited {
                status,
                when,
                log_tail: log_tail(&self.log_path, 20),
            }),
        }
    }

    /// SIGTERM, up to 5 s, then SIGKILL; always reaped.
    pub async fn stop(self) -> Result<(), PushgatewayError> {
        let pid = self.child.pid();
        self.child
            .stop(STOP_GRACE)
            .await
            .map_err(|source| PushgatewayError::Io {
                what: "stop the pushgateway with pid",
                path: PathBuf::from(pid.to_string()),
                source,
            })
    }
}

/// Checks that an existing Pushgateway answers `/-/ready`.
pub async fn check_reachable(url: &Url) -> Result<(), PushgatewayError> {
    let unreachable = |reason: String| PushgatewayError::Unreachable {
        url: url.to_string(),
        reason,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(PushgatewayError::Client)?;
    let ready = format!("{}/-/ready", url.as_str().trim_end_matches('/'));
    match http.get(&ready).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(unreachable(format!("GET {ready}: HTTP {}", r.status()))),
        Err(e) => Err(unreachable(crate::evaluate::source::innermost(&e))),
    }
}
