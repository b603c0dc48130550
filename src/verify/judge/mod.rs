//! The judge step: `expectation + observation -> verdict with evidence`.
//! Pure (no tokio, no reqwest, no clock): every input is in `Observations`
//! and `Context`, so each kind is table-tested without a Prometheus.

pub mod alert;
pub mod delivered;
pub mod fault_ack;
pub mod notify;
pub mod quality;
pub mod shards;
pub mod value;

use std::collections::BTreeMap;

use super::alert::RuleTiming;
use super::observation::{Observation, Observations, PhaseSides};
use super::outcome::{
    ExpectationKind, ExpectationResult, Outcome, PhaseAgreement, QueryEvidence, Verdict,
};
use super::phase::{PhaseWindow, Phases};
use super::queries;
use crate::plan::{ExpectKind, Expectation, Plan};

/// What every judge may read besides its own observation.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Intervals, and the phases' faults for derived alert bounds.
    pub plan: &'a Plan,
    /// Alert name → timing of its (time-scaled) rule.
    pub rules: &'a BTreeMap<String, RuleTiming>,
    pub phases: &'a Phases,
    /// Upper bounds of the latency histogram's buckets, sorted.
    pub buckets: &'a [f64],
    /// Start of the load and end of the observed range (unix ms).
    pub started_at_ms: u64,
    pub until_ms: u64,
}

/// The kind-specific part of an `ExpectationResult`.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// What was expected, in words, with the bounds actually applied.
    pub expected: String,
    pub verdict: Verdict,
    /// What was observed, in words (empty when nothing was).
    pub observed: String,
    /// Why it failed or was inconclusive; empty on pass.
    pub reason: String,
    pub queries: Vec<QueryEvidence>,
    /// Client-side ground truth beside the Prometheus value, in words.
    pub client: Vec<String>,
}

impl Judged {
    /// Inconclusive until a judge decides otherwise.
    pub fn new(expected: String) -> Judged {
        Judged {
            expected,
            verdict: Verdict::Inconclusive,
            observed: String::new(),
            reason: String::new(),
            queries: Vec::new(),
            client: Vec::new(),
        }
    }

    fn into_result(self, e: &Expectation) -> ExpectationResult {
        ExpectationResult {
            id: e.id.clone(),
            kind: ExpectationKind::of(&e.kind),
            expected: self.expected,
            observed: self.observed,
            verdict: self.verdict,
            reason: self.reason,
            inconclusive_allowed: e.allow_inconclusive,
            queries: self.queries,
            client: self.client,
        }
    }
}

/// Judges every observed expectation and the per-phase agreement.
pub fn judge(obs: &Observations<'_>, plan: &Plan, rules: &BTreeMap<String, RuleTiming>) -> Outcome {
    let cx = Context {
        plan,
        rules,
        phases: &obs.phases,
        buckets: &obs.buckets,
        started_at_ms: obs.started_at_ms,
        until_ms: obs.until_ms,
    };
    Outcome {
        results: obs
            .expectations
            .iter()
            .map(|(e, o)| {
                let mut j = one(e, o, &cx);
                delivered::gate(o, &mut j, &cx);
                shards::apply(&e.kind, &obs.missing_shards, j).into_result(e)
            })
            .collect(),
        alerts: obs.alerts.clone(),
        agreement: (obs.sides.iter())
            .map(|s| shards::agreement(agreement(s, &cx), &obs.missing_shards))
            .collect(),
    }
}

/// One expectation: the observation's variant picks its judge; then the
/// fault protocol's rule (faults requested, none acknowledged) may make it
/// inconclusive.
pub fn one(e: &Expectation, o: &Observation<'_>, cx: &Context<'_>) -> Judged {
    let judged = match o {
        Observation::PhaseMissing(m) => {
            let mut j = Judged::new(expected(&e.kind, cx));
            j.reason = m.to_string();
            j
        }
        Observation::LatencyQuantile(o) => value::latency(o, cx),
        Observation::ErrorRatio(o) => value::error_ratio(o, cx),
        Observation::PromQl(o) => value::promql(o, cx),
        Observation::Alert(o) => alert::judge(o, cx),
        Observation::Notified(o) => notify::judge(o, cx),
        Observation::LatencyMean(o) => value::latency_mean(o, cx),
        Observation::Load(o) => delivered::load(o, cx),
        Observation::ModelQuality(o) => quality::judge(o, cx),
    };
    fault_ack::apply(&e.kind, cx.phases, judged)
}

/// The expectation in words, for a result with nothing observed.
fn expected(kind: &ExpectKind, cx: &Context<'_>) -> String {
    match kind {
        ExpectKind::LatencyQuantile {
            quantile,
            phase,
            bound,
        } => value::latency_expected(*quantile, phase, bound),
        ExpectKind::ErrorRatio { phase, bound } => value::error_ratio_expected(phase, bound),
        ExpectKind::PromQl {
            expr,
            phase,
            aggregate,
            bound,
        } => value::promql_expected(expr, phase, *aggregate, bound),
        ExpectKind::Alert(a) => alert::expected_unobserved(a, cx),
        ExpectKind::Notified(n) => n.describe(),
        ExpectKind::LatencyMean { phase, bound } => value::latency_mean_expected(phase, bound),
        ExpectKind::Load(l) => l.describe(),
        ExpectKind::ModelQuality {
            metric,
            phase,
            bound,
        } => quality::expected(metric, phase, bound),
    }
}

