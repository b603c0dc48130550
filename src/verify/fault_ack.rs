//! The acknowledgement rule of the fault protocol, as a judgement: when the
//! load generator asked for faults and the target acknowledged none, every
//! expectation that depends on those faults is inconclusive with one clear
//! reason, never a confusing alert or ratio failure. Pure: expectation kind
//! and the client's per-phase counts in, a reason out.

use crate::plan::ExpectKind;
use crate::record::PhaseRecord;

use super::outcome::{ExpectationResult, Verdict};

/// The reason given, word for word (documented in docs/fault-protocol.md).
pub const IGNORED_REASON: &str = "the target ignores the fault header (hint: add the slocheck fault middleware, see docs/fault-protocol.md)";

/// The phases whose faults the expectation depends on and the target
/// ignored; empty when the verdict stands on its own.
///
/// A phase-scoped expectation (latency, error ratio, PromQL) depends on the
/// faults of its phase. An alert expectation that wants the alert to fire or
/// resolve depends on every faulted phase of the run (the alert's window
/// spans phases); one that only asks for silence does not, since silence is
/// what a fault-free run gives anyway. A notification depends on the alert
/// firing, so on every faulted phase too.
pub fn ignored_phases<'a>(kind: &ExpectKind, phases: &'a [PhaseRecord]) -> Vec<&'a PhaseRecord> {
    let ignored = phases.iter().filter(|p| p.faults_ignored());
    match kind {
        ExpectKind::LatencyQuantile { phase, .. }
        | ExpectKind::ErrorRatio { phase, .. }
        | ExpectKind::PromQl { phase, .. } => ignored.filter(|p| &p.name == phase).collect(),
        ExpectKind::Alert(a) if a.fires_during.is_some() || a.resolves_during.is_some() => {
            ignored.collect()
        }
        ExpectKind::Alert(_) => Vec::new(),
        ExpectKind::Notified(_) => ignored.collect(),
    }
}

/// Applies the rule to a judged result: inconclusive with [`IGNORED_REASON`]
/// and the counts as client evidence when it depends on ignored faults;
/// otherwise the result unchanged.
pub fn apply(
    kind: &ExpectKind,
    phases: &[PhaseRecord],
    mut r: ExpectationResult,
) -> ExpectationResult {
    let ignored = ignored_phases(kind, phases);
    if ignored.is_empty() {
        return r;
    }
    r.verdict = Verdict::Inconclusive;
    r.reason = IGNORED_REASON.to_owned();
    for p in ignored {
        r.client.push(format!(
            "faults acknowledged in \"{}\": 0 of {} requested",
            p.name, p.faults_requested
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::{Outcome, Recorder};
    use crate::plan::{AlertExpectation, Bound, NotifiedExpectation};
    use std::time::{Duration, SystemTime};

    /// A phase of `sent` requests, `faulted` of them asking for a fault and
    /// `acked` of those acknowledged.
    fn phase(name: &str, faulted: u64, acked: u64) -> PhaseRecord {
        let mut r = Recorder::new(Duration::from_secs(1));
        for i in 0..10 {
            r.on_send(Duration::ZERO, i < faulted, false);
            r.on_done(
                Duration::ZERO,
                Outcome::Response(200),
                Duration::from_millis(1),
                Duration::from_millis(1),
            );
            if i < acked {
                r.on_fault_acknowledged();
            }
        }
        let t = SystemTime::UNIX_EPOCH;
        r.into_record(name.into(), t, t + Duration::from_secs(1))
    }

    fn alert(fires: Option<&str>, silent: &[&str]) -> ExpectKind {
        ExpectKind::Alert(AlertExpectation {
            alert: "HighErrorRate".into(),
            silent_during: silent.iter().map(|s| s.to_string()).collect(),
            fires_during: fires.map(str::to_owned),
            fire_within: None,
            resolves_during: None,
            resolve_within: None,
        })
    }

    fn ratio(phase: &str) -> ExpectKind {
        ExpectKind::ErrorRatio {
            phase: phase.into(),
            bound: Bound::Below(0.01),
        }
    }

    fn passed() -> ExpectationResult {
        ExpectationResult {
            id: "expect[0]".into(),
            kind: "alert".into(),
            expected: String::new(),
            observed: String::new(),
            verdict: Verdict::Pass,
            reason: String::new(),
            inconclusive_allowed: false,
            queries: Vec::new(),
            client: Vec::new(),
        }
    }

    #[test]
    fn which_expectations_depend_on_ignored_faults() {
        let ignored = [phase("baseline", 0, 0), phase("spike", 3, 0)];
        let acked = [phase("baseline", 0, 0), phase("spike", 3, 3)];
        let partly = [phase("baseline", 0, 0), phase("spike", 3, 1)];
        let notified = ExpectKind::Notified(NotifiedExpectation {
            alert: "HighErrorRate".into(),
            receiver: None,
            labels: Vec::new(),
            firing_within: None,
            resolved_within: None,
        });
        let cases: &[(&str, &ExpectKind, &[PhaseRecord], usize)] = &[
            ("ratio of the faulted phase", &ratio("spike"), &ignored, 1),
            (
                "ratio of a fault-free phase",
                &ratio("baseline"),
                &ignored,
                0,
            ),
            (
                "alert that must fire",
                &alert(Some("spike"), &[]),
                &ignored,
                1,
            ),
            (
                "alert that must stay silent",
                &alert(None, &["baseline"]),
                &ignored,
                0,
            ),
            ("notification", &notified, &ignored, 1),
            ("acknowledged faults", &alert(Some("spike"), &[]), &acked, 0),
            ("some acknowledged", &ratio("spike"), &partly, 0),
        ];
        for (what, kind, phases, want) in cases {
            assert_eq!(ignored_phases(kind, phases).len(), *want, "{what}");
        }
    }

    #[test]
    fn apply_turns_a_verdict_inconclusive_with_the_reason() {
        let phases = [phase("spike", 4, 0)];
        let mut failed = passed();
        failed.verdict = Verdict::Fail;
        failed.reason = "alert never fired".into();
        let r = apply(&alert(Some("spike"), &[]), &phases, failed);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert_eq!(r.reason, IGNORED_REASON);
        assert_eq!(
            r.client,
            ["faults acknowledged in \"spike\": 0 of 4 requested"]
        );
        let kept = apply(&ratio("other"), &phases, passed());
        assert_eq!((kept.verdict, kept.reason.as_str()), (Verdict::Pass, ""));
    }
}
