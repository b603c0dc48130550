//! Finds, starts and stops a managed Alertmanager: one child per run on a
//! free loopback port, no cluster listener, storage in the run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use super::error::AmError;
use crate::process::{
    ManagedChild, ReadyError, log_file, log_tail, start_on_free_port, wait_http_ready,
};

pub const ENV_BIN: &str = "SLOCHECK_ALERTMANAGER_BIN";
/// Upstream's name first, then Debian's.
const NAMES: [&str; 2] = ["alertmanager", "prometheus-alertmanager"];
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: u32 = 3;

/// `explicit` (flag), else `$SLOCHECK_ALERTMANAGER_BIN`, else the first of
/// `alertmanager` / `prometheus-alertmanager` on PATH.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, AmError> {
    let env = std::env::var_os(ENV_BIN)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let given = |p: &Path, from: &str| {
        let found = (p.components().count() == 1)
            .then(|| which::which(p).ok())
            .flatten()
            .unwrap_or_else(|| p.to_path_buf());
        if found.is_file() {
            Ok(found)
        } else {
            Err(AmError::BinaryNotFound {
                searched: format!("{} (from {from}) does not exist", p.display()),
            })
        }
    };
    match (explicit, env) {
        (Some(p), _) => given(p, "--alertmanager-bin"),
        (None, Some(p)) => given(&p, ENV_BIN),
        (None, None) => NAMES
            .iter()
            .find_map(|n| which::which(n).ok())
            .ok_or_else(|| AmError::BinaryNotFound {
                searched: format!("neither {} on PATH", NAMES.join(" nor ")),
            }),
    }
}

/// A running Alertmanager. Dropping it without `stop` kills it.
pub struct ManagedAlertmanager {
    child: ManagedChild,
    url: Url,
    log_path: PathBuf,
}

impl ManagedAlertmanager {
    /// Writes `config_yaml` to `<run_dir>/alertmanager.yml`, starts the
    /// binary and waits for `/-/ready`.
    pub async fn start(
        bin: &Path,
        run_dir: &Path,
        config_yaml: &str,
        cancel: &CancellationToken,
    ) -> Result<ManagedAlertmanager, AmError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| AmError::Io { what, path, source }
        };
        let storage = run_dir.join("alertmanager-data");
        std::fs::create_dir_all(&storage).map_err(io("create", &storage))?;
        let config = run_dir.join("alertmanager.yml");
        std::fs::write(&config, config_yaml).map_err(io("write", &config))?;
        let log_path = run_dir.join("alertmanager.log");
        let port_error = io("find a free port on", Path::new("127.0.0.1"));
        let (config, storage, log) = (&config, &storage, &log_path);
        start_on_free_port(PORT_ATTEMPTS, log, port_error, |port| async move {
            let mut am = Self::spawn(bin, config, storage, log, port)?;
            am.wait_ready(cancel).await?;
            Ok(am)
        })
        .await
    }

    fn spawn(
        bin: &Path,
        config: &Path,
        storage: &Path,
        log_path: &Path,
        port: u16,
    ) -> Result<ManagedAlertmanager, AmError> {
        let (out, err) = log_file(log_path).map_err(|source| AmError::Io {
            what: "open the log file",
            path: log_path.to_path_buf(),
            source,
        })?;
        let url_text = format!("http://127.0.0.1:{port}/");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url={url_text}"))
            // Empty: no gossip listener, which would bind on all interfaces.
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = ManagedChild::spawn(cmd).map_err(|source| AmError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
        let url = Url::parse(&url_text)
            .unwrap_or_else(|_| unreachable!("a loopback URL with a port always parses"));
        Ok(ManagedAlertmanager {
            child,
            url,
            log_path: log_path.to_path_buf(),
        })
    }

    async fn wait_ready(&mut self, cancel: &CancellationToken) -> Result<(), AmError> {
        let ready = format!("{}-/ready", self.url);
        let alive = || self.check_alive_when("before it was ready");
        wait_http_ready(&ready, READY_TIMEOUT, alive, cancel)
            .await
            .map_err(|e| match e {
                ReadyError::Client(e) => AmError::Client(e),
                ReadyError::Exited(e) => e,
                ReadyError::Cancelled => AmError::Cancelled("starting alertmanager"),
                ReadyError::TimedOut(waited) => AmError::NotReady {
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

    /// `127.0.0.1:PORT`, as Prometheus's `alerting` section wants it.
    pub fn host_port(&self) -> String {
        format!(
            "127.0.0.1:{}",
            self.url
                .port()
                .unwrap_or_else(|| unreachable!("built with a port"))
        )
    }

    /// Errors if Alertmanager has exited, with its log tail.
    pub fn check_alive(&mut self) -> Result<(), AmError> {
        self.check_alive_when("during the run")
    }

    fn check_alive_when(&mut self, when: &'static str) -> Result<(), AmError> {
        match self.child.exited() {
            None => Ok(()),
            Some(status) => Err(AmError::Exited {
                status,
                when,
                log_tail: log_tail(&self.log_path, 20),
            }),
        }
    }

    /// SIGTERM, up to 5 s, then SIGKILL; always reaped.
    pub async fn stop(self) -> Result<(), AmError> {
        let pid = self.child.pid();
        self.child
            .stop(STOP_GRACE)
            .await
            .map_err(|source| AmError::Io {
                what: "stop alertmanager with pid",
                path: PathBuf::from(pid.to_string()),
                source,
            })
    }
}
