//! Delivered load in the verdict: the judge of the `load` kind, and the
//! rule that cuts across kinds — an expectation over a phase that delivered
//! under 95 % of its schedule cannot pass (a gate that passed because the
//! generator could not send is a false pass). Pure: reads each phase's
//! `Delivery` from the context.

use super::{Context, Judged};
use crate::plan::ExpectKind;
use crate::verify::observation::{LoadObs, Observation};
use crate::verify::outcome::Verdict;
use crate::verify::phase::{Delivery, PhaseId, PhaseWindow};

/// Share of its schedule a phase must deliver before expectations over it
/// are judged (without a `load` expectation of its own).
pub const MIN_DELIVERED: f64 = 0.95;

fn delivered(d: &Delivery) -> String {
    match (d.planned, d.achieved_ratio()) {
        (Some(n), Some(r)) => format!(
            "sent {} of {n} scheduled ({:.2}%), {} dropped, {:.1} rps",
            d.sent,
            r * 100.0,
            d.dropped,
            d.achieved_rps
        ),
        _ => format!(
            "sent {}, {} dropped, {:.1} rps",
            d.sent, d.dropped, d.achieved_rps
        ),
    }
}

/// `load`: sent ÷ scheduled and drops of the phase against the bounds.
pub fn load(o: &LoadObs<'_>, cx: &Context<'_>) -> Judged {
    let w = cx.phases.get(o.phase);
    let (l, d) = (o.spec, &w.delivery);
    let mut j = Judged::new(l.describe());
    j.observed = delivered(d);
    if let Some((p50, p99, max)) = d.lag_us {
        j.client.push(format!(
            "scheduler lag p50 {p50} µs, p99 {p99} µs, max {max} µs"
        ));
    }
    let ratio = d.achieved_ratio();
    if l.min_achieved_ratio.is_some() && ratio.is_none() {
        j.reason = match d.planned {
            None => "closed loop has no schedule to deliver (hint: use max_dropped only, or load.mode = \"open\")".into(),
            Some(_) => format!("phase \"{}\" scheduled no requests", w.name),
        };
        return j;
    }
    let mut failures = Vec::new();
    if let (Some(min), Some(got)) = (l.min_achieved_ratio, ratio)
        && got < min
    {
        failures.push(format!(
            "delivered {:.2}% of the schedule, under {}%",
            got * 100.0,
            min * 100.0
        ));
    }
    if let Some(max) = l.max_dropped
        && d.dropped > max
    {
        failures.push(format!(
            "{} sends dropped at max_in_flight, over {max}",
            d.dropped
        ));
    }
    if failures.is_empty() {
        j.verdict = Verdict::Pass;
    } else {
        j.verdict = Verdict::Fail;
        j.reason = failures.join("; ");
    }
    j
}

/// Why the phase's load cannot back a verdict, or None when it delivered
/// at least 95 % of its schedule (or has no schedule: closed loop).
pub fn shortfall(w: &PhaseWindow) -> Option<String> {
    let ratio = w.delivery.achieved_ratio()?;
    (ratio < MIN_DELIVERED).then(|| {
        format!(
            "the generator delivered only {:.1}% of phase \"{}\"'s schedule ({}; under {}%), so this verdict does not describe the planned load (hint: more cores or max_in_flight, or add a load expectation for the phase)",
            ratio * 100.0,
            w.name,
            delivered(&w.delivery),
            MIN_DELIVERED * 100.0
        )
    })
}

/// The phases an observation judges.
fn phases_of(o: &Observation<'_>) -> Vec<PhaseId> {
    match o {
        Observation::LatencyQuantile(o) => vec![o.phase],
        Observation::ErrorRatio(o) => vec![o.phase],
        Observation::LatencyMean(o) => vec![o.phase],
        Observation::ModelQuality(o) => vec![o.phase],
        Observation::PromQl(o) => vec![o.phase],
        Observation::Alert(o) => {
            let p = &o.phases;
            p.silent
                .iter()
                .copied()
                .chain(p.fires)
                .chain(p.resolves)
                .collect()
        }
        Observation::PhaseMissing(_) | Observation::Notified(_) | Observation::Load(_) => {
            Vec::new()
        }
    }
}

