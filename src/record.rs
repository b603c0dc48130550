//! What a load run measured: the client-side ground truth that Prometheus's
//! numbers are held against. Produced by `load::engine`, read by `verify` and
//! `report`. Histograms are kept whole (not just percentiles) so reports can
//! ask for any quantile after the run.

use std::time::SystemTime;

use hdrhistogram::Histogram;

/// Latency histograms record microseconds, 1 µs – 60 s, 3 significant digits.
pub const HIST_LOW_US: u64 = 1;
pub const HIST_HIGH_US: u64 = 60_000_000;
pub const HIST_SIGFIG: u8 = 3;

/// A fresh latency histogram with the crate-wide bounds. Values above the
/// high bound are clamped by the recorder (`saturating_record`).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// The whole run: phases in execution order (with `--loop`, one pass).
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub phases: Vec<PhaseRecord>,
    /// True when the run was cut short (Ctrl-C, a fatal error).
    pub aborted: bool,
    /// How the open-loop sends were paced and by how many shards.
    pub generator: GeneratorInfo,
    /// How the load engine connected: protocol, TLS, connections, addresses.
    pub transport: TransportRecord,
}

/// The generator itself: which timer paced it, on how many shards and
/// cores. Reported beside the scheduler lag so a high lag can be explained.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GeneratorInfo {
    /// `timerfd` or `sleep_until` (open loop); None in closed mode, which
    /// has no schedule to keep.
    pub pacer: Option<String>,
    pub shards: usize,
    pub cores: usize,
    /// `--shards`: load processes whose record never reached the
    /// coordinator; the client's ground truth lacks their share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<MissingShard>,
}

/// A shard of a sharded run that never reported, and what it was to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MissingShard {
    pub index: u64,
    pub of: u64,
    /// Its planned requests (open loop); None in closed mode.
    pub planned: Option<u64>,
    pub why: String,
}

impl MissingShard {
    /// `shard 2/4 (1250 planned requests) never reported: …`, in one line.
    pub fn describe(&self) -> String {
        let share = match self.planned {
            Some(n) => format!("{n} planned requests"),
            None => format!("1/{} of the workers", self.of),
        };
        format!(
            "shard {}/{} ({share}) is missing: {}",
            self.index, self.of, self.why
        )
    }
}

/// The connections of a run, summed over all load threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportRecord {
    pub http_version: crate::plan::HttpVersion,
    pub tls: bool,
    /// TLS without certificate verification (`insecure = true`).
    pub insecure: bool,
    pub keep_alive: bool,
    /// Connections opened by the load (not counting the preflight).
    pub connections_opened: u64,
    /// Every address the load used and how many requests each received.
    pub addresses: Vec<(std::net::SocketAddr, u64)>,
}

impl TransportRecord {
    /// Adds another load thread's counts (same target, same addresses).
    pub fn merge(&mut self, o: &TransportRecord) {
        if self.addresses.is_empty() {
            *self = o.clone();
            return;
        }
        self.connections_opened += o.connections_opened;
        for ((_, n), (_, m)) in self.addresses.iter_mut().zip(&o.addresses) {
            *n += m;
        }
    }
}

/// Counters and histograms of one phase, merged over all workers.
#[derive(Debug, Clone)]
pub struct PhaseRecord {
    pub name: String,
    /// Wall-clock start and end of the phase (UTC); verification queries
    /// Prometheus over exactly this window.
    pub start: SystemTime,
    pub end: SystemTime,
    /// Requests the schedule asked for (open mode); sends attempted (closed).
    pub scheduled: u64,
    /// Open mode: requests the plan's schedule holds for `[start, end]`,
    /// whether or not their time came before the run ended (None in closed
    /// mode, which has no schedule). Delivered load is `sent / planned`.
    pub planned: Option<u64>,
    /// Requests actually sent.
    pub sent: u64,
    /// Open mode: scheduled sends not made because `max_in_flight` was
    /// reached. Always reported.
    pub dropped: u64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub status_classes: [u64; 5],
    /// Exact count per status code seen (sorted by code).
    pub statuses: Vec<(u16, u64)>,
    /// Connect / IO errors (no HTTP response).
    pub connection_errors: u64,
    /// Requests that hit the request timeout.
    pub timeouts: u64,
    /// Ground truth: requests the fault plan asked to fail (status fault).
    pub injected_errors: u64,
    /// Ground truth: requests the fault plan asked to delay.
    pub injected_delays: u64,
    /// Requests that carried a fault header (status, delay or both).
    pub faults_requested: u64,
    /// Of those, responses acknowledging it (`x-slocheck-fault-applied`):
    /// zero with faults requested means the target ignores the header.
    pub faults_acknowledged: u64,
    /// Latency from the intended send time (coordinated-omission corrected),
    /// µs. In closed mode intended = actual send.
    pub latency_corrected: Histogram<u64>,
    /// Latency from the actual send (service time), µs.
    pub latency_service: Histogram<u64>,
    /// Open loop: scheduler lag (actual send − intended send), µs; empty in
    /// closed mode. The part of `latency_corrected` the generator added.
    pub scheduler_lag: Histogram<u64>,
    /// Per-second series over the phase (index = whole seconds since start).
    pub per_second: Vec<SecondStats>,
    /// Ground truth of the model's answers (with `[model]`): empty otherwise.
    pub model: ModelTruth,
}

