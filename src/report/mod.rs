//! Reports of a run. `Report` is the one machine-readable model (versioned,
//! serialised as `report.json`), built from the plain data a run produced
//! (`RunData`); every renderer is a function `(&Report, impl Write)`. Nothing
//! here asks Prometheus or knows how the run went about it.

pub mod atomic;
mod chart;
pub mod cmd;
pub mod dir;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod terminal;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::verify::observe::charts::ChartSeries;

use crate::plan::{LoadMode, Plan};
use crate::prom::timescale::ScaledFile;
use crate::record::{PhaseRecord, RunRecord, SecondStats};
use crate::timeutil::{rfc3339, unix_ms};
use crate::verify::outcome::{AlertTimeline, ExpectationResult, Outcome, PhaseAgreement, Verdict};

/// What a run produced, as far as it got: the plain data a report is built
/// from.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunData<'a> {
    /// None: the run failed before the load.
    pub record: Option<&'a RunRecord>,
    /// None: the run failed before verification ended.
    pub outcome: Option<&'a Outcome>,
    pub scaled: &'a [ScaledFile],
    pub prometheus_url: Option<&'a str>,
    pub prometheus_version: Option<&'a str>,
    pub charts: Option<&'a ChartSeries>,
    /// What every loaded rule did during the run.
    pub coverage: Option<&'a crate::coverage::RunCoverage>,
}

/// Bumped on any incompatible change of the JSON layout.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every expectation passed.
    Passed,
    /// Verification ran; at least one expectation failed or was inconclusive.
    Failed,
    /// Interrupted by a signal; what ran is reported.
    Aborted,
    /// The tool or its environment failed (exit 2 or 3).
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub status: RunStatus,
    pub exit_code: u8,
    pub error: Option<String>,
    pub scenario: ScenarioInfo,
    pub prometheus: PrometheusInfo,
    pub rules: Vec<ScaledRules>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub phases: Vec<PhaseReport>,
    pub expectations: Vec<ExpectationResult>,
    pub alerts: Vec<AlertTimeline>,
    pub agreement: Vec<PhaseAgreement>,
    pub summary: Summary,
    /// Time series for the HTML charts (None when Prometheus could not be
    /// asked, e.g. the run failed before verification).
    #[serde(default)]
    pub charts: Option<ChartSeries>,
    /// What every loaded rule did during the run (None: not observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::coverage::RunCoverage>,
    /// The generator: pacer, shards, warnings about its own delay (None
    /// when no load ran).
    #[serde(default)]
    pub generator: Option<GeneratorReport>,
    /// How the load connected (None when no load ran).
    #[serde(default)]
    pub transport: Option<TransportReport>,
}

/// How the load was generated and whether its own delay is worth a warning.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorReport {
    /// `timerfd` or `sleep_until`; None in closed mode.
    pub pacer: Option<String>,
    pub shards: usize,
    pub cores: usize,
    pub warnings: Vec<String>,
}

impl GeneratorReport {
    pub fn of(r: &RunRecord) -> GeneratorReport {
        GeneratorReport {
            pacer: r.generator.pacer.clone(),
            shards: r.generator.shards,
            cores: r.generator.cores,
            warnings: (r.generator.missing_shards.iter())
                .map(crate::record::MissingShard::describe)
                .chain(crate::load::summary::lag_warnings(r))
                .collect(),
        }
    }
}

/// The load's connections: protocol, TLS (and whether verification was
/// off), connections opened and requests per resolved address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportReport {
    /// `"1.1"` or `"2"`.
    pub http_version: String,
    pub tls: bool,
    /// `tls.insecure = true`: certificates were not verified.
    pub insecure: bool,
    pub keep_alive: bool,
    pub connections_opened: u64,
    pub addresses: Vec<AddressReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddressReport {
    pub address: String,
    pub requests: u64,
}

