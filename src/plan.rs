//! The resolved, validated scenario: typed domain values only. Everything
//! downstream of `scenario::load` (target, load engine, Prometheus launcher,
//! verification) reads this and never sees raw strings or untyped numbers.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;

/// A whole scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// The scenario file this plan came from (for messages and reports).
    pub source: PathBuf,
    /// Seed of the per-request fault plan: same seed, same faulted requests.
    pub seed: u64,
    pub target: TargetPlan,
    pub request: RequestTemplate,
    pub prometheus: PrometheusPlan,
    pub load: LoadPlan,
    /// Non-empty, names unique, in execution order.
    pub phases: Vec<PhasePlan>,
    pub expects: Vec<Expectation>,
    /// When true, an inconclusive expectation does not fail the gate.
    pub allow_inconclusive: bool,
    /// Some: start a managed Alertmanager and the webhook recorder (asked
    /// for by `[alertmanager]` or implied by a `notified` expectation).
    pub alertmanager: Option<AlertmanagerPlan>,
    /// The service's metric convention (`[metrics]`; the tutorial's names
    /// by default): every PromQL question is built from it.
    pub metrics: crate::metrics::MetricsSpec,
    /// How the load engine connects: HTTP version, TLS, connection reuse.
    pub transport: TransportPlan,
    /// Some: the bodies carry true labels and an evaluation batch job runs
    /// during the load (`[model]`).
    pub model: Option<ModelPlan>,
    /// `[[slo]]` tables of the scenario (`slocheck slo rules SCENARIO`).
    pub slos: Vec<crate::slo::Slo>,
}

impl Plan {
    /// A plan of one constant-rate phase (named like the plan) against the
    /// built-in target, for benchmarks and tests, which tweak fields as they
    /// need. Defaults: seed 1; `GET /` with no headers or body, 5 s request
    /// and 1 s connect timeouts; a managed Prometheus with 1 s scrape and
    /// evaluation intervals, no rule files, time scale 1, job = `name`, no
    /// settle; at most 10 000 requests in flight; no faults, no expectations,
    /// no Alertmanager.
    pub fn single_phase(name: &str, mode: LoadMode, rate: f64, duration: Duration) -> Plan {
        const MAX_IN_FLIGHT: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();
        Plan {
            name: name.into(),
            source: name.into(),
            seed: 1,
            target: TargetPlan::BuiltIn,
            request: RequestTemplate {
                method: http::Method::GET,
                path: "/".into(),
                headers: vec![],
                bodies: vec![],
                timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(1),
            },
            prometheus: PrometheusPlan {
                url: None,
                scrape_interval: Duration::from_secs(1),
                evaluation_interval: Duration::from_secs(1),
                rule_files: vec![],
                time_scale: 1.0,
                job: name.into(),
                settle: Duration::ZERO,
            },
            load: LoadPlan {
                mode,
                max_in_flight: MAX_IN_FLIGHT,
            },
            phases: vec![PhasePlan {
                name: name.into(),
                duration,
                rate: Rate::Constant(rate),
                concurrency: None,
                faults: FaultSpec::default(),
                drift: None,
                evaluate: true,
            }],
            expects: vec![],
            allow_inconclusive: false,
            alertmanager: None,
            metrics: crate::metrics::MetricsSpec::default(),
            transport: TransportPlan::default(),
            model: None,
            slos: vec![],
        }
    }

    /// Sum of all phase durations: the length of one pass of the load.
    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// Where the traffic goes.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetPlan {
    /// slocheck starts its own instrumented ML service on a free loopback port.
    BuiltIn,
    /// An already running service; `url` is its base URL (scheme, host, port).
    External { url: Url },
}

