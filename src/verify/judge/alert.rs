//! Judge of `alert` expectations: the alert's pending/firing stretches
//! against each clause (silent during, fires during, resolves during) with
//! bounds from the scenario or derived from the rule. Every clause's phase
//! is resolved before judging, so none can be skipped. Pure.

use super::{Context, Judged};
use crate::plan::AlertExpectation;
use crate::timeutil::human;
use crate::verify::alert::{
    AppliedBounds, RuleTiming, applied_bounds, bounds, describe, overlaps, secs_between,
};
use crate::verify::bound;
use crate::verify::observation::AlertObs;
use crate::verify::outcome::{AlertSpan, AlertState, QueryEvidence, Verdict};
use crate::verify::phase::PhaseWindow;
use crate::verify::queries;

fn rule(a: &AlertExpectation, cx: &Context<'_>) -> RuleTiming {
    cx.rules.get(&a.alert).copied().unwrap_or_default()
}

/// The expectation in words with the bounds found in the plan, for a
/// result with nothing observed.
pub fn expected_unobserved(a: &AlertExpectation, cx: &Context<'_>) -> String {
    expected(a, applied_bounds(a, &rule(a, cx), cx.plan))
}

/// The expectation in words with the bounds actually applied.
fn expected(a: &AlertExpectation, bounds: AppliedBounds) -> String {
    let how = |given: bool| if given { "" } else { " (derived)" };
    let mut words = Vec::new();
    if !a.silent_during.is_empty() {
        words.push(format!("silent during {}", a.silent_during.join(", ")));
    }
    if let (Some(p), Some(b)) = (&a.fires_during, bounds.fire_within) {
        let how = how(a.fire_within.is_some());
        words.push(format!("fires during \"{p}\" within {}{how}", human(b)));
    }
    if let (Some(p), Some(b)) = (&a.resolves_during, bounds.resolve_within) {
        let how = how(a.resolve_within.is_some());
        words.push(format!("resolves during \"{p}\" within {}{how}", human(b)));
    }
    format!("{}: {}", a.alert, words.join("; "))
}

pub fn judge(o: &AlertObs<'_>, cx: &Context<'_>) -> Judged {
    let fires_faults = o.phases.fires.map(|id| &cx.phases.get(id).faults);
    let bounds = bounds(o.spec, &rule(o.spec, cx), fires_faults, &cx.plan.prometheus);
    let mut j = Judged::new(expected(o.spec, bounds));
    let clauses = Clauses {
        silent: o
            .phases
            .silent
            .iter()
            .map(|id| cx.phases.get(*id))
            .collect(),
        fires: o.phases.fires.map(|id| cx.phases.get(id)),
        resolves: o.phases.resolves.map(|id| cx.phases.get(id)),
    };
    let l = lifecycle(&o.timeline.spans, &clauses, bounds);
    j.verdict = l.verdict;
    j.reason = l.reason;
    j.observed = describe(&o.timeline.spans, cx.phases.origin_ms());
    j.queries.push(QueryEvidence {
        promql: queries::alert_states(&o.spec.alert),
        at_ms: cx.until_ms,
        start_ms: Some(cx.started_at_ms),
        value: None,
    });
    j.client.push(format!(
        "/api/v1/alerts at verification: {}",
        o.timeline.api_state_at_end.as_deref().unwrap_or("inactive")
    ));
    for p in cx.phases.all() {
        if let Some(x) = p.injected_error_ratio.filter(|x| *x > 0.0) {
            j.client.push(format!(
                "injected 5xx ratio in \"{}\": {}",
                p.name,
                bound::ratio(x)
            ));
        }
    }
    j
}

/// The windows of an alert expectation's clauses.
pub struct Clauses<'w> {
    pub silent: Vec<&'w PhaseWindow>,
    pub fires: Option<&'w PhaseWindow>,
    pub resolves: Option<&'w PhaseWindow>,
}

/// The lifecycle's verdict and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub verdict: Verdict,
    pub reason: String,
}

/// What each clause found: a broken expectation, or a window without
/// scrapes that proves nothing either way.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    missing_data: Vec<String>,
}

impl Findings {
    fn unscraped(&mut self, w: &PhaseWindow) {
        self.missing_data
            .push(format!("no scrapes of the target during \"{}\"", w.name));
    }
}

