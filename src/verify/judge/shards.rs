//! The missing-shard rule, across every kind: when a shard of a sharded run
//! died or never reported, the merged client record lacks its share of the
//! schedule. Expectations that read the client's ground truth (client-side
//! latency and error figures, delivered `load`, `model_quality`) become
//! inconclusive naming the shards and their share; judgements made on
//! Prometheus alone (`alert`, `promql`, `notified`) stand. The agreement
//! rows lose their client side for the same reason. Pure.

use super::Judged;
use crate::plan::ExpectKind;
use crate::record::MissingShard;
use crate::verify::outcome::{PhaseAgreement, Verdict};

/// Whether a kind's verdict or evidence rests on the client's record.
pub fn reads_client(kind: &ExpectKind) -> bool {
    match kind {
        ExpectKind::LatencyQuantile { .. }
        | ExpectKind::LatencyMean { .. }
        | ExpectKind::ErrorRatio { .. }
        | ExpectKind::Load(_)
        | ExpectKind::ModelQuality { .. } => true,
        ExpectKind::Alert(_) | ExpectKind::PromQl { .. } | ExpectKind::Notified(_) => false,
    }
}

/// The reason, in one line, naming every missing shard and its share.
pub fn reason(missing: &[MissingShard]) -> String {
    let names: Vec<String> = missing.iter().map(MissingShard::describe).collect();
    format!(
        "the client's ground truth is partial: {} (hint: rerun; check the shard's log or pod)",
        names.join("; ")
    )
}

/// Applies the rule: a result that reads the client becomes inconclusive
/// with [`reason`] (a failure too: its figures are not the run's); any
/// other result is unchanged.
pub fn apply(kind: &ExpectKind, missing: &[MissingShard], mut j: Judged) -> Judged {
    if missing.is_empty() || !reads_client(kind) {
        return j;
    }
    j.verdict = Verdict::Inconclusive;
    j.reason = reason(missing);
    j
}

/// The client side of an agreement row is unknown without every shard.
pub fn agreement(mut row: PhaseAgreement, missing: &[MissingShard]) -> PhaseAgreement {
    if missing.is_empty() {
        return row;
    }
    row.injected_error_ratio = None;
    row.client_error_ratio = None;
    row.client_p90_seconds = None;
    row.client_service_p90_seconds = None;
    row.p90_same_bucket = None;
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AlertExpectation, Bound};

    fn missing() -> Vec<MissingShard> {
        vec![MissingShard {
            index: 2,
            of: 4,
            planned: Some(1750),
            why: "its process ended without a record: killed by signal 9".into(),
        }]
    }

    fn judged(v: Verdict) -> Judged {
        let mut j = Judged::new("x".into());
        j.verdict = v;
        j
    }

    #[test]
    fn client_kinds_become_inconclusive_prometheus_kinds_stand() {
        let alert = ExpectKind::Alert(AlertExpectation {
            alert: "HighErrorRate".into(),
            silent_during: vec![],
            fires_during: Some("spike".into()),
            resolves_during: None,
            fire_within: None,
            resolve_within: None,
        });
        let ratio = ExpectKind::ErrorRatio {
            phase: "spike".into(),
            bound: Bound::Below(0.1),
        };
        let latency = ExpectKind::LatencyQuantile {
            quantile: 0.9,
            phase: "spike".into(),
            bound: Bound::Below(std::time::Duration::from_millis(250)),
        };
        let promql = ExpectKind::PromQl {
            expr: "up".into(),
            phase: "spike".into(),
            aggregate: crate::plan::Aggregate::Last,
            bound: Bound::Below(1.0),
        };
        // (kind, verdict in, missing shards?, verdict out)
        let cases = [
            (&ratio, Verdict::Pass, true, Verdict::Inconclusive),
            (&ratio, Verdict::Fail, true, Verdict::Inconclusive),
            (&latency, Verdict::Pass, true, Verdict::Inconclusive),
            (&alert, Verdict::Pass, true, Verdict::Pass),
            (&alert, Verdict::Fail, true, Verdict::Fail),
            (&promql, Verdict::Pass, true, Verdict::Pass),
            (&ratio, Verdict::Pass, false, Verdict::Pass),
            (&latency, Verdict::Fail, false, Verdict::Fail),
        ];
        for (kind, before, any, after) in cases {
            let m = if any { missing() } else { vec![] };
            let j = apply(kind, &m, judged(before));
            assert_eq!(j.verdict, after, "{kind:?} {before:?} missing={any}");
            if after == Verdict::Inconclusive {
                assert!(
                    j.reason
                        .contains("shard 2/4 (1750 planned requests) is missing"),
                    "{}",
                    j.reason
                );
            } else {
                assert!(j.reason.is_empty(), "{}", j.reason);
            }
        }
    }

    #[test]
    fn agreement_rows_lose_their_client_side() {
        let row = PhaseAgreement {
            phase: "spike".into(),
            injected_error_ratio: Some(0.2),
            client_error_ratio: Some(0.2),
            prometheus_error_ratio: Some(0.199),
            client_p90_seconds: Some(0.01),
            client_service_p90_seconds: Some(0.01),
            prometheus_p90_seconds: Some(0.012),
            p90_bucket: Some((0.01, 0.025)),
            p90_same_bucket: Some(true),
        };
        assert_eq!(agreement(row.clone(), &[]), row);
        let a = agreement(row, &missing());
        assert_eq!(a.prometheus_error_ratio, Some(0.199));
        assert_eq!(a.prometheus_p90_seconds, Some(0.012));
        assert_eq!((a.client_error_ratio, a.injected_error_ratio), (None, None));
        assert_eq!((a.client_p90_seconds, a.p90_same_bucket), (None, None));
    }
}
