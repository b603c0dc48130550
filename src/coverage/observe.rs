//! Asks Prometheus what each loaded rule did between the start of the load
//! and the end of the observed range: one range query of `ALERTS` for all
//! alerting rules, one instant query per recording rule.

use std::time::{Duration, SystemTime};

use super::{AlertCoverage, RecordingCoverage, RunCoverage};
use crate::prom::rules::RuleFile;
use crate::prom::{PromClient, PromError};
use crate::timeutil::{promql_duration, unix_ms};
use crate::verify::alert;
use crate::verify::outcome::AlertState;

/// Coverage of one run over `[start, until]`, `step` the evaluation interval.
pub async fn observe(
    client: &PromClient,
    files: &[RuleFile],
    start: SystemTime,
    until: SystemTime,
    step: Duration,
) -> Result<RunCoverage, PromError> {
    let states = client
        .query_range(
            "max by (alertname, alertstate) (ALERTS)",
            start,
            until,
            step,
        )
        .await?;
    let times = |name: &str, state: &str| -> Vec<u64> {
        states
            .iter()
            .filter(|s| {
                s.labels.get("alertname").map(String::as_str) == Some(name)
                    && s.labels.get("alertstate").map(String::as_str) == Some(state)
            })
            .flat_map(|s| s.points.iter().map(|(t, _)| unix_ms(*t)))
            .collect()
    };
    let range = until.duration_since(start).unwrap_or_default().max(step);
    let mut out = RunCoverage::default();
    for f in files {
        let file = f.path.display().to_string();
        for a in f.alerts() {
            let spans = alert::spans(
                &times(&a.name, "pending"),
                &times(&a.name, "firing"),
                unix_ms(start),
                unix_ms(until),
                step.as_millis() as u64,
            );
            let seen = |st| spans.iter().any(|s| s.state == st);
            out.alerts.push(AlertCoverage {
                alert: a.name.clone(),
                file: file.clone(),
                pending: seen(AlertState::Pending),
                firing: seen(AlertState::Firing),
                resolved: spans
                    .iter()
                    .any(|s| s.state == AlertState::Firing && s.end_ms.is_some()),
            });
        }
        for r in f.recording_rules() {
            let q = format!(
                "count(last_over_time({}[{}]))",
                r.name,
                promql_duration(range)
            );
            let n = client.query(&q, until).await?;
            out.recording.push(RecordingCoverage {
                record: r.name.clone(),
                file: file.clone(),
                produced: n.first().is_some_and(|s| s.value > 0.0),
            });
        }
    }
    Ok(out)
}
