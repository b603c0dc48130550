//! The fault protocol's acknowledgement rule, across every kind: when the
//! load generator asked for faults in a phase and the target acknowledged
//! none, every expectation that depends on those faults is inconclusive with
//! one clear reason, never a confusing alert or ratio failure. Pure:
//! expectation, the phases' counts and a judged result in, a result out.

use super::Judged;
use crate::plan::ExpectKind;
use crate::verify::outcome::Verdict;
use crate::verify::phase::{PhaseWindow, Phases};

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
pub fn ignored_phases<'a>(kind: &ExpectKind, phases: &'a Phases) -> Vec<&'a PhaseWindow> {
    let ignored = phases.all().iter().filter(|p| p.fault_ack.ignored());
    match kind {
        ExpectKind::LatencyQuantile { phase, .. }
        | ExpectKind::LatencyMean { phase, .. }
        | ExpectKind::ErrorRatio { phase, .. }
        | ExpectKind::PromQl { phase, .. } => ignored.filter(|p| &p.name == phase).collect(),
        ExpectKind::Alert(a) if a.fires_during.is_some() || a.resolves_during.is_some() => {
            ignored.collect()
        }
        ExpectKind::Alert(_) => Vec::new(),
        ExpectKind::Notified(_) => ignored.collect(),
        // Delivered load is the generator's own doing, faults or not; data
        // drift travels in the bodies, not in the fault header.
        ExpectKind::Load(_) | ExpectKind::ModelQuality { .. } => Vec::new(),
    }
}

/// Applies the rule to a judged result: inconclusive with [`IGNORED_REASON`]
/// and the counts as client evidence when it depends on ignored faults;
/// otherwise the result unchanged (the queries stay as evidence either way).
pub fn apply(kind: &ExpectKind, phases: &Phases, mut j: Judged) -> Judged {
    let ignored = ignored_phases(kind, phases);
    if ignored.is_empty() {
        return j;
    }
    j.verdict = Verdict::Inconclusive;
    j.reason = IGNORED_REASON.to_owned();
    for p in ignored {
        j.client.push(format!(
            "faults acknowledged in \"{}\": 0 of {} requested",
            p.name, p.fault_ack.requested
        ));
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AlertExpectation, Bound, NotifiedExpectation};
    use crate::record::FaultAck;
    use crate::verify::judge::testkit;

    /// The testkit's three phases with `spike` asking for `requested`
    /// faults, `acknowledged` of them acknowledged.
    fn phases(requested: u64, acknowledged: u64) -> Phases {
        let mut w = testkit::phases().all().to_vec();
        w[1].fault_ack = FaultAck {
            requested,
            acknowledged,
        };
        Phases::new(w)
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

    #[test]
    fn which_expectations_depend_on_ignored_faults() {
        let notified = ExpectKind::Notified(NotifiedExpectation {
            alert: "HighErrorRate".into(),
            receiver: None,
            labels: Vec::new(),
            firing_within: None,
            resolved_within: None,
        });
        let latency = ExpectKind::LatencyQuantile {
            quantile: 0.9,
            phase: "spike".into(),
            bound: Bound::Above(std::time::Duration::from_millis(250)),
        };
        let (ignored, acked, partly) = (phases(30, 0), phases(30, 30), phases(30, 1));
        let cases: &[(&str, &ExpectKind, &Phases, usize)] = &[
            ("ratio of the faulted phase", &ratio("spike"), &ignored, 1),
            ("latency of the faulted phase", &latency, &ignored, 1),
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
            ("no faults asked", &ratio("spike"), &phases(0, 0), 0),
        ];
        for (what, kind, phases, want) in cases {
            assert_eq!(ignored_phases(kind, phases).len(), *want, "{what}");
        }
    }

    #[test]
    fn apply_turns_a_verdict_inconclusive_with_the_reason() {
        let ph = phases(4, 0);
        let mut failed = Judged::new("alert fires".into());
        failed.verdict = Verdict::Fail;
        failed.reason = "alert never fired".into();
        let j = apply(&alert(Some("spike"), &[]), &ph, failed);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.reason, IGNORED_REASON);
        assert_eq!(
            j.client,
            ["faults acknowledged in \"spike\": 0 of 4 requested"]
        );
        let mut passed = Judged::new("ratio".into());
        passed.verdict = Verdict::Pass;
        let kept = apply(&ratio("baseline"), &ph, passed);
        assert_eq!((kept.verdict, kept.reason.as_str()), (Verdict::Pass, ""));
    }
}