impl TransportReport {
    pub fn of(t: &crate::record::TransportRecord) -> TransportReport {
        TransportReport {
            http_version: t.http_version.as_str().into(),
            tls: t.tls,
            insecure: t.insecure,
            keep_alive: t.keep_alive,
            connections_opened: t.connections_opened,
            addresses: t
                .addresses
                .iter()
                .map(|(a, n)| AddressReport {
                    address: a.to_string(),
                    requests: *n,
                })
                .collect(),
        }
    }

    /// One line: `HTTP/2 over TLS; 4 connections opened; requests per
    /// address: 127.0.0.1:8443 = 1200, [::1]:8443 = 1190`.
    pub fn describe(&self) -> String {
        let tls = match (self.tls, self.insecure) {
            (false, _) => "",
            (true, false) => " over TLS",
            (true, true) => " over TLS WITHOUT certificate verification (insecure = true)",
        };
        let reuse = if self.keep_alive {
            ""
        } else {
            " (keep_alive = false: one per request)"
        };
        let per: Vec<String> = self
            .addresses
            .iter()
            .map(|a| format!("{} = {}", a.address, a.requests))
            .collect();
        format!(
            "HTTP/{}{tls}; {} connections opened{reuse}; requests per address: {}",
            self.http_version,
            self.connections_opened,
            per.join(", ")
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: String,
    pub seed: u64,
    /// `open` or `closed`.
    pub mode: String,
    pub time_scale: f64,
    pub scrape_interval_ms: u64,
    pub evaluation_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrometheusInfo {
    pub managed: bool,
    pub url: Option<String>,
    pub version: Option<String>,
}

/// A rule file as deployed and what time scaling changed in its copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaledRules {
    pub file: String,
    pub changes: Vec<RuleChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleChange {
    pub group: String,
    pub rule: String,
    pub field: String,
    pub original: String,
    pub scaled: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    pub start: String,
    pub end: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub duration_seconds: f64,
    pub scheduled: u64,
    pub sent: u64,
    pub dropped: u64,
    pub achieved_rps: f64,
    pub status_classes: BTreeMap<String, u64>,
    pub statuses: BTreeMap<String, u64>,
    pub connection_errors: u64,
    pub timeouts: u64,
    pub injected_errors: u64,
    pub injected_delays: u64,
    /// Requests that carried the fault header, and responses acknowledging
    /// it; absent in reports written before the acknowledgement existed.
    #[serde(default)]
    pub faults_requested: u64,
    #[serde(default)]
    pub faults_acknowledged: u64,
    pub injected_error_ratio: Option<f64>,
    pub observed_error_ratio: Option<f64>,
    /// From the intended send time (coordinated-omission corrected).
    pub latency_corrected: LatencyStats,
    /// From the actual send.
    pub latency_service: LatencyStats,
    /// Open-loop scheduler lag, µs: how late the generator sent. Reports
    /// written before it existed read as "no lag recorded".
    #[serde(default)]
    pub lag_us: LagStats,
    pub per_second: Vec<SecondStats>,
}

/// Scheduler-lag percentiles in microseconds (None without open-loop sends).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LagStats {
    pub count: u64,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl LagStats {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> LagStats {
        let n = h.len();
        LagStats {
            count: n,
            p50: (n > 0).then(|| h.value_at_quantile(0.5)),
            p99: (n > 0).then(|| h.value_at_quantile(0.99)),
            max: (n > 0).then(|| h.max()),
        }
    }
}

/// Latency percentiles in seconds (None without samples).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub inconclusive: usize,
}

impl LatencyStats {
    fn of(h: &hdrhistogram::Histogram<u64>) -> LatencyStats {
        let n = h.len();
        let q = |q: f64| (n > 0).then(|| h.value_at_quantile(q) as f64 / 1e6);
        LatencyStats {
            count: n,
            mean: (n > 0).then(|| h.mean() / 1e6),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: (n > 0).then(|| h.max() as f64 / 1e6),
        }
    }
}

impl PhaseReport {
    pub fn of(p: &PhaseRecord) -> PhaseReport {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        PhaseReport {
            name: p.name.clone(),
            start: rfc3339(p.start),
            end: rfc3339(p.end),
            start_ms: unix_ms(p.start),
            end_ms: unix_ms(p.end),
            duration_seconds: p.duration_secs(),
            scheduled: p.scheduled,
            sent: p.sent,
            dropped: p.dropped,
            achieved_rps: p.achieved_rps(),
            status_classes: classes
                .iter()
                .zip(p.status_classes)
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            statuses: p
                .statuses
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            connection_errors: p.connection_errors,
            timeouts: p.timeouts,
            injected_errors: p.injected_errors,
            injected_delays: p.injected_delays,
            faults_requested: p.faults_requested,
            faults_acknowledged: p.faults_acknowledged,
            injected_error_ratio: p.injected_error_ratio(),
            observed_error_ratio: p.observed_error_ratio(),
            latency_corrected: LatencyStats::of(&p.latency_corrected),
            latency_service: LatencyStats::of(&p.latency_service),
            lag_us: LagStats::of(&p.scheduler_lag),
            per_second: p.per_second.clone(),
        }
    }
}

impl ScenarioInfo {
    fn of(plan: &Plan) -> ScenarioInfo {
        let pp = &plan.prometheus;
        ScenarioInfo {
            name: plan.name.clone(),
            path: plan.source.display().to_string(),
            seed: plan.seed,
            mode: match plan.load.mode {
                LoadMode::Open => "open",
                LoadMode::Closed { .. } => "closed",
            }
            .into(),
            time_scale: pp.time_scale,
            scrape_interval_ms: pp.scrape_interval.as_millis() as u64,
            evaluation_interval_ms: pp.evaluation_interval.as_millis() as u64,
        }
    }
}

impl ScaledRules {
    fn of(f: &ScaledFile) -> ScaledRules {
        ScaledRules {
            file: f.original.display().to_string(),
            changes: f
                .changes
                .iter()
                .map(|c| RuleChange {
                    group: c.group.clone(),
                    rule: c.rule.clone(),
                    field: c.field.to_string(),
                    original: c.original.clone(),
                    scaled: c.scaled.clone(),
                })
                .collect(),
        }
    }
}

impl Summary {
    fn of(results: &[ExpectationResult]) -> Summary {
        let count = |v| results.iter().filter(|r| r.verdict == v).count();
        Summary {
            passed: count(Verdict::Pass),
            failed: count(Verdict::Fail),
            inconclusive: count(Verdict::Inconclusive),
        }
    }
}

impl Report {
    pub fn new(
        plan: &Plan,
        run: &RunData<'_>,
        status: RunStatus,
        exit_code: u8,
        error: Option<String>,
    ) -> Report {
        let (results, alerts, agreement) = match run.outcome {
            Some(o) => (o.results.clone(), o.alerts.clone(), o.agreement.clone()),
            None => Default::default(),
        };
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "slocheck".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            status,
            exit_code,
            error,
            scenario: ScenarioInfo::of(plan),
            prometheus: PrometheusInfo {
                managed: plan.prometheus.url.is_none(),
                url: run.prometheus_url.map(str::to_string),
                version: run.prometheus_version.map(str::to_string),
            },
            rules: run.scaled.iter().map(ScaledRules::of).collect(),
            started_at: run.record.map(|r| rfc3339(r.started_at)),
            ended_at: run.record.map(|r| rfc3339(r.ended_at)),
            phases: run
                .record
                .map(|r| r.phases.iter().map(PhaseReport::of).collect())
                .unwrap_or_default(),
            summary: Summary::of(&results),
            expectations: results,
            alerts,
            agreement,
            charts: run.charts.cloned(),
            coverage: run.coverage.cloned(),
            generator: run.record.map(GeneratorReport::of),
            transport: run
                .record
                .filter(|r| !r.transport.addresses.is_empty())
                .map(|r| TransportReport::of(&r.transport)),
        }
    }
}
