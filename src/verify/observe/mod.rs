//! The observe step: every question verification asks Prometheus (PromQL
//! built by `verify::queries`), plus the client's record and the webhook
//! recorder's deliveries, turned into typed `Observations`. Deciding is
//! left to `judge`; a query Prometheus rejects becomes `Reading::Failed`
//! for that one expectation, any other failure ends verification.

pub mod charts;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::alert::{self, RuleTiming};
use super::observation::{
    AlertObs, ClientCounts, ErrorRatioObs, LatencyMeanObs, LatencyObs, LoadObs, ModelQualityObs,
    NotifiedObs, Observation, Observations, PhaseQuery, PhaseSides, PromQlObs, QualityReading,
    RangeReading, Reading,
};
use super::outcome::AlertTimeline;
use super::phase::{AlertPhases, Delivery, PhaseId, PhaseWindow, Phases};
use super::queries;
use crate::alertmanager::Deliveries;
use crate::plan::{ExpectKind, Expectation, Plan, QualityMetric};
use crate::prom::{PromClient, PromError};
use crate::record::{PhaseRecord, RunRecord};
use crate::timeutil::unix_ms;

/// What verification needs besides a Prometheus to ask.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub record: &'a RunRecord,
    /// Alert name → timing of its (time-scaled) rule, for derived bounds.
    pub rules: &'a BTreeMap<String, RuleTiming>,
    /// The end of the observed range (after the settle period).
    pub until: SystemTime,
    /// What the webhook recorder saw (None: no Alertmanager ran).
    pub deliveries: Option<&'a Deliveries>,
}

/// Asks everything the plan's expectations and the phase agreement need.
pub async fn observe<'a>(
    client: &PromClient,
    inp: &Inputs<'a>,
) -> Result<Observations<'a>, PromError> {
    let o = Observer {
        client,
        inp,
        job: &inp.plan.prometheus.job,
        m: queries::MetricQueries::new(&inp.plan.metrics, &inp.plan.prometheus.job),
    };
    let phases = Phases::new(o.windows().await?);
    let buckets = o.bucket_bounds().await?;
    let mut timelines: BTreeMap<String, AlertTimeline> = BTreeMap::new();
    let mut expectations = Vec::with_capacity(inp.plan.expects.len());
    for e in &inp.plan.expects {
        expectations.push((e, o.expectation(e, &phases, &mut timelines).await?));
    }
    let mut sides = Vec::with_capacity(inp.record.phases.len());
    for (id, p) in phases.ids().zip(&inp.record.phases) {
        sides.push(o.sides(id, p).await?);
    }
    Ok(Observations {
        buckets,
        started_at_ms: unix_ms(inp.record.started_at),
        until_ms: unix_ms(inp.until),
        phases,
        expectations,
        alerts: timelines.into_values().collect(),
        sides,
        missing_shards: inp.record.generator.missing_shards.clone(),
    })
}

