//! The top-level error of a command, and its exit code. Library modules keep
//! their own typed errors; this enum only says which documented exit code
//! each kind of failure maps to.

use std::path::PathBuf;

use crate::exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file is invalid (message carries file:line:col).
    #[error("{0}")]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// A rule file is invalid or missing.
    #[error("{0}")]
    Rules(#[from] crate::prom::rules::RulesError),
    /// Something else about the input is invalid (scenario vs rules, flags).
    #[error("{0}")]
    Invalid(String),
    /// Prometheus missing, unreachable, not ready, died.
    #[error("{0}")]
    Prometheus(#[from] crate::prom::PromError),
    /// Alertmanager or its webhook recorder failed, or its config is invalid.
    #[error("{0}")]
    Alertmanager(#[from] crate::alertmanager::AmError),
    /// The Pushgateway is missing, unreachable or died.
    #[error("{0}")]
    Pushgateway(#[from] crate::pushgateway::PushgatewayError),
    /// The built-in target could not start (e.g. port in use).
    #[error("{0}")]
    Target(#[from] crate::target::TargetError),
    /// The load engine could not run.
    #[error("{0}")]
    Load(#[from] crate::load::LoadError),
    /// The environment failed in a way not covered above.
    #[error("{0}")]
    Environment(String),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Cancelled by SIGINT / SIGTERM; carries the exit code to use.
    #[error("interrupted")]
    Interrupted(u8),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario(_) | Error::Rules(_) | Error::Invalid(_) => exit::INVALID,
            Error::Prometheus(_)
            | Error::Target(_)
            | Error::Load(_)
            | Error::Environment(_)
            | Error::Io { .. } => exit::ENVIRONMENT,
            Error::Alertmanager(e) => e.exit_code(),
            Error::Pushgateway(e) => e.exit_code(),
            Error::Interrupted(code) => *code,
        }
    }

    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