/// What the generator knows about the model's answers in a phase: per
/// answered prediction, when it came back, its true label and the class the
/// (deterministic, built-in) model must have predicted for what was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelTruth {
    /// Class names; `TruthSample` fields index into this.
    pub classes: Vec<String>,
    /// In response order per shard; sorted by time when merged.
    pub samples: Vec<TruthSample>,
    /// Requests sent with drifted features.
    pub drifted: u64,
    /// Labels reported to the feedback endpoint, and those lost (full
    /// buffer or a failed feedback request).
    pub feedback_sent: u64,
    pub feedback_lost: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TruthSample {
    /// Unix ms midway between send and response: the service logged the
    /// prediction in between.
    pub at_ms: u64,
    pub label: u8,
    /// None when the target's model is not the built-in one.
    pub expected: Option<u8>,
}

impl ModelTruth {
    pub fn merge(&mut self, o: &ModelTruth) {
        if self.classes.is_empty() {
            self.classes = o.classes.clone();
        }
        self.samples.extend_from_slice(&o.samples);
        self.samples.sort_by_key(|s| s.at_ms);
        self.drifted += o.drifted;
        self.feedback_sent += o.feedback_sent;
        self.feedback_lost += o.feedback_lost;
    }

    /// Scores of the expected answers for responses in `[from_ms, to_ms)`;
    /// None when the expected answers are unknown (external model).
    pub fn expected_scores(&self, from_ms: u64, to_ms: u64) -> Option<crate::evaluate::Scores> {
        expected_scores_in([self], from_ms, to_ms)
    }
}

/// `ModelTruth::expected_scores` over the samples of several phases: an
/// evaluation window is wall-clock time, and a stalled client may answer a
/// phase's last requests after the next phase began.
pub fn expected_scores_in<'a>(
    truths: impl IntoIterator<Item = &'a ModelTruth>,
    from_ms: u64,
    to_ms: u64,
) -> Option<crate::evaluate::Scores> {
    let mut classes: &[String] = &[];
    let mut window: Vec<&TruthSample> = Vec::new();
    for t in truths {
        if classes.is_empty() {
            classes = &t.classes;
        }
        window.extend(
            t.samples
                .iter()
                .filter(|s| (from_ms..to_ms).contains(&s.at_ms)),
        );
    }
    if window.iter().any(|s| s.expected.is_none()) {
        return None;
    }
    let name = |i: u8| classes.get(usize::from(i)).map_or("?", String::as_str);
    Some(crate::evaluate::score(window.iter().map(|s| {
        (name(s.expected.unwrap_or(u8::MAX)), name(s.label))
    })))
}

impl PhaseRecord {
    /// Responses received (any status).
    pub fn responses(&self) -> u64 {
        self.status_classes.iter().sum()
    }

    pub fn server_errors(&self) -> u64 {
        self.status_classes[4]
    }

    /// Ratio of requests the fault plan asked to fail, over requests sent.
    pub fn injected_error_ratio(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.injected_errors as f64 / self.sent as f64)
    }

    /// Observed 5xx ratio over responses received.
    pub fn observed_error_ratio(&self) -> Option<f64> {
        let n = self.responses();
        (n > 0).then(|| self.server_errors() as f64 / n as f64)
    }

    /// Faults requested and acknowledged in this phase.
    pub fn fault_ack(&self) -> FaultAck {
        FaultAck {
            requested: self.faults_requested,
            acknowledged: self.faults_acknowledged,
        }
    }

    /// Faults were asked for and not one was acknowledged: the target does
    /// not implement the fault protocol (or a proxy strips its headers).
    pub fn faults_ignored(&self) -> bool {
        self.fault_ack().ignored()
    }

    pub fn duration_secs(&self) -> f64 {
        self.end
            .duration_since(self.start)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Achieved send rate over the phase.
    pub fn achieved_rps(&self) -> f64 {
        let s = self.duration_secs();
        if s > 0.0 { self.sent as f64 / s } else { 0.0 }
    }

    /// Client-side quantile (corrected) in seconds, None without samples.
    pub fn latency_quantile_secs(&self, q: f64) -> Option<f64> {
        (!self.latency_corrected.is_empty())
            .then(|| self.latency_corrected.value_at_quantile(q) as f64 / 1e6)
    }
}

/// The fault protocol's acknowledgement count of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultAck {
    /// Requests that carried the fault header.
    pub requested: u64,
    /// Responses that acknowledged it (`x-slocheck-fault-applied`).
    pub acknowledged: u64,
}

impl FaultAck {
    /// Faults asked for, none acknowledged: the target ignores the header.
    pub fn ignored(&self) -> bool {
        self.requested > 0 && self.acknowledged == 0
    }
}

/// Counts of one wall-clock second of a phase, for charts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecondStats {
    pub sent: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub failed: u64,
    /// Corrected P90 of the responses completed in this second, µs (0 if none).
    pub p90_us: u64,
}
