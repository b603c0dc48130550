//! The seed's recording and alerting rules (`rules/recording.yml`,
//! `rules/alerts.yml`) rewritten for a metric convention: same record names,
//! alert names, thresholds, `for` and annotations; only the expressions
//! change. `slocheck rules --preset NAME` prints them and `slocheck init`
//! writes them beside the starter scenario.

use std::fmt::Write as _;

use super::{MetricQueries, MetricsSpec, Unit};

/// The window every rule uses, as in the seed.
const WINDOW: &str = "5m";
/// HighErrorRate's threshold: 5 % of requests.
pub const ERROR_THRESHOLD: f64 = 0.05;
/// The latency alerts' threshold: 250 ms.
pub const LATENCY_THRESHOLD_SECS: f64 = 0.25;

/// A YAML single-quoted scalar (PromQL here never holds a newline).
fn yq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// 0.25 s written in `unit`, so a latency alert compares what is exported
/// (and its `histogram_quantile(…) > θ` shape stays readable).
fn threshold_in(unit: Unit) -> String {
    match unit {
        Unit::Seconds => "0.25".into(),
        Unit::Millis => "250".into(),
        Unit::Micros => "250000".into(),
    }
}

fn value_text(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "{{ $value | humanizeDuration }}",
        Unit::Millis => "{{ $value }} ms",
        Unit::Micros => "{{ $value }} µs",
    }
}

/// Both groups as one rule file.
pub fn rules_yaml(spec: &MetricsSpec) -> String {
    let q = MetricQueries::unscoped(spec);
    let unit = spec.latency.unit;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# The slocheck seed's recording and alerting rules for the \"{}\" metric convention\n\
         # (written by `slocheck rules --preset {}`; check with `promtool check rules`).\n\
         # {}\n\
         groups:\n  - name: mlops-recording\n    rules:",
        spec.preset,
        spec.preset,
        spec.describe()
    );
    let rec = |y: &mut String, comment: &str, name: &str, expr: &str| {
        let _ = writeln!(
            y,
            "      # {comment}\n      - record: {name}\n        expr: {}\n",
            yq(expr)
        );
    };
    match q.latency_quantile_rule("0.90", WINDOW, true) {
        Some(p90) => {
            rec(
                &mut y,
                "P90 request latency over all paths and methods (seconds).",
                "job:http_request_duration_seconds:p90",
                &p90,
            );
            let p99 = q
                .latency_quantile_rule("0.99", WINDOW, true)
                .unwrap_or_default();
            rec(
                &mut y,
                "P99 for the tail; same construction as P90.",
                "job:http_request_duration_seconds:p99",
                &p99,
            );
        }
        None => rec(
            &mut y,
            "Mean request latency (seconds): this convention exports no buckets, so no quantile.",
            "job:http_request_duration_seconds:mean",
            &q.latency_mean_rule(WINDOW, true),
        ),
    }
    rec(
        &mut y,
        "Requests per second, all outcomes.",
        "job:http_requests:rate5m",
        &q.request_rate_rule(WINDOW),
    );
    rec(
        &mut y,
        "Fraction of requests that are server errors (0..1); NaN without traffic.",
        "job:http_requests:error_ratio_rate5m",
        &q.error_ratio_rule(WINDOW),
    );
    let _ = writeln!(
        y,
        "  - name: mlops-alerts\n    rules:\n      - alert: HighErrorRate\n        expr: {}\n        for: 5m\n        labels:\n          severity: critical\n        annotations:\n          summary: High 5xx error rate\n          description: \"More than 5% of requests are failing with 5xx over the last 5 minutes (current value: {{{{ $value | humanizePercentage }}}}).\"\n",
        yq(&format!(
            "{} > {ERROR_THRESHOLD}",
            q.error_ratio_rule(WINDOW)
        ))
    );
    let th = threshold_in(unit);
    let (alert, expr, summary, what) = match q.latency_quantile_rule("0.90", WINDOW, false) {
        Some(p90) => (
            "HighLatencyP90",
            p90,
            "High P90 latency",
            "P90 request latency",
        ),
        None => (
            "HighLatencyMean",
            q.latency_mean_rule(WINDOW, false),
            "High mean latency",
            "Mean request latency",
        ),
    };
    let _ = writeln!(
        y,
        "      - alert: {alert}\n        expr: {}\n        for: 5m\n        labels:\n          severity: warning\n        annotations:\n          summary: {summary}\n          description: \"{what} has been above 250ms over the last 5 minutes (current value: {}).\"",
        yq(&format!("{expr} > {th}")),
        value_text(unit)
    );
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PRESETS, preset};

    #[test]
    fn tutorial_rules_are_the_seed_s_expressions() {
        let y = rules_yaml(&preset("tutorial").unwrap().spec());
        // Read at run time: an include_str! would make the Docker build stage
        // need rules/ (tests/deploy.rs checks every embedded file is copied).
        let seed = |f: &str| {
            std::fs::read_to_string(format!("{}/rules/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let (seed_alerts, seed_rec) = (seed("alerts.yml"), seed("recording.yml"));
        for line in y.lines().filter_map(|l| l.trim().strip_prefix("expr: ")) {
            let expr = line.trim_matches('\'').replace("''", "'");
            assert!(
                seed_alerts.contains(&expr) || seed_rec.contains(&expr),
                "not in the seed: {expr}"
            );
        }
        assert!(y.contains("alert: HighErrorRate") && y.contains("alert: HighLatencyP90"));
    }

    #[test]
    fn every_preset_s_rules_are_yaml_with_valid_promql() {
        for p in PRESETS {
            let y = rules_yaml(&p.spec());
            let doc: serde_json::Value =
                serde_saphyr::from_str(&y).unwrap_or_else(|e| panic!("{}: {e}\n{y}", p.name));
            let groups = doc["groups"].as_array().unwrap();
            assert_eq!(groups.len(), 2);
            for r in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
                let e = r["expr"].as_str().unwrap();
                promql_parser::parser::parse(e)
                    .unwrap_or_else(|err| panic!("{}: {e}: {err}", p.name));
            }
        }
        let triton = rules_yaml(&preset("triton").unwrap().spec());
        assert!(triton.contains("alert: HighLatencyMean") && triton.contains("> 250000'"));
    }
}