/// A query that failed because of the query itself (not the connection)
/// is that query's answer; anything else ends verification.
fn soft<T>(r: Result<T, PromError>) -> Result<Result<T, String>, PromError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ PromError::Query { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// A phase's window as PromQL sees it: evaluate at the end, look back over
/// the whole phase. Counters' increases inside the window come only from
/// samples scraped during the phase.
fn window(p: &PhaseRecord) -> Duration {
    p.end.duration_since(p.start).unwrap_or_default()
}

fn delivery(p: &PhaseRecord) -> Delivery {
    let lag = &p.scheduler_lag;
    Delivery {
        planned: p.planned,
        sent: p.sent,
        dropped: p.dropped,
        achieved_rps: p.achieved_rps(),
        lag_us: (!lag.is_empty()).then(|| {
            (
                lag.value_at_quantile(0.5),
                lag.value_at_quantile(0.99),
                lag.max(),
            )
        }),
    }
}

fn client_counts(p: &PhaseRecord) -> ClientCounts {
    ClientCounts {
        sent: p.sent,
        injected_errors: p.injected_errors,
        responses: p.responses(),
        server_errors: p.server_errors(),
    }
}

/// `'a`: what the plan and the recorder lend to the observations.
struct Observer<'o, 'a> {
    client: &'o PromClient,
    inp: &'o Inputs<'a>,
    job: &'o str,
    /// The service's metric convention: every question about its metrics.
    m: queries::MetricQueries,
}

impl<'a> Observer<'_, 'a> {
    fn record(&self, id: PhaseId) -> &'a PhaseRecord {
        &self.inp.record.phases[id.index()]
    }

    /// One instant value of `expr` at `at`.
    async fn instant(&self, expr: &str, at: SystemTime) -> Result<Reading, PromError> {
        Ok(match soft(self.client.query(expr, at).await)? {
            Err(msg) => Reading::Failed(msg),
            Ok(samples) => match samples.as_slice() {
                [one] if !one.value.is_nan() => Reading::Value(one.value),
                _ => Reading::NoData,
            },
        })
    }

    /// `query(window)` at the phase's end, unless the phase is too short to
    /// hold two scrapes.
    async fn over_phase(
        &self,
        p: &PhaseRecord,
        query: impl FnOnce(Duration) -> String,
    ) -> Result<PhaseQuery, PromError> {
        if window(p) < 2 * self.inp.plan.prometheus.scrape_interval {
            return Ok(PhaseQuery::TooShort);
        }
        let promql = query(window(p));
        let reading = self.instant(&promql, p.end).await?;
        Ok(PhaseQuery::Asked { promql, reading })
    }

    async fn windows(&self) -> Result<Vec<PhaseWindow>, PromError> {
        let mut out = Vec::new();
        for p in &self.inp.record.phases {
            let q = queries::scrapes(self.job, window(p));
            let scraped = matches!(self.instant(&q, p.end).await?, Reading::Value(n) if n > 0.0);
            out.push(PhaseWindow {
                name: p.name.clone(),
                start_ms: unix_ms(p.start),
                end_ms: unix_ms(p.end),
                scraped,
                injected_error_ratio: p.injected_error_ratio(),
                // The one join of a recorded phase with its plan.
                faults: (self.inp.plan.phases.iter())
                    .find(|planned| planned.name == p.name)
                    .map(|planned| planned.faults.clone())
                    .unwrap_or_default(),
                fault_ack: p.fault_ack(),
                delivery: delivery(p),
            });
        }
        Ok(out)
    }

    /// The histogram's real bucket bounds in seconds (none without one).
    async fn bucket_bounds(&self) -> Result<Vec<f64>, PromError> {
        let Some(q) = self.m.bucket_bounds() else {
            return Ok(Vec::new());
        };
        let samples = soft(self.client.query(&q, self.inp.until).await)?.unwrap_or_default();
        let mut b: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.labels.get("le"))
            .filter_map(|le| le.parse::<f64>().ok())
            .map(|le| self.m.le_seconds(le))
            .collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        Ok(b)
    }

    async fn expectation(
        &self,
        e: &'a Expectation,
        phases: &Phases,
        timelines: &mut BTreeMap<String, AlertTimeline>,
    ) -> Result<Observation<'a>, PromError> {
        let one = |name: &str| phases.resolve(name);
        Ok(match &e.kind {
            ExpectKind::LatencyQuantile {
                quantile,
                phase,
                bound,
            } => match one(phase) {
                Ok(id) => Observation::LatencyQuantile(LatencyObs {
                    quantile: *quantile,
                    bound,
                    phase: id,
                    client: self.record(id).latency_quantile_secs(*quantile),
                    prometheus: match self.m.latency_quantile(*quantile, Duration::ZERO) {
                        Some(_) => {
                            self.over_phase(self.record(id), |w| {
                                self.m.latency_quantile(*quantile, w).unwrap_or_default()
                            })
                            .await?
                        }
                        // `check` refuses this; a plan built in code may ask.
                        None => PhaseQuery::Asked {
                            promql: String::new(),
                            reading: Reading::Failed(
                                self.m
                                    .spec()
                                    .quantile_refusal()
                                    .map_or_else(String::new, |(why, hint)| {
                                        format!("{why} (hint: {hint})")
                                    }),
                            ),
                        },
                    },
                }),
                Err(m) => Observation::PhaseMissing(m),
            },
            ExpectKind::ErrorRatio { phase, bound } => match one(phase) {
                Ok(id) => Observation::ErrorRatio(ErrorRatioObs {
                    bound,
                    phase: id,
                    client: client_counts(self.record(id)),
                    prometheus: self
                        .over_phase(self.record(id), |w| self.m.error_ratio(w))
                        .await?,
                }),
                Err(m) => Observation::PhaseMissing(m),
            },
            ExpectKind::LatencyMean { phase, bound } => match one(phase) {
                Ok(id) => Observation::LatencyMean(LatencyMeanObs {
                    bound,
                    phase: id,
                    client: Some(&self.record(id).latency_service)
                        .filter(|h| !h.is_empty())
                        .map(|h| h.mean() / 1e6),
                    prometheus: self
                        .over_phase(self.record(id), |w| self.m.latency_mean(w))
                        .await?,
                }),
                Err(m) => Observation::PhaseMissing(m),
            },
            ExpectKind::PromQl {
                expr,
                phase,
                aggregate,
                bound,
            } => match one(phase) {
                Ok(id) => Observation::PromQl(PromQlObs {
                    expr,
                    aggregate: *aggregate,
                    bound,
                    phase: id,
                    prometheus: self.range_over(expr, self.record(id)).await?,
                }),
                Err(m) => Observation::PhaseMissing(m),
            },
            ExpectKind::Alert(a) => match AlertPhases::resolve(a, phases) {
                Ok(resolved) => Observation::Alert(AlertObs {
                    spec: a,
                    phases: resolved,
                    timeline: self.timeline(&a.alert, timelines).await?,
                }),
                Err(m) => Observation::PhaseMissing(m),
            },
            ExpectKind::Notified(n) => Observation::Notified(NotifiedObs {
                spec: n,
                timeline: self.timeline(&n.alert, timelines).await?,
                deliveries: self.inp.deliveries,
            }),
            ExpectKind::Load(l) => match one(&l.phase) {
                Ok(id) => Observation::Load(LoadObs { spec: l, phase: id }),
                Err(m) => Observation::PhaseMissing(m),
            },
            ExpectKind::ModelQuality {
                metric,
                phase,
                bound,
            } => match one(phase) {
                Ok(id) => self.model_quality(metric, bound, id).await?,
                Err(m) => Observation::PhaseMissing(m),
            },
        })
    }

    /// The pushed metric and the window gauges from the phase start until
    /// the batch job can no longer push a window inside the phase.
    async fn model_quality(
        &self,
        metric: &'a QualityMetric,
        bound: &'a crate::plan::QualityBound,
        id: PhaseId,
    ) -> Result<Observation<'a>, PromError> {
        use super::quality::{gauge_query, last_inside, metric_query};
        use crate::evaluate::push::{SAMPLES, WINDOW_END, WINDOW_START};
        let p = self.record(id);
        let (job, window, every) = match &self.inp.plan.model {
            Some(m) => (m.job.as_str(), m.window, m.evaluate_every),
            None => ("", Duration::ZERO, Duration::ZERO),
        };
        let promql = metric_query(metric, job);
        let (from, to) = (p.start, self.inp.until.min(p.end + window + every));
        let step = self.inp.plan.prometheus.evaluation_interval;
        let mut series = Vec::with_capacity(4);
        let mut failed = None;
        for q in [
            promql.clone(),
            gauge_query(WINDOW_START, job),
            gauge_query(WINDOW_END, job),
            gauge_query(SAMPLES, job),
        ] {
            match soft(self.client.query_range(&q, from, to, step).await)? {
                Ok(s) => series.push(s.into_iter().next().map(|s| s.points).unwrap_or_default()),
                Err(msg) => {
                    failed = Some(msg);
                    break;
                }
            }
        }
        let reading = match failed {
            Some(msg) => QualityReading::Failed(msg),
            None => last_inside(
                &series[0],
                &series[1],
                &series[2],
                &series[3],
                unix_ms(p.start),
                unix_ms(p.end),
            )
            .map_or(QualityReading::NoWindow, QualityReading::Found),
        };
        Ok(Observation::ModelQuality(ModelQualityObs {
            metric,
            bound,
            phase: id,
            promql,
            range_ms: (unix_ms(from), unix_ms(to)),
            reading,
            truth: &p.model,
            run_truth: self.inp.record.phases.iter().map(|p| &p.model).collect(),
            sent: p.sent,
            window,
            every,
        }))
    }

    /// `expr` at every evaluation of the phase.
    async fn range_over(&self, expr: &str, p: &PhaseRecord) -> Result<RangeReading, PromError> {
        let step = self.inp.plan.prometheus.evaluation_interval;
        Ok(
            match soft(self.client.query_range(expr, p.start, p.end, step).await)? {
                Err(msg) => RangeReading::Failed(msg),
                Ok(series) => RangeReading::Series(
                    series
                        .into_iter()
                        .map(|s| s.points.into_iter().map(|(_, v)| v).collect())
                        .collect(),
                ),
            },
        )
    }

    /// The alert's timeline, asked once per alert however many
    /// expectations name it.
    async fn timeline(
        &self,
        name: &str,
        cache: &mut BTreeMap<String, AlertTimeline>,
    ) -> Result<AlertTimeline, PromError> {
        if let Some(t) = cache.get(name) {
            return Ok(t.clone());
        }
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
        let api_state_at_end = soft(self.client.alerts().await)?
            .ok()
            .and_then(|alerts| alerts.into_iter().find(|a| a.name == name).map(|a| a.state));
        let t = alert::timeline(
            name,
            &times("pending"),
            &times("firing"),
            (unix_ms(start), unix_ms(self.inp.until)),
            step.as_millis() as u64,
            api_state_at_end,
        );
        cache.insert(name.to_string(), t.clone());
        Ok(t)
    }

    async fn sides(&self, id: PhaseId, p: &PhaseRecord) -> Result<PhaseSides, PromError> {
        let error_ratio = self.over_phase(p, |w| self.m.error_ratio(w)).await?;
        // Conventions without buckets have no P90 to compare.
        let p90 = match self.m.spec().has_quantiles() {
            true => {
                self.over_phase(p, |w| self.m.latency_quantile(0.9, w).unwrap_or_default())
                    .await?
            }
            false => PhaseQuery::TooShort,
        };
        let value = |q: PhaseQuery| match q {
            PhaseQuery::Asked { reading, .. } => reading.value(),
            PhaseQuery::TooShort => None,
        };
        Ok(PhaseSides {
            phase: id,
            client: client_counts(p),
            client_p90: p.latency_quantile_secs(0.9),
            client_service_p90: (!p.latency_service.is_empty())
                .then(|| p.latency_service.value_at_quantile(0.9) as f64 / 1e6),
            prometheus_error_ratio: value(error_ratio),
            prometheus_p90: value(p90),
        })
    }
}
