//! Errors of the Prometheus client, launcher and pre-flight, each naming the
//! URL, binary or file involved (exit codes: `crate::error::Error::exit_code`).

use std::path::PathBuf;
use std::time::Duration;

fn secs(d: &Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("invalid prometheus URL {url:?}: {reason} (hint: use e.g. http://127.0.0.1:9090/)")]
    BadUrl { url: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error(
        "prometheus at {url} is unreachable: {reason} (hint: is it running and listening there? check --prometheus-url)"
    )]
    Unreachable {
        url: String,
        reason: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("{url} answered but is not a Prometheus API ({detail})")]
    NotPrometheus { url: String, detail: String },
    #[error("prometheus at {url} rejected query {expr:?}: {error_type}: {message}")]
    Query {
        url: String,
        expr: String,
        error_type: String,
        message: String,
    },
    #[error(
        "prometheus at {url} did not answer within {} ({attempts} attempts, each limited to {}) (hint: it may be overloaded; raise the timeout)",
        secs(elapsed),
        secs(per_request)
    )]
    Timeout {
        url: String,
        attempts: u32,
        elapsed: Duration,
        per_request: Duration,
    },
    #[error("prometheus at {url} kept failing: HTTP {status} after {attempts} attempts: {body}")]
    Unavailable {
        url: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    #[error(
        "target of job {job:?} is not up after {}: {detail} (hint: check that the target is listening and serves metrics)",
        secs(waited)
    )]
    TargetNotUp {
        job: String,
        waited: Duration,
        detail: String,
    },
    #[error("cancelled while {0}")]
    Cancelled(&'static str),
    #[error("prometheus at {url} is missing what the scenario needs: {}", missing.join("; "))]
    Preflight { url: String, missing: Vec<String> },
    #[error(
        "prometheus not found: {searched} (hint: run ci/setup.sh, pass --prometheus-bin, or use an external one with --prometheus-url)"
    )]
    BinaryNotFound { searched: String },
    #[error("{} is prometheus {found}, but slocheck needs >= {required} (hint: run ci/setup.sh or pass --prometheus-bin)", path.display())]
    BinaryTooOld {
        path: PathBuf,
        found: String,
        required: String,
    },
    #[error("cannot tell the version of {}: `--version` said {output:?} (hint: pass --prometheus-bin pointing at a Prometheus server binary)", path.display())]
    BinaryVersion { path: PathBuf, output: String },
    #[error("cannot run {}: {} (hint: check it is executable)", path.display(), crate::prom::rules::io_text(source))]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what} {}: {}", path.display(), crate::prom::rules::io_text(source))]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write prometheus config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("managed prometheus exited ({status}) {when}; last log lines:\n{log_tail}")]
    Exited {
        status: String,
        when: &'static str,
        log_tail: String,
    },
    #[error(
        "managed prometheus at {url} was not ready after {}; last log lines:\n{log_tail}",
        secs(waited)
    )]
    NotReady {
        url: String,
        waited: Duration,
        log_tail: String,
    },
}
