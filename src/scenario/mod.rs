//! Scenario files: parse the TOML strictly, validate with file:line:col and
//! key path, and resolve into a typed `Plan`.
//!
//! The format is documented in README.md ("Scenario reference").

mod body;
mod ctx;
mod error;
mod expect;
mod faults;
mod load;
mod metrics;
mod model;
mod notified;
mod prometheus;
mod promql;
mod raw;
mod resolve;
mod slo;
mod target;
mod timeline;
mod transport;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::{Diagnostic, Diagnostics, Location, ScenarioError};
pub use faults::DEFAULT_FAULT_STATUS;
pub use model::body_features;
pub use prometheus::DEFAULT_RULE_FILES;
pub use promql::validate_promql;
pub use target::DEFAULT_BODY;
pub use timeline::timeline;

use crate::plan::Plan;
use ctx::Ctx;

/// Past the first few, syntax errors are mostly echoes of an earlier one.
const MAX_SYNTAX_ERRORS: usize = 5;

/// A resolved scenario and where its checked-later values were written.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub spans: ScenarioSpans,
}

/// Source locations the `Plan` does not carry, for checks made after
/// loading (alert names against the rules, rule files when read).
#[derive(Debug, Clone, Default)]
pub struct ScenarioSpans {
    /// The scenario file as the user typed it.
    pub file: PathBuf,
    /// One entry per alert expectation, in `plan.expects` order.
    pub alert_names: Vec<AlertRef>,
    /// One per `plan.prometheus.rule_files` entry, same order; defaults
    /// point at the `[prometheus]` table (or 1:1 when it is absent).
    pub rule_files: Vec<Located>,
}

/// Where an `alert = "…"` value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRef {
    /// Index into `plan.expects`.
    pub expect_index: usize,
    /// e.g. `expect[3].alert`.
    pub key_path: String,
    pub name: String,
    pub location: Location,
}

/// A key path and the location of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub key_path: String,
    pub location: Location,
}

impl ScenarioSpans {
    /// A diagnostic in the scenario's one-line format, e.g. for an unknown
    /// alert name: `spans.diagnostic(&a.key_path, a.location, "unknown alert …", Some("alerts in the rule files: …"))`.
    pub fn diagnostic(
        &self,
        key_path: &str,
        location: Location,
        message: &str,
        hint: Option<&str>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            location,
            key_path: key_path.to_string(),
            message: message.to_string(),
            hint: hint.map(str::to_string),
        }
    }
}

/// Reads and resolves the scenario at `path`. Relative paths inside it
/// (body files, rule files) resolve against its folder.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let text =
        crate::input::read_to_string(path, crate::input::Pipes::Allowed).map_err(|source| {
            ScenarioError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
    parse_str(&text, path)
}

/// Resolves scenario `text`; `path` is used only in messages and to
/// resolve relative files. Never panics, whatever the input.
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, ScenarioError> {
    let mut cx = Ctx::new(text, path);
    // Recoverable parsing reports every syntax error at once, promtool-style.
    let (table, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let mut syntax = syntax;
        syntax.sort_by_key(|e| e.span().map_or(0, |s| s.start));
        for e in syntax.iter().take(MAX_SYNTAX_ERRORS) {
            let span = e.span().unwrap_or(0..0);
            let msg = tidy(e.message());
            let key = text
                .get(span.clone())
                .filter(|k| !k.is_empty() && !k.contains('\n'));
            match key {
                Some(key) if msg == "duplicate key" => {
                    let msg = format!("invalid TOML: duplicate key `{key}`");
                    cx.error_hint(&span, "", msg, "a key may appear once per table");
                }
                _ => {
                    let msg = format!("invalid TOML: {msg}");
                    cx.error_hint(&span, "", msg, "check the TOML syntax at this point");
                }
            }
        }
        return Err(ScenarioError::Invalid(Diagnostics(cx.diags)));
    }
    let de = toml::de::Deserializer::from(table);
    let raw: raw::RawScenario = match serde_path_to_error::deserialize(de) {
        Ok(raw) => raw,
        Err(e) => {
            let key_path = key_path(e.path());
            let span = e.inner().span().unwrap_or(0..0);
            let msg = tidy(e.inner().message());
            let hint = match key_path.as_str() {
                "phase" | "expect" if msg.contains("expected a sequence") => Some(format!(
                    "write [[{key_path}]] with double brackets, one table per {key_path}"
                )),
                _ if msg.starts_with("unknown field") => {
                    Some("see the scenario reference in README.md for every key".to_string())
                }
                _ => None,
            };
            match hint {
                Some(h) => cx.error_hint(&span, &key_path, msg, &h),
                None => cx.error(&span, &key_path, msg),
            }
            return Err(ScenarioError::Invalid(Diagnostics(cx.diags)));
        }
    };
    match resolve::resolve(raw, &mut cx) {
        Some((plan, spans)) if cx.diags.is_empty() => Ok(Loaded { plan, spans }),
        _ => {
            if cx.diags.is_empty() {
                // Every rejection path reports why; this keeps a missed one
                // from becoming an error with no message.
                cx.error(
                    &(0..0),
                    "",
                    "scenario could not be resolved (hint: please report this)",
                );
            }
            let mut diags = cx.diags;
            diags.sort_by_key(|d| (d.location.line, d.location.col));
            Err(ScenarioError::Invalid(Diagnostics(diags)))
        }
    }
}

/// `phase[2].faults.status` from serde's path, with 1-based indexes to match
/// the expectation ids users see (`expect[1]` is the first table).
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{}]", index + 1)),
            // toml::Spanned travels as a struct with private keys.
            Segment::Map { key } if key.starts_with("$__") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// One line, with serde's Rust type names replaced by words users know.
fn tidy(msg: &str) -> String {
    let one = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    one.replace("expected f64", "expected a number")
        .replace("expected i64", "expected an integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected a boolean", "expected true or false")
}
