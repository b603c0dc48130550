//! The PromQL that verification runs, built in one place so reports can show
//! exactly what was asked. Questions about the service's own metrics come
//! from its convention (`MetricQueries`, see `crate::metrics`); the ones
//! here are the same for every service. Every selector is restricted to the
//! scenario's scrape job.

use std::time::Duration;

pub use crate::metrics::MetricQueries;
pub use crate::metrics::query::quote;
use crate::timeutil::promql_duration;

/// Pending/firing state of an alert, one series per state.
pub fn alert_states(alert: &str) -> String {
    format!("max by (alertstate) (ALERTS{{alertname={}}})", quote(alert))
}

/// Number of successful scrapes of the job within `window`.
pub fn scrapes(job: &str, window: Duration) -> String {
    format!(
        "sum(sum_over_time(up{{job={}}}[{}]))",
        quote(job),
        promql_duration(window)
    )
}

/// The bucket `(lower, upper]` of a sorted list of upper bounds that holds
/// `v`; None above the last finite bound.
pub fn bucket_of(bounds: &[f64], v: f64) -> Option<(f64, f64)> {
    let mut lower = 0.0;
    for &b in bounds {
        if !b.is_finite() {
            break;
        }
        if v <= b {
            return Some((lower, b));
        }
        lower = b;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsSpec;

    /// Scenarios without `[metrics]` ask exactly what they asked before
    /// presets existed (report fixtures and users' dashboards rely on it).
    #[test]
    fn queries_read_as_written_by_hand() {
        let w = Duration::from_secs(25);
        let m = MetricQueries::new(&MetricsSpec::default(), "slocheck-target");
        assert_eq!(
            m.latency_quantile(0.9, w).unwrap(),
            "histogram_quantile(0.9, sum by (le) (rate(http_request_latency_seconds_bucket{job=\"slocheck-target\"}[25000ms])))"
        );
        let m = MetricQueries::new(&MetricsSpec::default(), "j");
        assert_eq!(
            m.error_ratio(w),
            "(sum(increase(http_requests_total{job=\"j\",status=~\"5..\"}[25000ms])) or vector(0)) / sum(increase(http_requests_total{job=\"j\"}[25000ms]))"
        );
        assert_eq!(
            m.bucket_bounds().unwrap(),
            "count by (le) (http_request_latency_seconds_bucket{job=\"j\"})"
        );
        assert_eq!(
            m.request_rate_by_class(Duration::from_secs(5)),
            "sum by (class) (label_replace(rate(http_requests_total{job=\"j\"}[5000ms]), \"class\", \"${1}xx\", \"status\", \"(.).*\"))"
        );
        assert_eq!(
            alert_states("HighErrorRate"),
            "max by (alertstate) (ALERTS{alertname=\"HighErrorRate\"})"
        );
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn every_query_parses() {
        let w = Duration::from_millis(12_345);
        for q in [alert_states("A"), scrapes("x", w)] {
            promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn buckets() {
        let b = [0.005, 0.01, 0.025, f64::INFINITY];
        assert_eq!(bucket_of(&b, 0.003), Some((0.0, 0.005)));
        assert_eq!(bucket_of(&b, 0.01), Some((0.005, 0.01)));
        assert_eq!(bucket_of(&b, 0.02), Some((0.01, 0.025)));
        assert_eq!(bucket_of(&b, 1.0), None);
    }
}
