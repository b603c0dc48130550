//! `model_quality` expectations: the metric the evaluation batch job pushed
//! (through the Pushgateway) for the last evaluation window that lies wholly
//! inside the phase, judged against its bound, beside the value the
//! generator computes for the very same window from what it sent.

use std::time::SystemTime;

use super::bound;
use super::outcome::{ExpectationResult, QueryEvidence, Verdict};
use super::queries::quote;
use super::{Verifier, result, soft};
use crate::evaluate::push::{SAMPLES, WINDOW_END, WINDOW_START};
use crate::plan::{Expectation, QualityBound, QualityMetric};
use crate::prom::PromError;
use crate::record::PhaseRecord;
use crate::timeutil::unix_ms;

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
    pub at: SystemTime,
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
            at: t,
            value: v,
            start_ms: s,
            end_ms: e,
            samples: at(samples, t),
        })
    })
}

impl Verifier<'_> {
    pub(super) async fn model_quality(
        &self,
        e: &Expectation,
        metric: &QualityMetric,
        phase: &str,
        b: &QualityBound,
    ) -> Result<ExpectationResult, PromError> {
        let what = match b {
            QualityBound::Fixed(b) => bound::describe(b, bound::number),
            QualityBound::NearExpected { tolerance } => format!(
                "within ±{} of the generator's expected value",
                bound::number(*tolerance)
            ),
        };
        let mut r = result(
            e,
            "model_quality",
            format!("model {} in \"{phase}\" {what}", metric.describe()),
        );
        let Some(model) = &self.inp.plan.model else {
            r.reason = "the scenario has no [model] section".into();
            return Ok(r);
        };
        let Some(p) = self.phase(phase) else {
            r.reason = format!("phase \"{phase}\" did not run");
            return Ok(r);
        };
        let job = &model.job;
        let expr = metric_query(metric, job);
        let (from, to) = (
            p.start,
            self.inp
                .until
                .min(p.end + model.window + model.evaluate_every),
        );
        let step = self.inp.plan.prometheus.evaluation_interval;
        let mut series = Vec::new();
        for q in [
            expr.clone(),
            format!("{WINDOW_START}{{job={}}}", quote(job)),
            format!("{WINDOW_END}{{job={}}}", quote(job)),
            format!("{SAMPLES}{{job={}}}", quote(job)),
        ] {
            let s = soft(self.client.query_range(&q, from, to, step).await)?;
            match s {
                Ok(s) => series.push(s.into_iter().next().map(|s| s.points).unwrap_or_default()),
                Err(msg) => {
                    r.reason = format!("query failed: {msg}");
                    return Ok(r);
                }
            }
        }
        let found = last_inside(
            &series[0],
            &series[1],
            &series[2],
            &series[3],
            unix_ms(p.start),
            unix_ms(p.end),
        );
        let mut ev = QueryEvidence {
            promql: expr,
            at_ms: unix_ms(to),
            start_ms: Some(unix_ms(from)),
            value: None,
        };
        r.client.push(whole_phase(p, metric));
        let Some(found) = found else {
            r.reason = format!(
                "no evaluation window of the batch job lies inside \"{phase}\" (window {}, every {}; is the phase long enough, is the job running?)",
                crate::timeutil::human(model.window),
                crate::timeutil::human(model.evaluate_every)
            );
            r.queries.push(ev);
            return Ok(r);
        };
        ev.at_ms = unix_ms(found.at);
        ev.value = Some(found.value);
        r.queries.push(ev);
        let expected = p
            .model
            .expected_scores(found.start_ms, found.end_ms)
            .map(|s| (s.value(metric), s.samples));
        let window = window_words(found.start_ms, found.end_ms, unix_ms(p.start), phase);
        match expected {
            Some((Some(x), n)) => r.client.push(format!(
                "generator expected {} = {} over the same window {window}, {n} labelled answers",
                metric.describe(),
                bound::number(x)
            )),
            Some((None, n)) => r.client.push(format!(
                "generator: {} undefined over the same window {window} ({n} labelled answers)",
                metric.describe()
            )),
            None => r
                .client
                .push("generator: expected answers unknown (not the built-in model)".into()),
        }
        let samples = found.samples.map_or_else(|| "?".into(), |s| format!("{s}"));
        r.observed = format!(
            "{} (pushed for window {window}, {samples} samples)",
            bound::number(found.value)
        );
        let v = found.value;
        match b {
            QualityBound::Fixed(b) => {
                r.verdict = if bound::holds(v, b) {
                    Verdict::Pass
                } else {
                    r.reason = format!(
                        "{} is not {}",
                        bound::number(v),
                        bound::describe(b, bound::number)
                    );
                    Verdict::Fail
                };
            }
            QualityBound::NearExpected { tolerance } => match expected {
                Some((Some(x), _)) if (v - x).abs() <= *tolerance => r.verdict = Verdict::Pass,
                Some((Some(x), _)) => {
                    r.verdict = Verdict::Fail;
                    r.reason = format!(
                        "{} is {} away from the expected {}, more than {}",
                        bound::number(v),
                        bound::number((v - x).abs()),
                        bound::number(x),
                        bound::number(*tolerance)
                    );
                }
                _ => r.reason = "the generator has no expected value for this window".into(),
            },
        }
        Ok(r)
    }
}

/// `+3.2s..+13.2s of "drift"`: a window as offsets from the phase start.
fn window_words(start_ms: u64, end_ms: u64, phase_start_ms: u64, phase: &str) -> String {
    let off = |ms: u64| ms.saturating_sub(phase_start_ms) as f64 / 1000.0;
    format!(
        "+{:.1}s..+{:.1}s of \"{phase}\"",
        off(start_ms),
        off(end_ms)
    )
}

/// The generator's expectation over the whole phase, for context.
fn whole_phase(p: &PhaseRecord, metric: &QualityMetric) -> String {
    let t = &p.model;
    let all = t.expected_scores(0, u64::MAX);
    let value = all
        .as_ref()
        .and_then(|s| s.value(metric))
        .map_or_else(|| "n/a".into(), bound::number);
    format!(
        "generator expected {} over the whole phase = {value} ({} labelled answers, {} drifted of {} sent; {} labels reported, {} lost)",
        metric.describe(),
        t.samples.len(),
        t.drifted,
        p.sent,
        t.feedback_sent,
        t.feedback_lost
    )
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
        assert_eq!(got.samples, None);
        assert!(last_inside(&value, &start, &end, &[], 7_000, 12_000).is_none());
    }

    #[test]
    fn windows_read_as_offsets_into_the_phase() {
        assert_eq!(
            window_words(11_600, 21_600, 10_000, "drift"),
            "+1.6s..+11.6s of \"drift\""
        );
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
    }
}
