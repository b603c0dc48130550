//! Expectations → PromQL over each phase's exact wall-clock window → pass /
//! fail / inconclusive with evidence. The judging itself is pure (`alert`,
//! `bound`); this module only asks Prometheus and assembles the outcome.

pub mod alert;
pub mod bound;
pub mod notify;
pub mod outcome;
pub mod quality;
pub mod queries;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::plan::{Aggregate, AlertExpectation, Bound, ExpectKind, Expectation, Plan};
use crate::prom::{PromClient, PromError};
use crate::record::{PhaseRecord, RunRecord};
use crate::timeutil::{human, unix_ms};
use alert::{PhaseWindow, RuleTiming};
use outcome::{AlertTimeline, ExpectationResult, Outcome, PhaseAgreement, QueryEvidence, Verdict};

/// What verification needs besides a Prometheus to ask.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub record: &'a RunRecord,
    /// Alert name → timing of its (time-scaled) rule, for derived bounds.
    pub rules: &'a BTreeMap<String, RuleTiming>,
    /// The end of the observed range (after the settle period).
    pub until: SystemTime,
    /// What the webhook recorder saw (None: no Alertmanager ran).
    pub deliveries: Option<&'a notify::Deliveries>,
}

/// A query that failed because of the query itself (not the connection)
/// makes one expectation inconclusive; anything else ends verification.
fn soft<T>(r: Result<T, PromError>) -> Result<Result<T, String>, PromError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ PromError::Query { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Evaluates every expectation of the plan.
pub async fn verify(client: &PromClient, inp: &Inputs<'_>) -> Result<Outcome, PromError> {
    let v = Verifier {
        client,
        inp,
        job: &inp.plan.prometheus.job,
    };
    let windows = v.windows().await?;
    let buckets = v.bucket_bounds().await?;
    let mut results = Vec::with_capacity(inp.plan.expects.len());
    let mut timelines: BTreeMap<String, AlertTimeline> = BTreeMap::new();
    for e in &inp.plan.expects {
        let r = match &e.kind {
            ExpectKind::LatencyQuantile {
                quantile,
                phase,
                bound,
            } => {
                v.latency(e, *quantile, phase, &bound::secs(bound), &buckets)
                    .await?
            }
            ExpectKind::ErrorRatio { phase, bound } => v.error_ratio(e, phase, bound).await?,
            ExpectKind::PromQl {
                expr,
                phase,
                aggregate,
                bound,
            } => v.promql(e, expr, phase, *aggregate, bound).await?,
            ExpectKind::ModelQuality {
                metric,
                phase,
                bound,
            } => v.model_quality(e, metric, phase, bound).await?,
            ExpectKind::Alert(a) => {
                if !timelines.contains_key(&a.alert) {
                    let t = v.alert_timeline(&a.alert).await?;
                    timelines.insert(a.alert.clone(), t);
                }
                v.alert(e, a, &timelines[&a.alert], &windows)
            }
            ExpectKind::Notified(n) => {
                if !timelines.contains_key(&n.alert) {
                    let t = v.alert_timeline(&n.alert).await?;
                    timelines.insert(n.alert.clone(), t);
                }
                notify::judge(
                    e,
                    n,
                    &timelines[&n.alert],
                    inp.deliveries,
                    inp.plan.prometheus.evaluation_interval,
                    inp.record.started_at,
                )
            }
        };
        results.push(r);
    }
    let mut agreement = Vec::with_capacity(inp.record.phases.len());
    for p in &inp.record.phases {
        agreement.push(v.agreement(p, &buckets).await?);
    }
    Ok(Outcome {
        results,
        alerts: timelines.into_values().collect(),
        agreement,
    })
}

struct Verifier<'a> {
    client: &'a PromClient,
    inp: &'a Inputs<'a>,
    job: &'a str,
}

/// A phase's window as PromQL sees it: evaluate at the end, look back over
/// the whole phase. Counters' increases inside the window come only from
/// samples scraped during the phase.
fn window(p: &PhaseRecord) -> Duration {
    p.end.duration_since(p.start).unwrap_or_default()
}

fn result(e: &Expectation, kind: &'static str, expected: String) -> ExpectationResult {
    ExpectationResult {
        id: e.id.clone(),
        kind: kind.into(),
        expected,
        observed: String::new(),
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        inconclusive_allowed: e.allow_inconclusive,
        queries: Vec::new(),
        client: Vec::new(),
    }
}

