//! Model-quality helpers shared by observe and judge: the PromQL of a pushed
//! metric, and the choice of the evaluation whose window lies inside a
//! phase (read back from the pushed `model_evaluation_window_*` gauges).
//! Pure.

use std::time::SystemTime;

use super::queries::quote;
use crate::plan::QualityMetric;

/// The PromQL of a pushed model-quality metric of `job`.
pub fn metric_query(metric: &QualityMetric, job: &str) -> String {
    match metric.class() {
        Some(c) => format!(
            "{}{{job={},class={}}}",
            metric.metric_name(),
            quote(job),
            quote(c)
        ),
        None => format!("{}{{job={}}}", metric.metric_name(), quote(job)),
    }
}

/// A pushed gauge of the batch job (`model_evaluation_samples`, …) of `job`.
pub fn gauge_query(name: &str, job: &str) -> String {
    format!("{name}{{job={}}}", quote(job))
}

/// The last point of `points` at or before `t`.
fn at(points: &[(SystemTime, f64)], t: SystemTime) -> Option<f64> {
    points
        .iter()
        .rev()
        .find(|(pt, _)| *pt <= t)
        .map(|(_, v)| *v)
}

/// One evaluation as Prometheus saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluated {
    /// When Prometheus held this value (unix ms).
    pub at_ms: u64,
    pub value: f64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub samples: Option<f64>,
}

/// The last evaluation whose window lies within `[from_ms, to_ms]`.
pub fn last_inside(
    value: &[(SystemTime, f64)],
    start: &[(SystemTime, f64)],
    end: &[(SystemTime, f64)],
    samples: &[(SystemTime, f64)],
    from_ms: u64,
    to_ms: u64,
) -> Option<Evaluated> {
    value.iter().rev().find_map(|&(t, v)| {
        let s = (at(start, t)? * 1000.0).round() as u64;
        let e = (at(end, t)? * 1000.0).round() as u64;
        (s >= from_ms && e <= to_ms && !v.is_nan()).then_some(Evaluated {
            at_ms: crate::timeutil::unix_ms(t),
            value: v,
            start_ms: s,
            end_ms: e,
            samples: at(samples, t),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn picks_the_last_window_inside_the_phase() {
        // Pushes at 10, 12, 14: windows [2,9], [4,11], [6,13] (seconds).
        let value = [(t(10), 0.9), (t(12), 0.8), (t(14), 0.7)];
        let start = [(t(10), 2.0), (t(12), 4.0), (t(14), 6.0)];
        let end = [(t(10), 9.0), (t(12), 11.0), (t(14), 13.0)];
        let got = last_inside(&value, &start, &end, &[], 3_000, 12_000).unwrap();
        assert_eq!((got.value, got.start_ms, got.end_ms), (0.8, 4_000, 11_000));
        assert_eq!((got.at_ms, got.samples), (12_000, None));
        assert!(last_inside(&value, &start, &end, &[], 7_000, 12_000).is_none());
    }

    #[test]
    fn queries_select_the_job_and_class() {
        let q = metric_query(
            &QualityMetric::Recall {
                class: "setosa".into(),
            },
            "model-evaluation",
        );
        assert_eq!(q, "model_recall{job=\"model-evaluation\",class=\"setosa\"}");
        promql_parser::parser::parse(&q).unwrap();
        assert_eq!(
            metric_query(&QualityMetric::Accuracy, "j"),
            "model_accuracy{job=\"j\"}"
        );
        assert_eq!(
            gauge_query("model_evaluation_samples", "j"),
            "model_evaluation_samples{job=\"j\"}"
        );
    }
}
