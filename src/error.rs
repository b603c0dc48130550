//! The top-level error of a command, the one place that maps every kind of
//! failure to its documented exit code, and the one-line rendering of an
//! error with its whole `#[source]` chain. Library modules keep their own
//! typed errors.

use std::path::PathBuf;

use crate::alertmanager::AmError;
use crate::exit;
use crate::load::LoadError;
use crate::load::client::ClientError;
use crate::prom::PromError;
use crate::prom::rules::RulesError;
use crate::target::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file is invalid (message carries file:line:col).
    #[error("{0}")]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// A rule file is invalid or missing.
    #[error("{0}")]
    Rules(#[from] RulesError),
    /// Something else about the input is invalid (scenario vs rules, flags).
    #[error("{0}")]
    Invalid(String),
    /// Prometheus missing, unreachable, not ready, died.
    #[error("{0}")]
    Prometheus(#[from] PromError),
    /// Alertmanager or its webhook recorder failed, or its config is invalid.
    #[error("{0}")]
    Alertmanager(#[from] AmError),
    /// The built-in target could not start (e.g. port in use).
    #[error("{0}")]
    Target(#[from] TargetError),
    /// The load engine could not run.
    #[error("{0}")]
    Load(#[from] LoadError),
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
    /// The documented exit code (README, "Exit codes"): 2 for what the user
    /// wrote (scenario, rules, configs, flags), 3 for what the machine did,
    /// 130/143 for a signal. This is the only mapping in the crate.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario(_) | Error::Invalid(_) => exit::INVALID,
            Error::Rules(e) => match e {
                // Writing the time-scaled copies into the run directory is
                // the machine's business, not the rules'.
                RulesError::Write { .. } | RulesError::Serialize { .. } => exit::ENVIRONMENT,
                _ => exit::INVALID,
            },
            Error::Prometheus(e) => match e {
                PromError::BadUrl { .. } => exit::INVALID,
                PromError::Cancelled(_) => exit::INTERRUPTED,
                _ => exit::ENVIRONMENT,
            },
            Error::Alertmanager(e) => match e {
                AmError::ConfigRead { .. }
                | AmError::ConfigParse { .. }
                | AmError::ConfigShape { .. } => exit::INVALID,
                AmError::Cancelled(_) => exit::INTERRUPTED,
                _ => exit::ENVIRONMENT,
            },
            Error::Target(e) => match e {
                // Unreadable --tls-cert / --tls-key: a bad command line.
                TargetError::TokenRequired { .. }
                | TargetError::EmptyToken
                | TargetError::Tls(_) => exit::INVALID,
                _ => exit::ENVIRONMENT,
            },
            Error::Load(LoadError::Client(e)) => match e {
                // What the network and the server did: name resolution,
                // certificates, handshakes, protocol support, reachability.
                ClientError::Resolve { .. }
                | ClientError::NoAddress { .. }
                | ClientError::Certificate { .. }
                | ClientError::Handshake { .. }
                | ClientError::NoHttp2 { .. }
                | ClientError::Unreachable { .. } => exit::ENVIRONMENT,
                ClientError::TlsConfig {
                    source: crate::tls::TlsError::NoSystemRoots,
                    ..
                } => exit::ENVIRONMENT,
                _ => exit::INVALID,
            },
            Error::Load(_) | Error::Environment(_) | Error::Io { .. } => exit::ENVIRONMENT,
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

    /// The message with every cause, as the CLI prints it.
    pub fn full(&self) -> String {
        chain(self)
    }
}

/// `err` and its `#[source]` causes on one line: `top: cause: cause`.
///
/// Many messages already quote their cause (`cannot read x: No such file…`,
/// or the innermost cause of a chain as the `reason`); a cause whose text is
/// already in the line (ignoring case and `(os error N)`) is not repeated,
/// and neither is anything above it. A trailing `(hint: …)` of the top
/// message stays at the end of the line.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let top = err.to_string();
    let (mut line, hint) = match top.rfind(" (hint: ") {
        Some(i) if top.ends_with(')') => (top[..i].to_string(), &top[i..]),
        _ => (top.clone(), ""),
    };
    let mut causes = Vec::new();
    let mut next = err.source();
    while let Some(c) = next {
        causes.push(c.to_string());
        next = c.source();
    }
    let mut i = 0;
    while i < causes.len() {
        // Quoting may change the case ("connection refused").
        let told = format!("{top} {line}").to_lowercase();
        let known = |t: &String| {
            let t = without_os_error(t).to_lowercase();
            t.is_empty() || told.contains(&t)
        };
        // The deepest cause already told: everything above it is covered.
        if let Some(j) = (i..causes.len()).rev().find(|&j| known(&causes[j])) {
            i = j + 1;
            continue;
        }
        line.push_str(": ");
        line.push_str(&causes[i]);
        i += 1;
    }
    line.push_str(hint);
    line
}

/// `No such file or directory (os error 2)` → `No such file or directory`:
/// messages quote io errors without the number.
fn without_os_error(text: &str) -> &str {
    match text.find(" (os error") {
        Some(i) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug, thiserror::Error)]
    #[error("outer {what} (hint: do this)")]
    struct Outer {
        what: &'static str,
        #[source]
        source: Middle,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] io::Error);

    #[test]
    fn causes_follow_on_one_line_before_the_hint() {
        let e = Outer {
            what: "x",
            source: Middle(io::Error::other("inner")),
        };
        assert_eq!(chain(&e), "outer x: middle: inner (hint: do this)");
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated_nor_anything_above_it() {
        // The message quotes the innermost cause: the middle one is skipped too.
        let e = Outer {
            what: "failed: inner",
            source: Middle(io::Error::other("inner")),
        };
        assert_eq!(chain(&e), "outer failed: inner (hint: do this)");
        let io = io::Error::from_raw_os_error(2);
        let e = Error::io("read", "/x")(io);
        assert_eq!(e.full(), e.to_string());
        // io_text-style quoting drops "(os error N)"; still the same cause.
        let e = Error::Rules(RulesError::Read {
            path: "r.yml".into(),
            source: io::Error::from_raw_os_error(2),
        });
        assert_eq!(e.full(), e.to_string());
        assert!(!e.full().contains("os error"), "{}", e.full());
    }

    #[test]
    fn wrapped_load_thread_error_shows_its_cause() {
        let e = Error::from(LoadError::Thread {
            shard: 1,
            source: io::Error::new(io::ErrorKind::OutOfMemory, "no memory for a stack"),
        });
        assert_eq!(
            e.full(),
            "starting load thread 1 failed: no memory for a stack"
        );
    }

    #[test]
    fn one_mapping_for_every_exit_code() {
        let io = || io::Error::from_raw_os_error(13);
        let cases: Vec<(Error, u8)> = vec![
            (Error::Invalid("x".into()), exit::INVALID),
            (
                RulesError::Write {
                    path: "a".into(),
                    source: io(),
                }
                .into(),
                exit::ENVIRONMENT,
            ),
            (
                RulesError::Read {
                    path: "a".into(),
                    source: io(),
                }
                .into(),
                exit::INVALID,
            ),
            (
                PromError::BadUrl {
                    url: "u".into(),
                    reason: "r".into(),
                }
                .into(),
                exit::INVALID,
            ),
            (
                PromError::BinaryNotFound {
                    searched: "s".into(),
                }
                .into(),
                exit::ENVIRONMENT,
            ),
            (
                AmError::ConfigShape {
                    path: "am.yml".into(),
                    message: "has no route mapping".into(),
                }
                .into(),
                exit::INVALID,
            ),
            (
                AmError::BinaryNotFound {
                    searched: "x".into(),
                }
                .into(),
                exit::ENVIRONMENT,
            ),
            (
                LoadError::Client(ClientError::BadScheme {
                    url: "ftp://x".into(),
                })
                .into(),
                exit::INVALID,
            ),
            (LoadError::ShardLost { shard: 0 }.into(), exit::ENVIRONMENT),
            (Error::io("create", "/x")(io()), exit::ENVIRONMENT),
            (Error::Interrupted(exit::TERMINATED), exit::TERMINATED),
        ];
        for (e, want) in cases {
            assert_eq!(e.exit_code(), want, "{e}");
        }
    }
}
