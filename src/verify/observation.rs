//! What the observe step learned, as plain data: one `Observation` per
//! expectation, each variant holding the (phase-resolved) expectation it
//! answers beside what Prometheus, the client and the webhook recorder
//! reported, so `judge` cannot pair an expectation with the wrong answer.
//! Produced by `observe`, read by `judge`; no I/O here.

use std::time::Duration;

use super::outcome::AlertTimeline;
use super::phase::{AlertPhases, PhaseId, PhaseMissing, Phases};
use crate::alertmanager::Deliveries;
use crate::plan::{
    Aggregate, AlertExpectation, Bound, Expectation, LoadExpectation, NotifiedExpectation,
    QualityBound, QualityMetric,
};
use crate::record::ModelTruth;

/// What one PromQL instant query answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Exactly one sample with a value other than NaN.
    Value(f64),
    /// No sample, several, or NaN (e.g. no requests in the window).
    NoData,
    /// Prometheus rejected the query itself (the message says why). Any
    /// other failure (unreachable, timeout) ends verification instead.
    Failed(String),
}

impl Reading {
    pub fn value(&self) -> Option<f64> {
        match self {
            Reading::Value(v) => Some(*v),
            Reading::NoData | Reading::Failed(_) => None,
        }
    }
}

/// An instant query evaluated at a phase's end over the whole phase.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseQuery {
    /// The phase is shorter than two scrape intervals: no rate can be
    /// computed over it, so nothing was asked.
    TooShort,
    Asked {
        promql: String,
        reading: Reading,
    },
}

/// What a range query over a phase answered.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeReading {
    /// The values of each returned series, in time order (NaN kept).
    Series(Vec<Vec<f64>>),
    /// Prometheus rejected the query itself.
    Failed(String),
}

/// The client's own counts of one phase: the ground truth beside
/// Prometheus's ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientCounts {
    pub sent: u64,
    /// Requests the fault plan asked to fail.
    pub injected_errors: u64,
    pub responses: u64,
    pub server_errors: u64,
}

impl ClientCounts {
    pub fn injected_ratio(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.injected_errors as f64 / self.sent as f64)
    }

    pub fn observed_ratio(&self) -> Option<f64> {
        (self.responses > 0).then(|| self.server_errors as f64 / self.responses as f64)
    }
}

/// `latency_quantile`: the histogram quantile over a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyObs<'a> {
    pub quantile: f64,
    pub bound: &'a Bound<Duration>,
    pub phase: PhaseId,
    /// The client's HDR quantile from the intended send time, seconds
    /// (None without samples).
    pub client: Option<f64>,
    pub prometheus: PhaseQuery,
}

/// `latency_mean`: the mean latency over a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyMeanObs<'a> {
    pub bound: &'a Bound<Duration>,
    pub phase: PhaseId,
    /// The client's mean service time, seconds (None without samples).
    pub client: Option<f64>,
    pub prometheus: PhaseQuery,
}

/// `error_ratio`: the 5xx share over a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRatioObs<'a> {
    pub bound: &'a Bound<f64>,
    pub phase: PhaseId,
    pub client: ClientCounts,
    pub prometheus: PhaseQuery,
}

/// `promql`: any expression over a phase, one value per evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct PromQlObs<'a> {
    pub expr: &'a str,
    pub aggregate: Aggregate,
    pub bound: &'a Bound<f64>,
    pub phase: PhaseId,
    pub prometheus: RangeReading,
}

/// `alert`: the alert's lifecycle over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertObs<'a> {
    pub spec: &'a AlertExpectation,
    pub phases: AlertPhases,
    pub timeline: AlertTimeline,
}

/// `notified`: what the webhook recorder received, beside the alert's
/// lifecycle.
#[derive(Debug, Clone)]
pub struct NotifiedObs<'a> {
    pub spec: &'a NotifiedExpectation,
    pub timeline: AlertTimeline,
    /// None: no Alertmanager ran, so no delivery could be seen.
    pub deliveries: Option<&'a Deliveries>,
}

/// `load`: the phase's delivery (in `PhaseWindow::delivery`) against the
/// expectation's bounds; nothing is asked of Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadObs<'a> {
    pub spec: &'a LoadExpectation,
    pub phase: PhaseId,
}

/// What the model-quality range queries answered.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityReading {
    /// The last evaluation whose window lies wholly inside the phase.
    Found(super::quality::Evaluated),
    /// No pushed window lies inside the phase.
    NoWindow,
    /// Prometheus rejected a query.
    Failed(String),
}

/// `model_quality`: the pushed metric of the batch job beside what the
/// generator knows about the answers of the same phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelQualityObs<'a> {
    pub metric: &'a QualityMetric,
    pub bound: &'a QualityBound,
    pub phase: PhaseId,
    pub promql: String,
    /// The range asked (unix ms): the phase start to past its end, where
    /// later pushes may still cover the phase's last window.
    pub range_ms: (u64, u64),
    pub reading: QualityReading,
    /// The generator's truth for the phase (labels, expected answers).
    pub truth: &'a ModelTruth,
    /// Every phase's truth: a window is judged on all answers inside it.
    pub run_truth: Vec<&'a ModelTruth>,
    /// Requests sent in the phase.
    pub sent: u64,
    /// The batch job's window and schedule, for the reason when no window fits.
    pub window: Duration,
    pub every: Duration,
}

/// Everything observed for one expectation.
#[derive(Debug, Clone)]
pub enum Observation<'a> {
    /// A phase the expectation names did not run: nothing was asked.
    PhaseMissing(PhaseMissing),
    LatencyQuantile(LatencyObs<'a>),
    ErrorRatio(ErrorRatioObs<'a>),
    PromQl(PromQlObs<'a>),
    Alert(AlertObs<'a>),
    Notified(NotifiedObs<'a>),
    LatencyMean(LatencyMeanObs<'a>),
    Load(LoadObs<'a>),
    ModelQuality(ModelQualityObs<'a>),
}

/// Prometheus's and the client's numbers for one phase, side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSides {
    pub phase: PhaseId,
    pub client: ClientCounts,
    /// Client P90 from the intended send time (seconds).
    pub client_p90: Option<f64>,
    /// Client P90 from the actual send: what the server's histogram sees.
    pub client_service_p90: Option<f64>,
    pub prometheus_error_ratio: Option<f64>,
    pub prometheus_p90: Option<f64>,
}

/// The whole observe step's result.
#[derive(Debug, Clone)]
pub struct Observations<'a> {
    pub phases: Phases,
    /// Upper bounds (`le`) of the latency histogram's buckets, sorted.
    pub buckets: Vec<f64>,
    /// Start of the load and end of the observed range (unix ms).
    pub started_at_ms: u64,
    pub until_ms: u64,
    /// In the plan's order.
    pub expectations: Vec<(&'a Expectation, Observation<'a>)>,
    /// One per alert an expectation names, by alert name.
    pub alerts: Vec<AlertTimeline>,
    /// One per recorded phase.
    pub sides: Vec<PhaseSides>,
    /// Shards of a sharded run whose record never arrived.
    pub missing_shards: Vec<crate::record::MissingShard>,
}
