//! Delivered load as part of the verdict: the `load` expectation kind, and
//! the rule that a phase which delivered under 95 % of its schedule makes the
//! expectations over it inconclusive (a gate that passed because the
//! generator could not send is a false pass). Pure: records in, verdicts out.

use crate::plan::{ExpectKind, Expectation, LoadExpectation};
use crate::record::{PhaseRecord, RunRecord};

use super::outcome::{ExpectationResult, Verdict};

/// Share of its schedule a phase must deliver before expectations over it
/// are judged (without a `load` expectation of its own).
pub const MIN_DELIVERED: f64 = 0.95;

/// Requests sent ÷ requests the schedule held; None without a schedule
/// (closed loop) or with an empty one.
pub fn achieved_ratio(p: &PhaseRecord) -> Option<f64> {
    p.planned
        .filter(|&n| n > 0)
        .map(|n| p.sent as f64 / n as f64)
}

fn delivered(p: &PhaseRecord) -> String {
    match (p.planned, achieved_ratio(p)) {
        (Some(n), Some(r)) => format!(
            "sent {} of {n} scheduled ({:.2}%), {} dropped, {:.1} rps",
            p.sent,
            r * 100.0,
            p.dropped,
            p.achieved_rps()
        ),
        _ => format!(
            "sent {}, {} dropped, {:.1} rps",
            p.sent,
            p.dropped,
            p.achieved_rps()
        ),
    }
}

/// Judges a `load` expectation against the phase's record.
pub fn judge(e: &Expectation, l: &LoadExpectation, p: Option<&PhaseRecord>) -> ExpectationResult {
    let mut r = super::result(e, "load", l.describe());
    let Some(p) = p else {
        r.reason = format!("phase \"{}\" did not run", l.phase);
        return r;
    };
    r.observed = delivered(p);
    if !p.scheduler_lag.is_empty() {
        r.client.push(format!(
            "scheduler lag p50 {} µs, p99 {} µs, max {} µs",
            p.scheduler_lag.value_at_quantile(0.5),
            p.scheduler_lag.value_at_quantile(0.99),
            p.scheduler_lag.max()
        ));
    }
    let ratio = achieved_ratio(p);
    if l.min_achieved_ratio.is_some() && ratio.is_none() {
        r.reason = match p.planned {
            None => "closed loop has no schedule to deliver (hint: use max_dropped only, or load.mode = \"open\")".into(),
            Some(_) => format!("phase \"{}\" scheduled no requests", l.phase),
        };
        return r;
    }
    let mut failures = Vec::new();
    if let (Some(min), Some(got)) = (l.min_achieved_ratio, ratio) {
        if got < min {
            failures.push(format!(
                "delivered {:.2}% of the schedule, under {}%",
                got * 100.0,
                min * 100.0
            ));
        }
    }
    if let Some(max) = l.max_dropped {
        if p.dropped > max {
            failures.push(format!(
                "{} sends dropped at max_in_flight, over {max}",
                p.dropped
            ));
        }
    }
    if failures.is_empty() {
        r.verdict = Verdict::Pass;
    } else {
        r.verdict = Verdict::Fail;
        r.reason = failures.join("; ");
    }
    r
}

/// Why the phase's load cannot back a verdict, or None when it delivered
/// at least 95 % of its schedule (or has no schedule: closed loop).
pub fn shortfall(p: &PhaseRecord) -> Option<String> {
    let ratio = achieved_ratio(p)?;
    (ratio < MIN_DELIVERED).then(|| {
        format!(
            "the generator delivered only {:.1}% of phase \"{}\"'s schedule ({}; under {}%), so this verdict does not describe the planned load (hint: more cores or max_in_flight, or add a load expectation for the phase)",
            ratio * 100.0,
            p.name,
            delivered(p),
            MIN_DELIVERED * 100.0
        )
    })
}

/// The phases an expectation judges.
pub fn phases_of(kind: &ExpectKind) -> Vec<&str> {
    match kind {
        ExpectKind::LatencyQuantile { phase, .. }
        | ExpectKind::ErrorRatio { phase, .. }
        | ExpectKind::PromQl { phase, .. } => vec![phase],
        ExpectKind::Alert(a) => a
            .silent_during
            .iter()
            .chain(&a.fires_during)
            .chain(&a.resolves_during)
            .map(String::as_str)
            .collect(),
        ExpectKind::Notified(_) | ExpectKind::Load(_) => Vec::new(),
    }
}