/// What every request looks like.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub method: http::Method,
    /// Path and query, starting with `/`, appended to the target's base URL.
    pub path: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Bodies sent in order, cycling; empty means no body.
    pub bodies: Vec<Bytes>,
    /// Whole-request timeout (connect + response).
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub mode: LoadMode,
    /// Upper bound on requests in flight; in open mode a send that would
    /// exceed it is counted as dropped (never silently skipped).
    pub max_in_flight: NonZeroUsize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadMode {
    /// Arrival rate: requests are sent on an absolute schedule whatever the
    /// service does (coordinated-omission free).
    Open,
    /// Fixed concurrency: each worker sends its next request when the previous
    /// one finished (plus think time).
    Closed {
        concurrency: NonZeroU32,
        think_time: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhasePlan {
    pub name: String,
    pub duration: Duration,
    /// Arrival rate in requests per second (open mode). In closed mode the
    /// rate is not used and `concurrency` applies.
    pub rate: Rate,
    /// Closed mode: workers for this phase (defaults to the load section's).
    pub concurrency: Option<NonZeroU32>,
    pub faults: FaultSpec,
    /// Input drift: the request bodies' features shifted (`faults.drift`).
    pub drift: Option<DriftFault>,
    /// Whether the evaluation batch job runs during this phase (with
    /// `[model]`); false simulates a stopped CronJob.
    pub evaluate: bool,
}

/// A phase's input-drift fault: on `fraction` of the requests (seeded,
/// stratified like the other faults) every feature is shifted by `shift`
/// standard deviations of the training data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftFault {
    pub shift: f64,
    pub fraction: f64,
}

/// `[model]`: ground truth and the evaluation batch job.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// The key of each body line that holds its true label; removed before
    /// the body is sent.
    pub label_key: String,
    /// True label of each body, aligned with `RequestTemplate::bodies`.
    pub labels: Vec<String>,
    /// How often the batch job runs (as a CronJob schedule would).
    pub evaluate_every: Duration,
    /// Predictions of the last `window` (ending `label_delay` ago) are evaluated.
    pub window: Duration,
    /// How long labels may take to arrive: the newest predictions are left
    /// to a later run.
    pub label_delay: Duration,
    /// Pushgateway `job` label of the pushed metrics.
    pub job: String,
    /// An existing Pushgateway; None: slocheck starts one.
    pub pushgateway_url: Option<Url>,
}

/// Default Pushgateway job label of the evaluation batch job.
pub const DEFAULT_EVALUATION_JOB: &str = "model-evaluation";

/// Which model-quality metric an expectation checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QualityMetric {
    Accuracy,
    Recall { class: String },
    Precision { class: String },
}

impl QualityMetric {
    /// The pushed metric name (`model_accuracy`, …).
    pub fn metric_name(&self) -> &'static str {
        match self {
            QualityMetric::Accuracy => "model_accuracy",
            QualityMetric::Recall { .. } => "model_recall",
            QualityMetric::Precision { .. } => "model_precision",
        }
    }

    pub fn class(&self) -> Option<&str> {
        match self {
            QualityMetric::Accuracy => None,
            QualityMetric::Recall { class } | QualityMetric::Precision { class } => Some(class),
        }
    }

    /// `accuracy`, `recall of "setosa"`, …
    pub fn describe(&self) -> String {
        match self {
            QualityMetric::Accuracy => "accuracy".into(),
            QualityMetric::Recall { class } => format!("recall of \"{class}\""),
            QualityMetric::Precision { class } => format!("precision of \"{class}\""),
        }
    }
}

/// The bound of a model-quality expectation: a fixed one, or near what the
/// generator computed for the very predictions that were evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityBound {
    Fixed(Bound<f64>),
    NearExpected { tolerance: f64 },
}

/// Requests per second as a function of time since the phase start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Constant(f64),
    /// Linear from `from` at the phase start to `to` at its end. Both ≥ 0 and
    /// not both 0.
    Ramp {
        from: f64,
        to: f64,
    },
}

