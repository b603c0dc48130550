//! Running the target: config and CLI arguments, binding with clear errors,
//! the background server handle and the `slocheck target` foreground loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::ModelError;
use super::router::app;
use super::state::AppState;

/// How long `shutdown` waits for in-flight requests before aborting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long connections get to close once injected delays are cut short.
pub const HARD_STOP_GRACE: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct TargetConfig {
    pub listen: SocketAddr,
    /// Honour the fault header and the admin API.
    pub faults_enabled: bool,
    /// Required to listen on a non-loopback address; never logged.
    pub admin_token: Option<String>,
    /// False only for the overhead benchmark.
    pub metrics_enabled: bool,
    /// Seed of the admin fault sampler.
    pub seed: u64,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this certificate.
    pub tls: Option<TargetTls>,
}

/// `--tls-cert` and `--tls-key`: PEM files.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Default for TargetConfig {
    /// Loopback on an ephemeral port, faults and metrics on: what `slocheck run` uses.
    fn default() -> Self {
        TargetConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            faults_enabled: true,
            admin_token: None,
            metrics_enabled: true,
            seed: 0,
            tls: None,
        }
    }
}

impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("listen", &self.listen)
            .field("faults_enabled", &self.faults_enabled)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("metrics_enabled", &self.metrics_enabled)
            .field("seed", &self.seed)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("cannot listen on {addr}: {reason} (hint: {hint})")]
    Bind {
        addr: SocketAddr,
        reason: String,
        hint: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing to listen on non-loopback address {addr} without an admin token (hint: pass --admin-token or set SLOCHECK_ADMIN_TOKEN, or listen on 127.0.0.1)"
    )]
    TokenRequired { addr: SocketAddr },
    #[error(
        "admin token is empty (hint: pass a non-empty --admin-token or unset SLOCHECK_ADMIN_TOKEN)"
    )]
    EmptyToken,
    #[error(
        "cannot serve TLS: {0} (hint: --tls-cert and --tls-key are PEM files, e.g. from `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes`)"
    )]
    Tls(#[source] crate::tls::TlsError),
    #[error("cannot train the built-in model")]
    Model(#[source] ModelError),
    #[error("cannot install the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("target server on {addr} failed")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A running target in the background of this process.
#[derive(Debug)]
pub struct TargetHandle {
    addr: SocketAddr,
    tls: bool,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl TargetHandle {
    /// Binds (port 0 picks a free one), spawns the server and returns at once.
    pub async fn start(cfg: TargetConfig) -> Result<TargetHandle, TargetError> {
        check_security(&cfg)?;
        let tls_config = cfg
            .tls
            .as_ref()
            .map(|t| crate::tls::server_config(&t.cert, &t.key))
            .transpose()
            .map_err(TargetError::Tls)?;
        let state = AppState::new(&cfg).map_err(TargetError::Model)?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| bind_error(cfg.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| bind_error(cfg.listen, e))?;
        let shutdown = CancellationToken::new();
        let hard_stop = state.hard_stop().clone();
        let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
        let signal = shutdown.clone().cancelled_owned();
        // axum serves HTTP/1.1 and HTTP/2 (prior knowledge in cleartext,
        // ALPN over TLS) on every connection.
        let task = match tls_config {
            None => tokio::spawn(async move {
                axum::serve(listener, service)
                    .with_graceful_shutdown(signal)
                    .await
            }),
            Some(config) => {
                use axum::serve::ListenerExt;
                // `tap_io` only to get axum's ConnectInfo for any listener.
                let listener = super::tls::TlsListener::new(listener, config).tap_io(|_| {});
                tokio::spawn(async move {
                    axum::serve(listener, service)
                        .with_graceful_shutdown(signal)
                        .await
                })
            }
        };
        Ok(TargetHandle {
            addr,
            tls: cfg.tls.is_some(),
            shutdown,
            hard_stop,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/` (`https://` when serving TLS); an
    /// unspecified listen address (0.0.0.0, ::) is reached through loopback.
    pub fn base_url(&self) -> Url {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        // A SocketAddr always renders as a valid URL authority.
        let scheme = if self.tls { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{addr}/"))
            .unwrap_or_else(|_| unreachable!("socket address {addr} is a valid URL authority"))
    }

    /// Graceful: stops accepting, lets in-flight requests finish for up to
    /// [`SHUTDOWN_GRACE`], then cuts injected delays short (answering 503) and
    /// aborts whatever is still left after [`HARD_STOP_GRACE`].
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_ok()
        {
            return;
        }
        // Aborting the accept task alone would leave connection tasks running.
        self.hard_stop.cancel();
        if tokio::time::timeout(HARD_STOP_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }

    /// Waits until the server stops on its own (it only does on an I/O error).
    async fn wait(&mut self) -> Result<(), TargetError> {
        match (&mut self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(TargetError::Serve {
                addr: self.addr,
                source,
            }),
            Err(join) => Err(TargetError::Serve {
                addr: self.addr,
                source: io::Error::other(join),
            }),
        }
    }
}

fn check_security(cfg: &TargetConfig) -> Result<(), TargetError> {
    match &cfg.admin_token {
        Some(t) if t.trim().is_empty() => Err(TargetError::EmptyToken),
        None if !cfg.listen.ip().is_loopback() => {
            Err(TargetError::TokenRequired { addr: cfg.listen })
        }
        _ => Ok(()),
    }
}

fn bind_error(addr: SocketAddr, source: io::Error) -> TargetError {
    let (reason, hint) = match source.kind() {
        io::ErrorKind::AddrInUse => (
            "address already in use".to_owned(),
            "pick another --listen port",
        ),
        io::ErrorKind::AddrNotAvailable => (
            "address not available on this machine".to_owned(),
            "listen on 127.0.0.1 or an address of this host",
        ),
        io::ErrorKind::PermissionDenied => {
            ("permission denied".to_owned(), "use a port above 1023")
        }
        _ => (source.to_string(), "check the --listen address"),
    };
    TargetError::Bind {
        addr,
        reason,
        hint,
        source,
    }
}

/// `slocheck target`: serves until SIGINT or SIGTERM, then shuts down
/// gracefully (bounded).
pub async fn serve_until_signal(cfg: TargetConfig) -> Result<(), TargetError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).map_err(|source| TargetError::Signal {
        signal: "SIGINT",
        source,
    })?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|source| TargetError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let (faults, metrics, token) = (
        cfg.faults_enabled,
        cfg.metrics_enabled,
        cfg.admin_token.is_some(),
    );
    let protocols = if cfg.tls.is_some() {
        "HTTP/1.1 and HTTP/2 over TLS"
    } else {
        "HTTP/1.1 and HTTP/2 (h2c)"
    };
    let mut handle = TargetHandle::start(cfg).await?;
    println!(
        "slocheck target listening on {} ({protocols}; model {}, faults {}, metrics {}, admin token {})",
        handle.base_url(),
        super::model::MODEL_NAME,
        on_off(faults),
        on_off(metrics),
        if token { "required" } else { "not set" },
    );
    tokio::select! {
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
        res = handle.wait() => return res,
    }
    eprintln!("slocheck target: shutting down");
    handle.shutdown().await;
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Arguments of `slocheck target`.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Address to listen on. A non-loopback address requires --admin-token.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Token required as `Authorization: Bearer <token>` by /admin/* and by the
    /// x-slocheck-fault header from non-loopback peers.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLOCHECK_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Ignore the x-slocheck-fault header and refuse the admin fault API.
    #[arg(long)]
    pub no_faults: bool,

    /// Serve without the metrics middleware and /metrics (overhead benchmark only).
    #[arg(long, hide = true)]
    pub no_metrics: bool,

    /// Seed of the admin API's fault sampler (same seed, same faulted requests).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl From<TargetArgs> for TargetConfig {
    fn from(a: TargetArgs) -> Self {
        TargetConfig {
            listen: a.listen,
            faults_enabled: !a.no_faults,
            admin_token: a.admin_token,
            metrics_enabled: !a.no_metrics,
            seed: a.seed,
            tls: a
                .tls_cert
                .zip(a.tls_key)
                .map(|(cert, key)| TargetTls { cert, key }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        target: TargetArgs,
    }

    #[test]
    fn args_defaults_and_conversion() {
        let cfg: TargetConfig = Cli::try_parse_from(["x"]).unwrap().target.into();
        assert_eq!(cfg.listen, "127.0.0.1:8000".parse().unwrap());
        assert!(cfg.faults_enabled && cfg.metrics_enabled);
        let cfg: TargetConfig =
            Cli::try_parse_from(["x", "--no-faults", "--seed", "9", "--listen", "127.0.0.1:0"])
                .unwrap()
                .target
                .into();
        assert!(!cfg.faults_enabled);
        assert_eq!(cfg.seed, 9);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let cfg = TargetConfig {
            admin_token: Some("hunter2".into()),
            ..TargetConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn security_rules() {
        let open: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let no_token = TargetConfig {
            listen: open,
            ..TargetConfig::default()
        };
        assert!(matches!(
            check_security(&no_token),
            Err(TargetError::TokenRequired { .. })
        ));
        let token = TargetConfig {
            admin_token: Some("t".into()),
            ..no_token.clone()
        };
        assert!(check_security(&token).is_ok());
        let blank = TargetConfig {
            admin_token: Some(" ".into()),
            ..TargetConfig::default()
        };
        assert!(matches!(
            check_security(&blank),
            Err(TargetError::EmptyToken)
        ));
    }

    #[test]
    fn addr_in_use_message() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let err = bind_error(addr, io::Error::from(io::ErrorKind::AddrInUse));
        assert_eq!(
            err.to_string(),
            "cannot listen on 127.0.0.1:8000: address already in use (hint: pick another --listen port)"
        );
    }
}
