//! The result of verification: a three-valued verdict per expectation with
//! the evidence behind it, the alert timelines, and the per-phase agreement
//! between Prometheus and the client's own measurements.

use serde::{Deserialize, Serialize};

use crate::plan::ExpectKind;

/// Pass, fail, or inconclusive (no data): never a silent pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One PromQL query that was run, with its window and what it returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryEvidence {
    pub promql: String,
    /// Instant queries: the evaluation time (unix ms). Range queries: the end.
    pub at_ms: u64,
    /// Range queries: the start (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// The value used for the verdict (None: no data).
    pub value: Option<f64>,
}

/// The kind of an expectation as reports name it (the scenario's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectationKind {
    LatencyQuantile,
    ErrorRatio,
    Alert,
    Notified,
    #[serde(rename = "promql")]
    PromQl,
    LatencyMean,
    Load,
    ModelQuality,
}

impl ExpectationKind {
    /// Every kind, for tests that hold the schema to the code.
    pub const ALL: [ExpectationKind; 6] = [
        ExpectationKind::LatencyQuantile,
        ExpectationKind::ErrorRatio,
        ExpectationKind::Alert,
        ExpectationKind::Notified,
        ExpectationKind::PromQl,
        ExpectationKind::LatencyMean,
    ];

    pub fn of(kind: &ExpectKind) -> ExpectationKind {
        match kind {
            ExpectKind::LatencyQuantile { .. } => ExpectationKind::LatencyQuantile,
            ExpectKind::ErrorRatio { .. } => ExpectationKind::ErrorRatio,
            ExpectKind::Alert(_) => ExpectationKind::Alert,
            ExpectKind::Notified(_) => ExpectationKind::Notified,
            ExpectKind::PromQl { .. } => ExpectationKind::PromQl,
            ExpectKind::LatencyMean { .. } => ExpectationKind::LatencyMean,
            ExpectKind::Load(_) => ExpectationKind::Load,
            ExpectKind::ModelQuality { .. } => ExpectationKind::ModelQuality,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExpectationKind::LatencyQuantile => "latency_quantile",
            ExpectationKind::ErrorRatio => "error_ratio",
            ExpectationKind::Alert => "alert",
            ExpectationKind::Notified => "notified",
            ExpectationKind::PromQl => "promql",
            ExpectationKind::LatencyMean => "latency_mean",
            ExpectationKind::Load => "load",
            ExpectationKind::ModelQuality => "model_quality",
        }
    }
}

impl std::fmt::Display for ExpectationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    pub id: String,
    pub kind: ExpectationKind,
    /// What was expected, in words: `P90 latency in "baseline" below 250ms`.
    pub expected: String,
    /// What was observed, in words (empty when nothing was).
    pub observed: String,
    pub verdict: Verdict,
    /// Why it failed or was inconclusive; empty on pass.
    pub reason: String,
    /// Set when an inconclusive verdict is allowed by the scenario.
    pub inconclusive_allowed: bool,
    pub queries: Vec<QueryEvidence>,
    /// Client-side ground truth beside the Prometheus value, in words.
    pub client: Vec<String>,
}

impl ExpectationResult {
    /// Whether this result lets the gate pass.
    pub fn passes_gate(&self) -> bool {
        match self.verdict {
            Verdict::Pass => true,
            Verdict::Fail => false,
            Verdict::Inconclusive => self.inconclusive_allowed,
        }
    }
}

/// An alert's observed lifecycle over the run, from `ALERTS{alertname=…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTimeline {
    pub alert: String,
    /// Every contiguous stretch in one state, in time order.
    pub spans: Vec<AlertSpan>,
    /// First time seen pending / firing, and when the first firing stretch
    /// ended (unix ms).
    pub pending_at_ms: Option<u64>,
    pub firing_at_ms: Option<u64>,
    pub resolved_at_ms: Option<u64>,
    /// Active state according to `/api/v1/alerts` when verification ran.
    pub api_state_at_end: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSpan {
    pub state: AlertState,
    pub start_ms: u64,
    /// First evaluation at which the state was no longer seen (None: still
    /// in this state at the end of the observed range).
    pub end_ms: Option<u64>,
}

/// Prometheus vs client numbers for one phase ("do the two sides agree?").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseAgreement {
    pub phase: String,
    pub injected_error_ratio: Option<f64>,
    pub client_error_ratio: Option<f64>,
    pub prometheus_error_ratio: Option<f64>,
    /// Client P90 from the intended send time (coordinated-omission corrected).
    pub client_p90_seconds: Option<f64>,
    /// Client P90 from the actual send: what the server's own histogram can
    /// see (it cannot see the generator's scheduling delay).
    pub client_service_p90_seconds: Option<f64>,
    pub prometheus_p90_seconds: Option<f64>,
    /// The histogram bucket `(lower, upper]` holding Prometheus's P90, and
    /// whether the client's service-time P90 falls in the same bucket.
    pub p90_bucket: Option<(f64, f64)>,
    pub p90_same_bucket: Option<bool>,
}

/// Everything verification concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub results: Vec<ExpectationResult>,
    pub alerts: Vec<AlertTimeline>,
    pub agreement: Vec<PhaseAgreement>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.results.iter().all(ExpectationResult::passes_gate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_as_the_scenario_keys() {
        for k in ExpectationKind::ALL {
            let json = serde_json::to_string(&k).expect("serialise");
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(
                serde_json::from_str::<ExpectationKind>(&json).expect("parse"),
                k
            );
        }
    }
}