/// Judges the stretches against every clause; failures outrank missing data.
pub fn lifecycle(spans: &[AlertSpan], c: &Clauses<'_>, bounds: AppliedBounds) -> Lifecycle {
    let mut f = Findings::default();
    for w in &c.silent {
        silent(spans, w, &mut f);
    }
    let firing: Vec<&AlertSpan> = spans
        .iter()
        .filter(|s| s.state == AlertState::Firing)
        .collect();
    if let Some(w) = c.fires {
        fires(spans, &firing, w, bounds, &mut f);
    }
    if let Some(w) = c.resolves {
        resolves(&firing, w, bounds, &mut f);
    }
    let verdict = if !f.failures.is_empty() {
        Verdict::Fail
    } else if !f.missing_data.is_empty() {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    Lifecycle {
        verdict,
        reason: f
            .failures
            .into_iter()
            .chain(f.missing_data)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `silent_during`: neither pending nor firing at any time in the window.
fn silent(spans: &[AlertSpan], w: &PhaseWindow, f: &mut Findings) {
    if let Some(s) = spans.iter().find(|s| overlaps(s, w)) {
        let state = match s.state {
            AlertState::Firing => "firing",
            AlertState::Pending => "pending",
        };
        f.failures.push(format!(
            "{state} during \"{}\" at {:+.1}s from its start, expected silent",
            w.name,
            secs_between(w.start_ms, s.start_ms.max(w.start_ms))
        ));
    } else if !w.scraped {
        f.unscraped(w);
    }
}

/// `fires_during`: not firing before the phase, firing within the bound.
fn fires(
    spans: &[AlertSpan],
    firing: &[&AlertSpan],
    w: &PhaseWindow,
    bounds: AppliedBounds,
    f: &mut Findings,
) {
    let name = &w.name;
    if let Some(s) = firing
        .iter()
        .find(|s| s.start_ms < w.start_ms && overlaps(s, w))
    {
        f.failures.push(format!(
            "already firing before \"{name}\" started ({:+.1}s)",
            secs_between(w.start_ms, s.start_ms)
        ));
    } else if let Some(s) = firing
        .iter()
        .find(|s| s.start_ms >= w.start_ms && s.start_ms <= w.end_ms)
    {
        let after = secs_between(w.start_ms, s.start_ms);
        if let Some(b) = bounds.fire_within
            && after > b.as_secs_f64()
        {
            f.failures.push(format!(
                "fired {after:.1}s after \"{name}\" started, later than the bound of {:.1}s",
                b.as_secs_f64()
            ));
        }
    } else if !w.scraped {
        f.unscraped(w);
    } else {
        let pending = spans
            .iter()
            .any(|s| s.state == AlertState::Pending && overlaps(s, w));
        let hint = if pending {
            " (it was pending: `for` longer than the phase?)"
        } else {
            ""
        };
        f.failures
            .push(format!("never fired during \"{name}\"{hint}"));
    }
}

/// `resolves_during`: the stretch that began before the phase ends within
/// the bound, and does not start again in the phase.
fn resolves(firing: &[&AlertSpan], w: &PhaseWindow, bounds: AppliedBounds, f: &mut Findings) {
    let name = &w.name;
    // The stretch that should end here is the last one that began before
    // this phase did.
    let Some(s) = firing.iter().rev().find(|s| s.start_ms < w.start_ms) else {
        if w.scraped {
            f.failures.push(format!(
                "never fired before \"{name}\", so it cannot resolve in it"
            ));
        } else {
            f.unscraped(w);
        }
        return;
    };
    match s.end_ms {
        Some(end) if end < w.start_ms => f.failures.push(format!(
            "resolved {:.1}s before \"{name}\" started",
            secs_between(end, w.start_ms)
        )),
        Some(end) if end <= w.end_ms => {
            let after = secs_between(w.start_ms, end);
            if let Some(b) = bounds.resolve_within
                && after > b.as_secs_f64()
            {
                f.failures.push(format!(
                    "resolved {after:.1}s after \"{name}\" started, later than the bound of {:.1}s",
                    b.as_secs_f64()
                ));
            }
            if let Some(again) = firing
                .iter()
                .find(|x| x.start_ms > end && x.start_ms <= w.end_ms)
            {
                f.failures.push(format!(
                    "fired again {:.1}s after \"{name}\" started",
                    secs_between(w.start_ms, again.start_ms)
                ));
            }
        }
        _ => f.failures.push(format!(
            "still firing at the end of \"{name}\" ({:.1}s after it started)",
            secs_between(w.start_ms, w.end_ms)
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::testkit::*;
    use super::*;
    use crate::verify::alert::{spans, timeline};
    use crate::verify::phase::{AlertPhases, Phases};

    fn exp() -> AlertExpectation {
        AlertExpectation {
            alert: "HighErrorRate".into(),
            silent_during: vec!["baseline".into()],
            fires_during: Some("spike".into()),
            fire_within: Some(Duration::from_secs(25)),
            resolves_during: Some("recovery".into()),
            resolve_within: Some(Duration::from_secs(18)),
        }
    }

    fn secs(r: std::ops::Range<u64>) -> Vec<u64> {
        r.map(|s| s * S).collect()
    }

    const BOUNDS: AppliedBounds = AppliedBounds {
        fire_within: Some(Duration::from_secs(25)),
        resolve_within: Some(Duration::from_secs(18)),
    };

    fn clauses(ph: &Phases) -> Clauses<'_> {
        let w = |n: &str| ph.get(ph.resolve(n).expect("phase"));
        Clauses {
            silent: vec![w("baseline")],
            fires: Some(w("spike")),
            resolves: Some(w("recovery")),
        }
    }

    #[test]
    fn the_textbook_lifecycle_passes() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let spec = exp();
        let o = AlertObs {
            spec: &spec,
            phases: AlertPhases::resolve(&spec, &ph).expect("phases ran"),
            timeline: timeline(
                "HighErrorRate",
                &secs(14..29),
                &secs(29..47),
                (0, 60 * S),
                S,
                Some("firing".into()),
            ),
        };
        let j = judge(&o, &cx);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        assert_eq!(j.observed, "pending +14.0s..+29.0s, firing +29.0s..+47.0s");
        assert_eq!(
            j.expected,
            "HighErrorRate: silent during baseline; fires during \"spike\" within 25s; resolves during \"recovery\" within 18s"
        );
        assert_eq!(j.client, ["/api/v1/alerts at verification: firing"]);
        assert_eq!(j.queries[0].start_ms, Some(0));
        assert_eq!(j.queries[0].at_ms, 60 * S);
    }

    #[test]
    fn derived_bounds_use_the_resolved_phase_faults() {
        let plan = plan();
        let rules = BTreeMap::from([(
            "HighErrorRate".to_string(),
            RuleTiming {
                window: Some(Duration::from_secs(15)),
                threshold: Some(0.05),
                quantile: None,
                for_: Duration::from_secs(15),
                keep_firing_for: Duration::ZERO,
            },
        )]);
        let mut windows = phases().all().to_vec();
        windows[1].faults.error = Some(crate::plan::ErrorFault {
            ratio: 0.2,
            status: 503,
        });
        let ph = Phases::new(windows);
        let cx = context(&plan, &rules, &ph);
        let spec = AlertExpectation {
            fire_within: None,
            resolve_within: None,
            ..exp()
        };
        let o = AlertObs {
            spec: &spec,
            phases: AlertPhases::resolve(&spec, &ph).expect("phases ran"),
            timeline: timeline("HighErrorRate", &[], &secs(33..50), (0, 60 * S), S, None),
        };
        let j = judge(&o, &cx);
        // 15 s × 0.05 / 0.2 + 15 s + 6 s = 24.75 s; 15 s × 0.75 + 6 s = 17.25 s.
        assert!(
            j.expected.contains("within 24.8s (derived)")
                && j.expected.contains("within 17.2s (derived)"),
            "{}",
            j.expected
        );
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        // Fired 23 s into the spike: within the derived 24.75 s; 25 s is not.
        let late = AlertObs {
            timeline: timeline("HighErrorRate", &[], &secs(35..50), (0, 60 * S), S, None),
            ..o
        };
        let reason = judge(&late, &cx).reason;
        assert!(
            reason.contains("fired 25.0s after \"spike\" started, later than the bound of 24.8s"),
            "{reason}"
        );
    }

    #[test]
    fn lifecycle_failures_are_named() {
        let cases: Vec<(&str, Vec<AlertSpan>, &str)> = vec![
            (
                "never fires",
                spans(&secs(14..30), &[], 0, 60 * S, S),
                "never fired during \"spike\" (it was pending",
            ),
            (
                "noisy baseline",
                spans(&secs(5..8), &secs(29..47), 0, 60 * S, S),
                "pending during \"baseline\"",
            ),
            (
                "too slow",
                spans(&[], &secs(36..40), 0, 60 * S, S),
                "never fired during \"spike\"",
            ),
            (
                "late in phase",
                spans(&[], &secs(34..40), 0, 60 * S, S),
                "fired 24.0s after \"spike\" started, later than the bound of 20.0s",
            ),
            (
                "never resolves",
                spans(&[], &secs(29..61), 0, 60 * S, S),
                "still firing at the end of \"recovery\"",
            ),
            (
                "resolves late",
                spans(&[], &secs(29..54), 0, 60 * S, S),
                "resolved 19.0s after \"recovery\" started",
            ),
            (
                "resolves early",
                spans(&[], &secs(29..33), 0, 60 * S, S),
                "resolved 2.0s before \"recovery\" started",
            ),
            (
                "refires",
                spans(&[], &[secs(29..40), secs(45..50)].concat(), 0, 60 * S, S),
                "fired again",
            ),
            (
                "already firing",
                spans(&[], &secs(8..40), 0, 60 * S, S),
                "already firing before \"spike\"",
            ),
        ];
        let ph = phases();
        for (what, s, want) in cases {
            let bounds = if what == "late in phase" {
                AppliedBounds {
                    fire_within: Some(Duration::from_secs(20)),
                    ..BOUNDS
                }
            } else {
                BOUNDS
            };
            let l = lifecycle(&s, &clauses(&ph), bounds);
            assert_eq!(l.verdict, Verdict::Fail, "{what}: {}", l.reason);
            assert!(
                l.reason.contains(want),
                "{what}: {:?} lacks {want:?}",
                l.reason
            );
        }
    }

    #[test]
    fn no_scrapes_is_inconclusive_not_pass() {
        let unscraped = Phases::new(
            phases()
                .all()
                .iter()
                .cloned()
                .map(|mut p| {
                    p.scraped = false;
                    p
                })
                .collect(),
        );
        let l = lifecycle(&[], &clauses(&unscraped), BOUNDS);
        assert_eq!(l.verdict, Verdict::Inconclusive);
        assert_eq!(
            l.reason,
            "no scrapes of the target during \"baseline\"; no scrapes of the target during \"spike\"; no scrapes of the target during \"recovery\""
        );
    }
}
