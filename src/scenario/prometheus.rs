//! `[prometheus]` resolved: which Prometheus, its intervals, the rule files
//! (made absolute) and the time scale.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::Located;
use super::ctx::{Ctx, duration_or, parse_url};
use super::raw::*;
use crate::plan::*;

/// Rule files used when `rule_files` is omitted, relative to the scenario.
pub const DEFAULT_RULE_FILES: [&str; 2] = ["../rules/recording.yml", "../rules/alerts.yml"];

pub(super) fn resolve_prometheus(
    p: Option<&S<RawPrometheus>>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> (Option<PrometheusPlan>, Vec<Located>) {
    let span = p.map_or(0..0, S::span);
    let p = p.map(S::get_ref);
    let mut ok = true;
    let url = match p.and_then(|p| p.url.as_ref()) {
        Some(u) => {
            let url = parse_url(u, "prometheus.url", cx);
            ok &= url.is_some();
            url
        }
        None => None,
    };
    let scrape = duration_or(
        p.and_then(|p| p.scrape_interval.as_ref()),
        Duration::from_secs(1),
        "prometheus.scrape_interval",
        cx,
    );
    let eval = duration_or(
        p.and_then(|p| p.evaluation_interval.as_ref()),
        Duration::from_secs(1),
        "prometheus.evaluation_interval",
        cx,
    );
    let mut rule_files = Vec::new();
    let mut rule_spans = Vec::new();
    match p.and_then(|p| p.rule_files.as_ref()) {
        Some(list) => {
            for (i, f) in list.get_ref().iter().enumerate() {
                let path = format!("prometheus.rule_files[{}]", i + 1);
                if f.get_ref().trim().is_empty() {
                    cx.error(&f.span(), &path, "rule file path must not be empty");
                    ok = false;
                    continue;
                }
                rule_files.push(absolute(&dir.join(f.get_ref())));
                rule_spans.push(Located {
                    key_path: path,
                    location: cx.location(&f.span()),
                });
            }
        }
        None => {
            for (i, f) in DEFAULT_RULE_FILES.iter().enumerate() {
                rule_files.push(absolute(&dir.join(f)));
                let key_path = format!("prometheus.rule_files[{}]", i + 1);
                rule_spans.push(Located {
                    key_path,
                    location: cx.location(&span),
                });
            }
        }
    }
    let time_scale = match p.and_then(|p| p.time_scale.as_ref()) {
        Some(t) => {
            let v = *t.get_ref();
            if !(v.is_finite() && v >= 1.0) {
                cx.error_hint(
                    &t.span(),
                    "prometheus.time_scale",
                    format!("time_scale must be ≥ 1, got {v}"),
                    "1 runs the rules as written; 20 turns 5m windows into 15s",
                );
                ok = false;
            } else if v != 1.0 && url.is_some() {
                cx.error_hint(
                    &t.span(),
                    "prometheus.time_scale",
                    "time_scale needs a managed Prometheus",
                    "remove prometheus.url, or load scaled rules into your Prometheus yourself",
                );
                ok = false;
            }
            v
        }
        None => 1.0,
    };
    let job = match p.and_then(|p| p.job.as_ref()) {
        Some(j) => {
            let valid = !j.get_ref().is_empty()
                && j.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
            if !valid {
                cx.error_hint(
                    &j.span(),
                    "prometheus.job",
                    format!("invalid job name \"{}\"", j.get_ref()),
                    "use letters, digits, _ - . :",
                );
                ok = false;
            }
            j.get_ref().clone()
        }
        None => "slocheck-target".into(),
    };
    let settle = match (p.and_then(|p| p.settle.as_ref()), scrape, eval) {
        (Some(s), _, _) => Some(s.get_ref().0),
        (None, Some(s), Some(e)) => Some(2 * s + 2 * e),
        _ => None,
    };
    let plan = match (ok, scrape, eval, settle) {
        (true, Some(scrape_interval), Some(evaluation_interval), Some(settle)) => {
            Some(PrometheusPlan {
                url,
                scrape_interval,
                evaluation_interval,
                rule_files,
                time_scale,
                job,
                settle,
            })
        }
        _ => None,
    };
    (plan, rule_spans)
}

/// Makes `p` absolute and removes `.`/`..` lexically, so reports show
/// `/repo/rules/alerts.yml` rather than `/repo/scenarios/../rules/alerts.yml`.
pub(super) fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
