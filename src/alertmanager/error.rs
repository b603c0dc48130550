//! What can go wrong while preparing, starting or stopping Alertmanager and
//! its webhook recorder.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AmError {
    #[error(
        "alertmanager not found: {searched} (hint: run ci/setup.sh, or pass --alertmanager-bin / set SLOCHECK_ALERTMANAGER_BIN)"
    )]
    BinaryNotFound { searched: String },
    #[error("cannot run alertmanager {}: {source} (hint: check it is executable)", path.display())]
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
    /// The user's config cannot be read (too large, a pipe, unreadable).
    #[error("cannot read the alertmanager config {}: {}", path.display(), crate::prom::rules::io_text(source))]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading alertmanager config {}: {message} (hint: check it with `amtool check-config`)", path.display())]
    ConfigParse { path: PathBuf, message: String },
    #[error("alertmanager config {}: {message}", path.display())]
    ConfigShape { path: PathBuf, message: String },
    #[error("cannot write the alertmanager config: {0}")]
    ConfigEmit(String),
    #[error("alertmanager at {url} was not ready after {}s; last log lines:\n{log_tail}", waited.as_secs())]
    NotReady {
        url: String,
        waited: Duration,
        log_tail: String,
    },
    #[error("alertmanager exited {when} ({status}); last log lines:\n{log_tail}")]
    Exited {
        status: String,
        when: &'static str,
        log_tail: String,
    },
    #[error("cannot start the webhook recorder on 127.0.0.1: {0}")]
    Recorder(#[source] std::io::Error),
    #[error("cannot build an HTTP client for alertmanager: {0}")]
    Client(#[source] reqwest::Error),
    #[error(
        "prometheus did not discover alertmanager {url} within {}s (it lists: {listed}) (hint: check the alerting section of the generated prometheus.yml in the run directory)",
        waited.as_secs()
    )]
    NotDiscovered {
        url: String,
        waited: Duration,
        listed: String,
    },
    #[error("interrupted while {0}")]
    Cancelled(&'static str),
}
