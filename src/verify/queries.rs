//! The PromQL that verification runs, built in one place so reports can show
//! exactly what was asked. Metric names are the seed's; every selector is
//! restricted to the scenario's scrape job.

use std::time::Duration;

use crate::timeutil::promql_duration;

pub const LATENCY_BUCKET: &str = "http_request_latency_seconds_bucket";
pub const REQUESTS_TOTAL: &str = "http_requests_total";

/// Escapes a label value for a PromQL double-quoted string.
pub fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quantile of the latency histogram over exactly `window` before the
/// evaluation time.
pub fn latency_quantile(q: f64, job: &str, window: Duration) -> String {
    format!(
        "histogram_quantile({q}, sum by (le) (rate({LATENCY_BUCKET}{{job={}}}[{}])))",
        quote(job),
        promql_duration(window)
    )
}

/// 5xx share of all responses over `window`. `or vector(0)` keeps a run with
/// no 5xx series at all from reading as "no data".
pub fn error_ratio(job: &str, window: Duration) -> String {
    let j = quote(job);
    let w = promql_duration(window);
    format!(
        "(sum(increase({REQUESTS_TOTAL}{{job={j},status=~\"5..\"}}[{w}])) or vector(0)) / sum(increase({REQUESTS_TOTAL}{{job={j}}}[{w}]))"
    )
}

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

/// The histogram's bucket bounds (`le` values) as Prometheus sees them.
pub fn bucket_bounds(job: &str) -> String {
    format!("count by (le) ({LATENCY_BUCKET}{{job={}}})", quote(job))
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

    #[test]
    fn queries_read_as_written_by_hand() {
        let w = Duration::from_secs(25);
        assert_eq!(
            latency_quantile(0.9, "slocheck-target", w),
            "histogram_quantile(0.9, sum by (le) (rate(http_request_latency_seconds_bucket{job=\"slocheck-target\"}[25000ms])))"
        );
        assert_eq!(
            error_ratio("j", w),
            "(sum(increase(http_requests_total{job=\"j\",status=~\"5..\"}[25000ms])) or vector(0)) / sum(increase(http_requests_total{job=\"j\"}[25000ms]))"
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
        for q in [
            latency_quantile(0.99, "we\"ird", w),
            error_ratio("x", w),
            alert_states("A"),
            scrapes("x", w),
            bucket_bounds("x"),
        ] {
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