/// Evidence of a query over one phase: evaluated at its end, looking back
/// to its start.
fn evidence(promql: String, w: &PhaseWindow, value: Option<f64>) -> QueryEvidence {
    QueryEvidence {
        promql,
        at_ms: w.end_ms,
        start_ms: Some(w.start_ms),
        value,
    }
}

/// Prometheus vs client for one phase, with the histogram bucket of each P90.
pub fn agreement(s: &PhaseSides, cx: &Context<'_>) -> PhaseAgreement {
    let w = cx.phases.get(s.phase);
    let p90_bucket = s
        .prometheus_p90
        .and_then(|v| queries::bucket_of(cx.buckets, v));
    PhaseAgreement {
        phase: w.name.clone(),
        injected_error_ratio: s.client.injected_ratio(),
        client_error_ratio: s.client.observed_ratio(),
        prometheus_error_ratio: s.prometheus_error_ratio,
        client_p90_seconds: s.client_p90,
        client_service_p90_seconds: s.client_service_p90,
        prometheus_p90_seconds: s.prometheus_p90,
        p90_bucket,
        p90_same_bucket: s.prometheus_p90.and_then(|_| {
            s.client_service_p90
                .map(|c| p90_bucket.is_some() && queries::bucket_of(cx.buckets, c) == p90_bucket)
        }),
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! A three-phase run (baseline 0–10 s, spike 10–35 s, recovery 35–55 s)
    //! and a context over it, shared by the judges' table tests.

    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::Context;
    use crate::plan::{LoadMode, Plan};
    use crate::verify::alert::RuleTiming;
    use crate::verify::phase::{PhaseWindow, Phases};

    pub const S: u64 = 1000;

    pub fn phases() -> Phases {
        let p = |name: &str, a: u64, b: u64| PhaseWindow {
            name: name.into(),
            start_ms: a * S,
            end_ms: b * S,
            scraped: true,
            injected_error_ratio: None,
            faults: Default::default(),
            fault_ack: Default::default(),
            delivery: Default::default(),
        };
        Phases::new(vec![
            p("baseline", 0, 10),
            p("spike", 10, 35),
            p("recovery", 35, 55),
        ])
    }

    pub fn plan() -> Plan {
        Plan::single_phase("t", LoadMode::Open, 10.0, Duration::from_secs(1))
    }

    pub const BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, f64::INFINITY];

    pub fn context<'a>(
        plan: &'a Plan,
        rules: &'a BTreeMap<String, RuleTiming>,
        phases: &'a Phases,
    ) -> Context<'a> {
        Context {
            plan,
            rules,
            phases,
            buckets: BUCKETS,
            started_at_ms: 0,
            until_ms: 60 * S,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use crate::verify::observation::ClientCounts;
    use crate::verify::phase::PhaseMissing;

    #[test]
    fn a_missing_phase_is_inconclusive_for_every_kind() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let kinds = [
            ExpectKind::ErrorRatio {
                phase: "gone".into(),
                bound: crate::plan::Bound::Below(0.1),
            },
            ExpectKind::Alert(crate::plan::AlertExpectation {
                alert: "A".into(),
                silent_during: vec!["gone".into()],
                fires_during: None,
                fire_within: None,
                resolves_during: None,
                resolve_within: None,
            }),
        ];
        for kind in kinds {
            let e = Expectation {
                id: "x".into(),
                kind,
                allow_inconclusive: false,
            };
            let j = one(
                &e,
                &Observation::PhaseMissing(PhaseMissing("gone".into())),
                &cx,
            );
            assert_eq!(j.verdict, Verdict::Inconclusive, "{e:?}");
            assert_eq!(j.reason, "phase \"gone\" did not run");
            assert!(j.expected.contains("gone"), "{}", j.expected);
        }
    }

    #[test]
    fn agreement_compares_buckets() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let sides = |client: Option<f64>, prom: Option<f64>| PhaseSides {
            phase: ph.resolve("spike").expect("spike"),
            client: ClientCounts {
                sent: 100,
                injected_errors: 20,
                responses: 100,
                server_errors: 21,
            },
            client_p90: client,
            client_service_p90: client,
            prometheus_error_ratio: Some(0.2),
            prometheus_p90: prom,
        };
        let cases = [
            (Some(0.2), Some(0.22), Some((0.1, 0.25)), Some(true)),
            (Some(0.3), Some(0.22), Some((0.1, 0.25)), Some(false)),
            (None, Some(0.22), Some((0.1, 0.25)), None),
            (Some(0.2), None, None, None),
            (Some(2.0), Some(3.0), None, Some(false)),
        ];
        for (client, prom, bucket, same) in cases {
            let a = agreement(&sides(client, prom), &cx);
            assert_eq!(a.phase, "spike");
            assert_eq!(a.injected_error_ratio, Some(0.2));
            assert_eq!(a.client_error_ratio, Some(0.21));
            assert_eq!(
                (a.p90_bucket, a.p90_same_bucket),
                (bucket, same),
                "{client:?} {prom:?}"
            );
        }
    }
}