impl Verifier<'_> {
    fn phase(&self, name: &str) -> Option<&PhaseRecord> {
        self.inp.record.phases.iter().find(|p| p.name == name)
    }

    /// Too short to hold two scrapes: no rate can be computed over it.
    fn too_short(&self, p: &PhaseRecord) -> bool {
        window(p) < 2 * self.inp.plan.prometheus.scrape_interval
    }

    /// One instant value of `expr` at `at`; None for no data or NaN.
    async fn scalar(
        &self,
        expr: &str,
        at: SystemTime,
    ) -> Result<Result<Option<f64>, String>, PromError> {
        Ok(
            soft(self.client.query(expr, at).await)?.map(|samples| match samples.as_slice() {
                [one] if !one.value.is_nan() => Some(one.value),
                _ => None,
            }),
        )
    }

    async fn windows(&self) -> Result<Vec<PhaseWindow>, PromError> {
        let mut out = Vec::new();
        for p in &self.inp.record.phases {
            let q = queries::scrapes(self.job, window(p));
            let scraped = matches!(self.scalar(&q, p.end).await?, Ok(Some(n)) if n > 0.0);
            out.push(PhaseWindow {
                name: p.name.clone(),
                start_ms: unix_ms(p.start),
                end_ms: unix_ms(p.end),
                scraped,
                injected_error_ratio: p.injected_error_ratio(),
            });
        }
        Ok(out)
    }

    async fn bucket_bounds(&self) -> Result<Vec<f64>, PromError> {
        let q = queries::bucket_bounds(self.job);
        let samples = soft(self.client.query(&q, self.inp.until).await)?.unwrap_or_default();
        let mut b: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.labels.get("le"))
            .filter_map(|le| le.parse::<f64>().ok())
            .collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        Ok(b)
    }

    async fn latency(
        &self,
        e: &Expectation,
        q: f64,
        phase: &str,
        b: &Bound<f64>,
        buckets: &[f64],
    ) -> Result<ExpectationResult, PromError> {
        let pct = format!("P{}", (q * 1000.0).round() / 10.0);
        let mut r = result(
            e,
            "latency_quantile",
            format!(
                "{pct} latency in \"{phase}\" {}",
                bound::describe(b, bound::latency)
            ),
        );
        let Some(p) = self.phase(phase) else {
            r.reason = format!("phase \"{phase}\" did not run");
            return Ok(r);
        };
        if let Some(c) = p.latency_quantile_secs(q) {
            let mut line = format!("client HDR {pct} (corrected) = {}", bound::latency(c));
            if let Some((lo, hi)) = queries::bucket_of(buckets, c) {
                line.push_str(&format!(
                    " in bucket ({}, {}]",
                    bound::latency(lo),
                    bound::latency(hi)
                ));
            }
            r.client.push(line);
        }
        if self.too_short(p) {
            r.reason = format!("phase \"{phase}\" is shorter than two scrape intervals");
            return Ok(r);
        }
        let expr = queries::latency_quantile(q, self.job, window(p));
        let value = self.scalar(&expr, p.end).await?;
        self.settle(&mut r, expr, p, value, b, bound::latency, |v| {
            queries::bucket_of(buckets, v)
                .map(|(lo, hi)| {
                    format!(
                        " (histogram bucket {}..{})",
                        bound::latency(lo),
                        bound::latency(hi)
                    )
                })
                .unwrap_or_default()
        });
        Ok(r)
    }

    async fn error_ratio(
        &self,
        e: &Expectation,
        phase: &str,
        b: &Bound<f64>,
    ) -> Result<ExpectationResult, PromError> {
        let mut r = result(
            e,
            "error_ratio",
            format!(
                "5xx ratio in \"{phase}\" {}",
                bound::describe(b, bound::ratio)
            ),
        );
        let Some(p) = self.phase(phase) else {
            r.reason = format!("phase \"{phase}\" did not run");
            return Ok(r);
        };
        r.client.push(client_ratios(p));
        if self.too_short(p) {
            r.reason = format!("phase \"{phase}\" is shorter than two scrape intervals");
            return Ok(r);
        }
        let expr = queries::error_ratio(self.job, window(p));
        let value = self.scalar(&expr, p.end).await?;
        self.settle(&mut r, expr, p, value, b, bound::ratio, |_| String::new());
        Ok(r)
    }

    /// Fills verdict, observed value and evidence from one instant value.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        r: &mut ExpectationResult,
        expr: String,
        p: &PhaseRecord,
        value: Result<Option<f64>, String>,
        b: &Bound<f64>,
        fmt: fn(f64) -> String,
        extra: impl Fn(f64) -> String,
    ) {
        let v = match value {
            Ok(v) => v,
            Err(msg) => {
                r.reason = format!("query failed: {msg}");
                None
            }
        };
        r.queries.push(QueryEvidence {
            promql: expr,
            at_ms: unix_ms(p.end),
            start_ms: Some(unix_ms(p.start)),
            value: v,
        });
        match v {
            None if r.reason.is_empty() => {
                r.reason = format!(
                    "no data from Prometheus for \"{}\" (no requests scraped in the window?)",
                    p.name
                )
            }
            None => {}
            Some(v) => {
                r.observed = format!("{}{}", fmt(v), extra(v));
                r.verdict = if bound::holds(v, b) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                if r.verdict == Verdict::Fail {
                    r.reason = format!("{} is not {}", fmt(v), bound::describe(b, fmt));
                }
            }
        }
    }

    async fn promql(
        &self,
        e: &Expectation,
        expr: &str,
        phase: &str,
        agg: Aggregate,
        b: &Bound<f64>,
    ) -> Result<ExpectationResult, PromError> {
        let agg_name = match agg {
            Aggregate::Last => "at end",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Avg => "avg",
        };
        let mut r = result(
            e,
            "promql",
            format!(
                "{expr} ({agg_name} over \"{phase}\") {}",
                bound::describe(b, bound::number)
            ),
        );
        let Some(p) = self.phase(phase) else {
            r.reason = format!("phase \"{phase}\" did not run");
            return Ok(r);
        };
        let step = self.inp.plan.prometheus.evaluation_interval;
        let series = soft(self.client.query_range(expr, p.start, p.end, step).await)?;
        let mut ev = QueryEvidence {
            promql: expr.to_string(),
            at_ms: unix_ms(p.end),
            start_ms: Some(unix_ms(p.start)),
            value: None,
        };
        match series {
            Err(msg) => r.reason = format!("query failed: {msg}"),
            Ok(s) if s.is_empty() => {
                r.reason = format!("the expression returned no data during \"{phase}\"")
            }
            Ok(s) if s.len() > 1 => {
                r.reason = format!(
                    "the expression returned {} series; aggregate it to one (e.g. sum(...) or max(...))",
                    s.len()
                )
            }
            Ok(s) => {
                let vals: Vec<f64> = s[0]
                    .points
                    .iter()
                    .map(|(_, v)| *v)
                    .filter(|v| !v.is_nan())
                    .collect();
                let value = aggregate(&vals, agg);
                ev.value = value;
                match value {
                    None => {
                        r.reason = format!("the expression returned only NaN during \"{phase}\"")
                    }
                    Some(v) => {
                        r.observed = format!("{} ({} samples)", bound::number(v), vals.len());
                        r.verdict = if bound::holds(v, b) {
                            Verdict::Pass
                        } else {
                            Verdict::Fail
                        };
                        if r.verdict == Verdict::Fail {
                            r.reason = format!(
                                "{} is not {}",
                                bound::number(v),
                                bound::describe(b, bound::number)
                            );
                        }
                    }
                }
            }
        }
        r.queries.push(ev);
        Ok(r)
    }

    async fn alert_timeline(&self, name: &str) -> Result<AlertTimeline, PromError> {
        let step = self.inp.plan.prometheus.evaluation_interval;
        let start = self.inp.record.started_at;
        let expr = queries::alert_states(name);
        let series = soft(
            self.client
                .query_range(&expr, start, self.inp.until, step)
                .await,
        )?
        .unwrap_or_default();
        let times = |state: &str| -> Vec<u64> {
            series
                .iter()
                .filter(|s| s.labels.get("alertstate").map(String::as_str) == Some(state))
                .flat_map(|s| s.points.iter().map(|(t, _)| unix_ms(*t)))
                .collect()
        };
        let spans = alert::spans(
            &times("pending"),
            &times("firing"),
            unix_ms(start),
            unix_ms(self.inp.until),
            step.as_millis() as u64,
        );
        let first = |st| spans.iter().find(|s| s.state == st).map(|s| s.start_ms);
        let api_state_at_end = soft(self.client.alerts().await)?
            .ok()
            .and_then(|alerts| alerts.into_iter().find(|a| a.name == name).map(|a| a.state));
        Ok(AlertTimeline {
            alert: name.to_string(),
            pending_at_ms: first(outcome::AlertState::Pending),
            firing_at_ms: first(outcome::AlertState::Firing),
            resolved_at_ms: spans
                .iter()
                .find(|s| s.state == outcome::AlertState::Firing)
                .and_then(|s| s.end_ms),
            spans,
            api_state_at_end,
        })
    }

    fn alert(
        &self,
        e: &Expectation,
        a: &AlertExpectation,
        t: &AlertTimeline,
        windows: &[PhaseWindow],
    ) -> ExpectationResult {
        let rule = self.inp.rules.get(&a.alert).copied().unwrap_or_default();
        let bounds = alert::applied_bounds(a, &rule, self.inp.plan);
        let mut words = Vec::new();
        if !a.silent_during.is_empty() {
            words.push(format!("silent during {}", a.silent_during.join(", ")));
        }
        if let (Some(p), Some(b)) = (&a.fires_during, bounds.fire_within) {
            let how = if a.fire_within.is_some() {
                ""
            } else {
                " (derived)"
            };
            words.push(format!("fires during \"{p}\" within {}{how}", human(b)));
        }
        if let (Some(p), Some(b)) = (&a.resolves_during, bounds.resolve_within) {
            let how = if a.resolve_within.is_some() {
                ""
            } else {
                " (derived)"
            };
            words.push(format!("resolves during \"{p}\" within {}{how}", human(b)));
        }
        let mut r = result(e, "alert", format!("{}: {}", a.alert, words.join("; ")));
        let j = alert::judge(a, &t.spans, windows, bounds);
        r.verdict = j.verdict;
        r.observed = j.observed;
        r.reason = j.reason;
        r.queries.push(QueryEvidence {
            promql: queries::alert_states(&a.alert),
            at_ms: unix_ms(self.inp.until),
            start_ms: Some(unix_ms(self.inp.record.started_at)),
            value: None,
        });
        if let Some(state) = &t.api_state_at_end {
            r.client
                .push(format!("/api/v1/alerts at verification: {state}"));
        } else {
            r.client
                .push("/api/v1/alerts at verification: inactive".to_string());
        }
        for p in windows {
            if let Some(x) = p.injected_error_ratio.filter(|x| *x > 0.0) {
                r.client.push(format!(
                    "injected 5xx ratio in \"{}\": {}",
                    p.name,
                    bound::ratio(x)
                ));
            }
        }
        r
    }

    async fn agreement(
        &self,
        p: &PhaseRecord,
        buckets: &[f64],
    ) -> Result<PhaseAgreement, PromError> {
        let mut a = PhaseAgreement {
            phase: p.name.clone(),
            injected_error_ratio: p.injected_error_ratio(),
            client_error_ratio: p.observed_error_ratio(),
            prometheus_error_ratio: None,
            client_p90_seconds: p.latency_quantile_secs(0.9),
            client_service_p90_seconds: (!p.latency_service.is_empty())
                .then(|| p.latency_service.value_at_quantile(0.9) as f64 / 1e6),
            prometheus_p90_seconds: None,
            p90_bucket: None,
            p90_same_bucket: None,
        };
        if self.too_short(p) {
            return Ok(a);
        }
        let w = window(p);
        a.prometheus_error_ratio = self
            .scalar(&queries::error_ratio(self.job, w), p.end)
            .await?
            .ok()
            .flatten();
        a.prometheus_p90_seconds = self
            .scalar(&queries::latency_quantile(0.9, self.job, w), p.end)
            .await?
            .ok()
            .flatten();
        if let Some(pv) = a.prometheus_p90_seconds {
            a.p90_bucket = queries::bucket_of(buckets, pv);
            a.p90_same_bucket = a
                .client_service_p90_seconds
                .map(|c| queries::bucket_of(buckets, c) == a.p90_bucket && a.p90_bucket.is_some());
        }
        Ok(a)
    }
}

fn client_ratios(p: &PhaseRecord) -> String {
    let injected = p
        .injected_error_ratio()
        .map(bound::ratio)
        .unwrap_or_else(|| "n/a".into());
    let seen = p
        .observed_error_ratio()
        .map(bound::ratio)
        .unwrap_or_else(|| "n/a".into());
    format!(
        "injected 5xx ratio = {injected} ({} of {} sent); client saw {seen} ({} of {} responses)",
        p.injected_errors,
        p.sent,
        p.server_errors(),
        p.responses()
    )
}

fn aggregate(vals: &[f64], agg: Aggregate) -> Option<f64> {
    if vals.is_empty() {
        return None;
    }
    Some(match agg {
        Aggregate::Last => vals[vals.len() - 1],
        Aggregate::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates() {
        let v = [3.0, 1.0, 2.0];
        assert_eq!(aggregate(&v, Aggregate::Last), Some(2.0));
        assert_eq!(aggregate(&v, Aggregate::Min), Some(1.0));
        assert_eq!(aggregate(&v, Aggregate::Max), Some(3.0));
        assert_eq!(aggregate(&v, Aggregate::Avg), Some(2.0));
        assert_eq!(aggregate(&[], Aggregate::Avg), None);
    }
}