impl Rate {
    /// Expected number of sends in a phase of `duration` (the integral).
    pub fn expected_count(&self, duration: Duration) -> f64 {
        let secs = duration.as_secs_f64();
        match *self {
            Rate::Constant(r) => r * secs,
            Rate::Ramp { from, to } => (from + to) / 2.0 * secs,
        }
    }
}

/// Faults the load generator asks the target to inject, per request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub error: Option<ErrorFault>,
    pub latency: Option<LatencyFault>,
}

impl FaultSpec {
    pub fn is_empty(&self) -> bool {
        self.error.is_none() && self.latency.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorFault {
    /// Fraction of requests in [0, 1] answered with `status`.
    pub ratio: f64,
    /// A final HTTP status code 200..=599 (a 1xx cannot end a response).
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyFault {
    /// Fraction of requests in [0, 1] delayed.
    pub ratio: f64,
    pub delay: DelayDist,
}

/// Distribution of an injected delay. Sampled by whoever injects it (the load
/// generator per request, or the target's admin fault config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DelayDist {
    Fixed(Duration),
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// Exponential with the given mean (a long tail), capped at `max`.
    Exponential {
        mean: Duration,
        max: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusPlan {
    /// None: slocheck starts a managed Prometheus.
    pub url: Option<Url>,
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    /// Absolute paths of the rule files as the user deploys them.
    pub rule_files: Vec<PathBuf>,
    /// Every range, `for` and `keep_firing_for` in the rules is divided by
    /// this (≥ 1) in the copies a managed Prometheus loads.
    pub time_scale: f64,
    /// Scrape job name used for the target (and in `up{job=…}` checks).
    pub job: String,
    /// After the last phase, how long to keep Prometheus running so the last
    /// phase's samples are scraped and evaluated before verification.
    pub settle: Duration,
}

/// One check of the scenario. Windows are phase names, resolved by `verify`
/// against the run's recorded phase timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Stable id for reports: `expect[3]` or the user's `name`.
    pub id: String,
    pub kind: ExpectKind,
    /// Treat an inconclusive result as pass for this expectation.
    pub allow_inconclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExpectKind {
    /// A latency quantile from the Prometheus histogram over a phase.
    LatencyQuantile {
        quantile: f64,
        phase: String,
        bound: Bound<Duration>,
    },
    /// The 5xx ratio over a phase.
    ErrorRatio { phase: String, bound: Bound<f64> },
    /// The mean latency over a phase (every convention has one; the only
    /// latency of those without histogram buckets).
    LatencyMean {
        phase: String,
        bound: Bound<Duration>,
    },
    /// The lifecycle of a named alert over the run.
    Alert(AlertExpectation),
    /// A named alert's notifications reach a receiver in time.
    Notified(NotifiedExpectation),
    /// A model-quality metric pushed by the evaluation batch job, over an
    /// evaluation window inside a phase, beside the generator's expectation.
    ModelQuality {
        metric: QualityMetric,
        phase: String,
        bound: QualityBound,
    },
    /// Any PromQL expression, aggregated over a phase and compared.
    PromQl {
        expr: String,
        phase: String,
        aggregate: Aggregate,
        bound: Bound<f64>,
    },
    /// The generator delivered a phase's schedule (open loop).
    Load(LoadExpectation),
}

/// Delivered load of one phase: sent ÷ scheduled at least
/// `min_achieved_ratio`, at most `max_dropped` sends dropped. A missing
/// bound is not checked; at least one is given.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadExpectation {
    pub phase: String,
    pub min_achieved_ratio: Option<f64>,
    pub max_dropped: Option<u64>,
}

impl LoadExpectation {
    /// `load in "spike": ≥ 99% of the schedule sent, ≤ 0 dropped`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.min_achieved_ratio {
            parts.push(format!("≥ {}% of the schedule sent", r * 100.0));
        }
        if let Some(d) = self.max_dropped {
            parts.push(format!("≤ {d} dropped"));
        }
        format!("load in \"{}\": {}", self.phase, parts.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Bound<T> {
    Below(T),
    Above(T),
    Near { value: T, tolerance: T },
    Between { min: T, max: T },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertExpectation {
    pub alert: String,
    /// Phases in which the alert must be neither pending nor firing.
    pub silent_during: Vec<String>,
    /// Phase in which the alert must reach firing, within `fire_within`
    /// of the phase start (None: derived from the rule).
    pub fires_during: Option<String>,
    pub fire_within: Option<Duration>,
    /// Phase in which the firing alert must resolve, within `resolve_within`
    /// of that phase's start (None: derived from the rule).
    pub resolves_during: Option<String>,
    pub resolve_within: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertmanagerPlan {
    /// The user's Alertmanager config (absolute); None: slocheck generates
    /// one that routes every alert to its recorder.
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NotifiedExpectation {
    pub alert: String,
    /// Only notifications to this receiver (by its config name) count.
    pub receiver: Option<String>,
    /// Labels the notified alert must carry (e.g. `severity = "critical"`).
    pub labels: Vec<(String, String)>,
    /// Bound from the alert's first firing to the first firing notification
    /// (None: group_wait + 2 × evaluation_interval + 5 s).
    pub firing_within: Option<Duration>,
    /// Bound from the alert's resolution to the resolved notification; when
    /// set, a resolved notification is required. None: required only when
    /// the alert resolved during the run and the receiver sends resolved
    /// notifications, within group_interval + 2 × evaluation_interval + 5 s.
    pub resolved_within: Option<Duration>,
}

impl NotifiedExpectation {
    /// `HighErrorRate{severity="critical"}` as PromQL would write the selector.
    pub fn selector(&self) -> String {
        if self.labels.is_empty() {
            return self.alert.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.alert, labels.join(", "))
    }

    /// What is expected, in words, with the bounds that were given.
    pub fn describe(&self) -> String {
        let to = self.receiver.as_ref().map_or_else(
            || "any receiver".to_string(),
            |r| format!("receiver \"{r}\""),
        );
        let within = |w: Option<Duration>, what: &str| {
            w.map_or_else(
                || format!("{what} (derived bound)"),
                |w| format!("{what} within {}", crate::timeutil::human(w)),
            )
        };
        let mut s = format!(
            "{} notified to {to}: {}",
            self.selector(),
            within(self.firing_within, "firing")
        );
        match self.resolved_within {
            Some(_) => s.push_str(&format!("; {}", within(self.resolved_within, "resolved"))),
            None => s.push_str("; resolved if it resolves and send_resolved is on"),
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// The value at the phase end.
    Last,
    Min,
    Max,
    Avg,
}

/// `[target] http_version`, `connections`, `keep_alive` and `tls`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportPlan {
    pub http_version: HttpVersion,
    /// HTTP/2: connections the streams are multiplexed over. None: one per
    /// load thread and at least one per resolved address.
    pub connections: Option<NonZeroUsize>,
    /// False: a new connection (and TLS handshake) for every request.
    pub keep_alive: bool,
    /// Used when the target URL is `https://`.
    pub tls: TlsPlan,
}

impl Default for TransportPlan {
    fn default() -> Self {
        TransportPlan {
            http_version: HttpVersion::Http1,
            connections: None,
            keep_alive: true,
            tls: TlsPlan::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.1: one request at a time per connection.
    #[default]
    Http1,
    /// HTTP/2: ALPN `h2` over TLS, prior knowledge (h2c) in cleartext.
    Http2,
}

impl HttpVersion {
    /// As written in the scenario: `"1.1"` or `"2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }
}

/// `[target] tls = { … }`; paths absolute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsPlan {
    /// Trust only this CA bundle (PEM) instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (reported as such).
    pub insecure: bool,
    /// Client certificate chain and key (PEM), both or neither.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Name to send as SNI and to verify the certificate against, instead of
    /// the URL's host.
    pub server_name: Option<String>,
}