/// The 95 % rule, after the kind's own judge: a pass over a phase that
/// delivered too little, and that has no `load` expectation of its own,
/// becomes inconclusive with the reason; a fail or inconclusive keeps its
/// verdict and gains the reason (a failure under less load than planned is
/// still a failure).
pub fn gate(o: &Observation<'_>, j: &mut Judged, cx: &Context<'_>) {
    let judged_explicitly = |name: &str| {
        (cx.plan.expects.iter()).any(|e| matches!(&e.kind, ExpectKind::Load(l) if l.phase == name))
    };
    let reasons: Vec<String> = phases_of(o)
        .into_iter()
        .map(|id| cx.phases.get(id))
        .filter(|w| !judged_explicitly(&w.name))
        .filter_map(shortfall)
        .collect();
    if reasons.is_empty() {
        return;
    }
    let why = reasons.join("; ");
    if j.verdict == Verdict::Pass {
        j.verdict = Verdict::Inconclusive;
        j.reason = why;
    } else if j.reason.is_empty() {
        j.reason = why;
    } else {
        j.reason = format!("{}; {why}", j.reason);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::testkit::*;
    use super::*;
    use crate::plan::{Bound, Expectation, LoadExpectation};
    use crate::verify::observation::{ClientCounts, ErrorRatioObs, PhaseQuery, Reading};
    use crate::verify::phase::Phases;

    /// The testkit's phases, "spike" with the given delivery.
    fn phases_with(spike: Delivery) -> Phases {
        let mut all = phases().all().to_vec();
        all[1].delivery = spike;
        Phases::new(all)
    }

    fn delivery(planned: Option<u64>, sent: u64, dropped: u64) -> Delivery {
        Delivery {
            planned,
            sent,
            dropped,
            achieved_rps: sent as f64 / 25.0,
            lag_us: Some((30, 80, 400)),
        }
    }

    fn spec(ratio: Option<f64>, dropped: Option<u64>) -> LoadExpectation {
        LoadExpectation {
            phase: "spike".into(),
            min_achieved_ratio: ratio,
            max_dropped: dropped,
        }
    }

    #[test]
    fn load_table() {
        let plan = plan();
        let rules = BTreeMap::new();
        // (ratio bound, max dropped, planned, sent, dropped, verdict)
        let cases = [
            (Some(0.99), Some(0), Some(1000), 1000, 0, Verdict::Pass),
            (Some(0.99), Some(0), Some(1000), 990, 0, Verdict::Pass),
            (Some(0.99), None, Some(1000), 989, 0, Verdict::Fail),
            (None, Some(0), Some(1000), 1000, 1, Verdict::Fail),
            (None, Some(5), Some(1000), 995, 5, Verdict::Pass),
            (Some(0.99), Some(0), Some(1000), 900, 100, Verdict::Fail),
            // Closed loop: no schedule to hold the ratio against.
            (Some(0.99), None, None, 500, 0, Verdict::Inconclusive),
            (None, Some(0), None, 500, 0, Verdict::Pass),
            (Some(0.5), None, Some(0), 0, 0, Verdict::Inconclusive),
        ];
        for (ratio, max, planned, sent, dropped, want) in cases {
            let ph = phases_with(delivery(planned, sent, dropped));
            let cx = context(&plan, &rules, &ph);
            let l = spec(ratio, max);
            let id = ph.resolve("spike").unwrap();
            let j = load(
                &LoadObs {
                    spec: &l,
                    phase: id,
                },
                &cx,
            );
            assert_eq!(
                j.verdict, want,
                "{ratio:?}/{max:?} planned {planned:?} sent {sent} dropped {dropped}: {j:?}"
            );
            assert_eq!(j.verdict == Verdict::Pass, j.reason.is_empty(), "{j:?}");
            assert!(j.client[0].contains("p99 80 µs"), "{j:?}");
        }
    }

    #[test]
    fn shortfall_rule_table() {
        let rules = BTreeMap::new();
        let with_load = {
            let mut p = plan();
            p.expects.push(Expectation {
                id: "load".into(),
                kind: ExpectKind::Load(spec(Some(0.5), None)),
                allow_inconclusive: false,
            });
            p
        };
        // (spike's delivery, its own load expectation?, incoming verdict,
        //  wanted verdict, reason names the shortfall)
        let cases = [
            (
                delivery(Some(1000), 990, 0),
                false,
                Verdict::Pass,
                Verdict::Pass,
                false,
            ),
            (
                delivery(Some(1000), 900, 100),
                false,
                Verdict::Pass,
                Verdict::Inconclusive,
                true,
            ),
            (
                delivery(Some(1000), 900, 100),
                false,
                Verdict::Fail,
                Verdict::Fail,
                true,
            ),
            (
                delivery(None, 10, 0),
                false,
                Verdict::Pass,
                Verdict::Pass,
                false,
            ),
            (
                delivery(Some(1000), 900, 100),
                true,
                Verdict::Pass,
                Verdict::Pass,
                false,
            ),
        ];
        let bound = Bound::Below(0.1);
        for (d, own, incoming, want, mentions) in cases {
            let plan = if own { with_load.clone() } else { plan() };
            let ph = phases_with(d);
            let cx = context(&plan, &rules, &ph);
            let o = Observation::ErrorRatio(ErrorRatioObs {
                bound: &bound,
                phase: ph.resolve("spike").unwrap(),
                client: ClientCounts::default(),
                prometheus: PhaseQuery::Asked {
                    promql: "x".into(),
                    reading: Reading::Value(0.0),
                },
            });
            let mut j = Judged::new("e".into());
            j.verdict = incoming;
            if incoming == Verdict::Fail {
                j.reason = "too high".into();
            }
            gate(&o, &mut j, &cx);
            assert_eq!(j.verdict, want, "{d:?}: {j:?}");
            assert_eq!(
                j.reason.contains("delivered only 90.0%"),
                mentions,
                "{}",
                j.reason
            );
            if incoming == Verdict::Fail {
                assert!(j.reason.starts_with("too high"), "{}", j.reason);
            }
        }
    }
}
