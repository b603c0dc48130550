//! `notified` expectations and the `[alertmanager]` table: which alert must
//! reach which receiver, and which Alertmanager config routes it.

use std::path::Path;

use super::ctx::{Ctx, join};
use super::expect::check_alert_name;
use super::raw::{RawAlertmanager, RawExpect, S};
use crate::plan::{AlertmanagerPlan, ExpectKind, Expectation, NotifiedExpectation};

pub(super) fn resolve(e: &RawExpect, path: &str, cx: &mut Ctx<'_>) -> Option<NotifiedExpectation> {
    let name = e.notified.as_ref()?;
    let mut ok = check_alert_name(name, &join(path, "notified"), cx);
    let receiver = match &e.receiver {
        Some(r) if r.get_ref().trim().is_empty() => {
            cx.error_hint(
                &r.span(),
                &join(path, "receiver"),
                "receiver must not be empty",
                "use a receiver name from the alertmanager config, or omit it to accept any",
            );
            ok = false;
            None
        }
        Some(r) => Some(r.get_ref().clone()),
        None => None,
    };
    let mut labels = Vec::new();
    for (k, v) in e.labels.iter().flat_map(|l| l.get_ref()) {
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            cx.error_hint(
                &v.span(),
                &format!("{path}.labels.{k}"),
                format!("invalid label name \"{k}\""),
                "label names are letters, digits and _, not starting with a digit",
            );
            ok = false;
        }
        labels.push((k.clone(), v.get_ref().clone()));
    }
    let mut within = |key: &str, v: Option<&S<super::raw::Dur>>, cx: &mut Ctx<'_>| {
        let v = v?;
        if v.get_ref().0.is_zero() {
            cx.error(&v.span(), &join(path, key), "duration must be > 0");
            ok = false;
        }
        Some(v.get_ref().0)
    };
    let firing_within = within("firing_within", e.firing_within.as_ref(), cx);
    let resolved_within = within("resolved_within", e.resolved_within.as_ref(), cx);
    ok.then(|| NotifiedExpectation {
        alert: name.get_ref().clone(),
        receiver,
        labels,
        firing_within,
        resolved_within,
    })
}

/// `[alertmanager]` as written, or the default one a `notified` expectation
/// implies; None when neither asks for an Alertmanager.
pub(super) fn resolve_alertmanager(
    raw: Option<&S<RawAlertmanager>>,
    expects: &[Expectation],
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> Option<AlertmanagerPlan> {
    let Some(raw) = raw else {
        return expects
            .iter()
            .any(|e| matches!(e.kind, ExpectKind::Notified(_)))
            .then(AlertmanagerPlan::default);
    };
    let config = match &raw.get_ref().config {
        None => None,
        Some(c) if c.get_ref().trim().is_empty() => {
            cx.error_hint(
                &c.span(),
                "alertmanager.config",
                "config path must not be empty",
                "omit it to let slocheck generate a config",
            );
            None
        }
        Some(c) => {
            let p = std::path::absolute(dir.join(c.get_ref()))
                .unwrap_or_else(|_| dir.join(c.get_ref()));
            if !p.is_file() {
                cx.error_hint(
                    &c.span(),
                    "alertmanager.config",
                    format!("alertmanager config {} does not exist", p.display()),
                    "paths are relative to the scenario file",
                );
            }
            Some(p)
        }
    };
    Some(AlertmanagerPlan { config })
}
