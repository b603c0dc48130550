//! The time series behind the HTML report's charts: observed from Prometheus
//! after the expectations, handed to the report as plain data (stored in
//! `report.json` so `slocheck report` can redraw them without Prometheus).
//! The client's own per-second series are already in the phases; only
//! Prometheus's side is collected here.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::prom::{PromClient, PromError};
use crate::record::RunRecord;
use crate::timeutil::{promql_duration, unix_ms};
use crate::verify::alert::RuleTiming;
use crate::verify::queries::{self, REQUESTS_TOTAL, quote};

/// `(unix ms, value)`; points Prometheus returned as NaN/Inf are left out
/// (JSON has no NaN, and a gap draws more honestly than a zero).
pub type Point = (u64, f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSeries {
    /// Query range: run start to the end of verification (unix ms).
    pub start_ms: u64,
    pub end_ms: u64,
    pub step_ms: u64,
    /// The rate window of every query (PromQL duration, e.g. `5s`).
    pub window: String,
    /// Response rate per status class (`2xx`, `5xx`, …), requests/s.
    pub request_rate: BTreeMap<String, Vec<Point>>,
    pub request_rate_promql: String,
    /// P90 latency from the Prometheus histogram, seconds.
    pub p90: Vec<Point>,
    pub p90_promql: String,
    /// 5xx share of responses.
    pub error_ratio: Vec<Point>,
    pub error_ratio_promql: String,
    /// The alert threshold drawn over the error ratio, and its alert.
    pub error_threshold: Option<ErrorThreshold>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorThreshold {
    pub alert: String,
    pub value: f64,
}

/// Short enough to show a phase change within a few seconds, long enough to
/// hold several scrapes so `rate()` has two samples.
pub fn window(scrape: Duration) -> Duration {
    (scrape * 4).max(Duration::from_secs(5))
}

/// Response rate by status class (`5xx` from `status="503"`).
pub fn request_rate_query(job: &str, window: Duration) -> String {
    format!(
        "sum by (class) (label_replace(rate({REQUESTS_TOTAL}{{job={}}}[{}]), \"class\", \"${{1}}xx\", \"status\", \"(.).*\"))",
        quote(job),
        promql_duration(window)
    )
}

/// The error-ratio alert whose threshold the chart draws: `HighErrorRate`
/// when the rules have it, else the first alert named like an error alert
/// with a ratio threshold.
pub fn error_threshold(timings: &BTreeMap<String, RuleTiming>) -> Option<ErrorThreshold> {
    let ratio = |(name, t): (&String, &RuleTiming)| {
        t.threshold
            .filter(|v| (0.0..=1.0).contains(v))
            .map(|value| ErrorThreshold {
                alert: name.clone(),
                value,
            })
    };
    timings
        .get_key_value("HighErrorRate")
        .and_then(ratio)
        .or_else(|| {
            timings
                .iter()
                .filter(|(n, _)| n.to_ascii_lowercase().contains("error"))
                .find_map(ratio)
        })
}

/// Asks Prometheus for the chart series over `[record start, until]`.
pub async fn collect(
    client: &PromClient,
    plan: &Plan,
    record: &RunRecord,
    until: SystemTime,
    error_threshold: Option<ErrorThreshold>,
) -> Result<ChartSeries, PromError> {
    let job = &plan.prometheus.job;
    let w = window(plan.prometheus.scrape_interval);
    let step = plan.prometheus.evaluation_interval;
    let start = record.started_at;
    let range = |q: String| async move {
        let series = client.query_range(&q, start, until, step).await?;
        Ok::<_, PromError>((q, series))
    };

    let (rate_q, rate) = range(request_rate_query(job, w)).await?;
    let request_rate = rate
        .into_iter()
        .map(|s| {
            let class = s.labels.get("class").cloned().unwrap_or_default();
            (class, points(&s.points))
        })
        .collect();
    let (p90_q, p90) = range(queries::latency_quantile(0.9, job, w)).await?;
    let (err_q, err) = range(queries::error_ratio(job, w)).await?;
    Ok(ChartSeries {
        start_ms: unix_ms(start),
        end_ms: unix_ms(until),
        step_ms: step.as_millis() as u64,
        window: promql_duration(w),
        request_rate,
        request_rate_promql: rate_q,
        p90: first(&p90),
        p90_promql: p90_q,
        error_ratio: first(&err),
        error_ratio_promql: err_q,
        error_threshold,
    })
}

fn first(series: &[crate::prom::client::Series]) -> Vec<Point> {
    series
        .first()
        .map(|s| points(&s.points))
        .unwrap_or_default()
}

fn points(raw: &[(SystemTime, f64)]) -> Vec<Point> {
    raw.iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (unix_ms(*t), *v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(threshold: Option<f64>) -> RuleTiming {
        RuleTiming {
            threshold,
            ..RuleTiming::default()
        }
    }

    #[test]
    fn threshold_prefers_high_error_rate() {
        let mut t = BTreeMap::new();
        t.insert("ApiErrors".to_string(), timing(Some(0.1)));
        t.insert("HighErrorRate".to_string(), timing(Some(0.05)));
        t.insert("HighLatencyP90".to_string(), timing(Some(0.25)));
        let th = error_threshold(&t).unwrap();
        assert_eq!((th.alert.as_str(), th.value), ("HighErrorRate", 0.05));
        t.remove("HighErrorRate");
        assert_eq!(error_threshold(&t).unwrap().alert, "ApiErrors");
        t.remove("ApiErrors");
        assert_eq!(
            error_threshold(&t),
            None,
            "a latency alert is not an error threshold"
        );
    }

    #[test]
    fn window_holds_several_scrapes() {
        assert_eq!(window(Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(window(Duration::from_secs(15)), Duration::from_secs(60));
    }

    #[test]
    fn queries_parse_and_nan_is_dropped() {
        let q = request_rate_query("slo\"target", Duration::from_secs(5));
        promql_parser::parser::parse(&q).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        assert_eq!(points(&[(t, f64::NAN), (t, 2.0)]), vec![(1000, 2.0)]);
    }
}