/// Applies the 95 % rule: an expectation over a phase that delivered too
/// little, and that has no `load` expectation of its own, cannot pass — a
/// pass becomes inconclusive with the reason; a fail or inconclusive keeps
/// its verdict and gains the reason (a failure under less load than
/// planned is still a failure).
pub fn apply(expects: &[Expectation], results: &mut [ExpectationResult], record: &RunRecord) {
    let judged_explicitly = |phase: &str| {
        expects
            .iter()
            .any(|e| matches!(&e.kind, ExpectKind::Load(l) if l.phase == phase))
    };
    for (e, r) in expects.iter().zip(results.iter_mut()) {
        let reasons: Vec<String> = phases_of(&e.kind)
            .into_iter()
            .filter(|ph| !judged_explicitly(ph))
            .filter_map(|ph| record.phases.iter().find(|p| p.name == ph))
            .filter_map(shortfall)
            .collect();
        if reasons.is_empty() {
            continue;
        }
        let why = reasons.join("; ");
        if r.verdict == Verdict::Pass {
            r.verdict = Verdict::Inconclusive;
            r.reason = why;
        } else if r.reason.is_empty() {
            r.reason = why;
        } else {
            r.reason = format!("{}; {why}", r.reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::Recorder;
    use crate::plan::Bound;
    use std::time::{Duration, SystemTime};

    fn phase(name: &str, planned: Option<u64>, sent: u64, dropped: u64) -> PhaseRecord {
        let mut rec = Recorder::new(Duration::from_secs(1));
        for _ in 0..sent {
            rec.on_send(Duration::ZERO, false, false);
        }
        for _ in 0..dropped {
            rec.on_drop();
        }
        let t = SystemTime::UNIX_EPOCH;
        let mut p = rec.into_record(name.into(), t, t + Duration::from_secs(1));
        p.planned = planned;
        p
    }

    fn load(phase: &str, ratio: Option<f64>, dropped: Option<u64>) -> Expectation {
        Expectation {
            id: "load".into(),
            kind: ExpectKind::Load(LoadExpectation {
                phase: phase.into(),
                min_achieved_ratio: ratio,
                max_dropped: dropped,
            }),
            allow_inconclusive: false,
        }
    }

    #[test]
    fn load_expectation_table() {
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
            let e = load("spike", ratio, max);
            let ExpectKind::Load(l) = &e.kind else {
                unreachable!()
            };
            let p = phase("spike", planned, sent, dropped);
            let r = judge(&e, l, Some(&p));
            assert_eq!(
                r.verdict, want,
                "{ratio:?}/{max:?} planned {planned:?} sent {sent} dropped {dropped}: {r:?}"
            );
            assert_eq!(r.verdict == Verdict::Pass, r.reason.is_empty(), "{r:?}");
        }
        let e = load("spike", Some(0.9), None);
        let ExpectKind::Load(l) = &e.kind else {
            unreachable!()
        };
        assert_eq!(judge(&e, l, None).verdict, Verdict::Inconclusive);
    }

    fn over(phase: &str) -> Expectation {
        Expectation {
            id: format!("ratio-{phase}"),
            kind: ExpectKind::ErrorRatio {
                phase: phase.into(),
                bound: Bound::Below(0.01),
            },
            allow_inconclusive: false,
        }
    }

    fn verdict(v: Verdict, reason: &str) -> ExpectationResult {
        let mut r = super::super::result(&over("x"), "error_ratio", String::new());
        r.verdict = v;
        r.reason = reason.into();
        r
    }

    #[test]
    fn shortfall_rule_table() {
        let record = RunRecord {
            started_at: SystemTime::UNIX_EPOCH,
            ended_at: SystemTime::UNIX_EPOCH,
            phases: vec![
                phase("full", Some(1000), 990, 0),
                phase("short", Some(1000), 900, 100),
                phase("closed", None, 10, 0),
            ],
            aborted: false,
            generator: Default::default(),
        };
        // (expectations, incoming verdicts, wanted verdicts, reason mentions the shortfall)
        type Case = (Vec<Expectation>, Vec<Verdict>, Vec<Verdict>, Vec<bool>);
        let cases: Vec<Case> = vec![
            (
                vec![over("full")],
                vec![Verdict::Pass],
                vec![Verdict::Pass],
                vec![false],
            ),
            (
                vec![over("short")],
                vec![Verdict::Pass],
                vec![Verdict::Inconclusive],
                vec![true],
            ),
            (
                vec![over("short")],
                vec![Verdict::Fail],
                vec![Verdict::Fail],
                vec![true],
            ),
            (
                vec![over("closed")],
                vec![Verdict::Pass],
                vec![Verdict::Pass],
                vec![false],
            ),
            // A load expectation of its own takes the phase out of the rule.
            (
                vec![over("short"), load("short", Some(0.8), None)],
                vec![Verdict::Pass, Verdict::Pass],
                vec![Verdict::Pass, Verdict::Pass],
                vec![false, false],
            ),
        ];
        for (expects, incoming, want, mentions) in cases {
            let mut results: Vec<_> = incoming
                .iter()
                .map(|&v| verdict(v, if v == Verdict::Fail { "too high" } else { "" }))
                .collect();
            apply(&expects, &mut results, &record);
            for ((r, w), m) in results.iter().zip(&want).zip(&mentions) {
                assert_eq!(r.verdict, *w, "{:?}", r);
                assert_eq!(
                    r.reason.contains("delivered only 90.0%"),
                    *m,
                    "{}",
                    r.reason
                );
            }
        }
    }

    #[test]
    fn phases_of_an_alert_are_all_its_windows() {
        let a = crate::plan::AlertExpectation {
            alert: "HighErrorRate".into(),
            silent_during: vec!["baseline".into()],
            fires_during: Some("spike".into()),
            fire_within: None,
            resolves_during: Some("recovery".into()),
            resolve_within: None,
        };
        assert_eq!(
            phases_of(&ExpectKind::Alert(a)),
            ["baseline", "spike", "recovery"]
        );
    }
}
