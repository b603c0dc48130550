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
            let p = super::prometheus::absolute(&dir.join(c.get_ref()));
            if !p.is_file() {
                cx.error_hint(
                    &c.span(),
                    "alertmanager.config",
                    format!("alertmanager config \"{}\" does not exist", c.get_ref()),
                    "paths are relative to the scenario file's folder",
                );
            }
            Some(p)
        }
    };
    Some(AlertmanagerPlan { config })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::plan::{AlertmanagerPlan, ExpectKind, NotifiedExpectation};
    use crate::scenario::parse_str;

    const PHASE: &str = "[[phase]]\nname = \"a\"\nduration = \"5s\"\nrate = 10\n";

    fn parse(extra: &str) -> Result<crate::scenario::Loaded, String> {
        parse_str(&format!("{PHASE}\n{extra}"), Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_notified_expectation_implies_a_generated_alertmanager() {
        let l = parse(
            "[[expect]]\nnotified = \"HighErrorRate\"\nreceiver = \"oncall\"\nlabels = { severity = \"critical\" }\nfiring_within = \"10s\"\n",
        )
        .expect("valid");
        assert_eq!(l.plan.alertmanager, Some(AlertmanagerPlan::default()));
        assert_eq!(
            l.plan.expects[0].kind,
            ExpectKind::Notified(NotifiedExpectation {
                alert: "HighErrorRate".into(),
                receiver: Some("oncall".into()),
                labels: vec![("severity".into(), "critical".into())],
                firing_within: Some(Duration::from_secs(10)),
                resolved_within: None,
            })
        );
        assert_eq!(l.spans.alert_names[0].key_path, "expect[1].notified");
        assert!(parse("").expect("valid").plan.alertmanager.is_none());
    }

    #[test]
    fn an_alertmanager_table_resolves_its_config_against_the_scenario() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let text =
            format!("{PHASE}\n[alertmanager]\nconfig = \"../alertmanager/alertmanager.yml\"\n");
        let l = parse_str(&text, &dir.join("x.toml")).expect("valid");
        let cfg = l.plan.alertmanager.and_then(|a| a.config).expect("config");
        assert!(
            cfg.ends_with("alertmanager/alertmanager.yml"),
            "{}",
            cfg.display()
        );
        assert!(cfg.is_file());
    }

    #[test]
    fn mistakes_are_reported_at_their_key() {
        let cases = [
            (
                "[[expect]]\nnotified = \"High-Error\"\n",
                "t.toml:7:12: expect[1].notified: invalid alert name \"High-Error\"",
            ),
            (
                "[[expect]]\nnotified = \"X\"\nfires_during = \"a\"\n",
                "expect[1].fires_during: fires_during does not apply to a notified expectation (hint: keys of a notified expectation: receiver, labels, firing_within, resolved_within)",
            ),
            (
                "[[expect]]\nnotified = \"X\"\nreceiver = \" \"\n",
                "expect[1].receiver: receiver must not be empty",
            ),
            (
                "[[expect]]\nnotified = \"X\"\nlabels = { \"bad-name\" = \"x\" }\n",
                "expect[1].labels.bad-name: invalid label name \"bad-name\"",
            ),
            (
                "[[expect]]\nnotified = \"X\"\nresolved_within = \"0s\"\n",
                "expect[1].resolved_within: duration must be > 0",
            ),
            (
                "[[expect]]\nnotified = \"X\"\nalert = \"X\"\n",
                "expectation must have exactly one of latency_quantile, error_ratio, alert, notified, promql, latency_mean, load, model_quality, got alert and notified",
            ),
            (
                "[alertmanager]\nconfig = \"nope.yml\"\n",
                "alertmanager.config: alertmanager config",
            ),
            (
                "[alertmanager]\nconfig = \"\"\n",
                "alertmanager.config: config path must not be empty",
            ),
            (
                "[alertmanager]\nurl = \"http://x\"\n",
                "unknown field `url`",
            ),
        ];
        for (src, want) in cases {
            let e = parse(src)
                .err()
                .unwrap_or_else(|| panic!("accepted:\n{src}"));
            assert!(e.contains(want), "{src}\n got: {e}\nwant: {want}");
        }
    }
}
