//! `--metrics-listen ADDR`: serves the generator's own metrics at
//! `GET /metrics` (Prometheus text format) so the managed Prometheus scrapes
//! them beside the target. A scrape reads the shards' atomics
//! (`load::metrics`); nothing is computed on the request path.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::metrics::{AtomicHistogram, GeneratorMetrics, PhaseCells};
use crate::target::metrics::CONTENT_TYPE;

/// The job name the managed Prometheus scrapes the generator under.
pub const JOB: &str = "slocheck-generator";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeriesLabels {
    phase: String,
    shard: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    phase: String,
    shard: usize,
    kind: &'static str,
}

#[derive(Debug)]
struct GeneratorCollector(Arc<GeneratorMetrics>);

type Read = fn(&PhaseCells) -> u64;

/// Counters: (name without `_total`, help, reader).
const COUNTERS: [(&str, &str, Read); 4] = [
    (
        "slocheck_generator_requests_scheduled",
        "Requests the schedule asked for (open loop) or workers attempted (closed loop); its rate is the intended rate.",
        |c| c.scheduled.load(std::sync::atomic::Ordering::Relaxed),
    ),
    (
        "slocheck_generator_requests_sent",
        "Requests sent; its rate is the achieved rate.",
        |c| c.sent.load(std::sync::atomic::Ordering::Relaxed),
    ),
    (
        "slocheck_generator_requests_dropped",
        "Scheduled requests not sent because max_in_flight was reached.",
        |c| c.dropped.load(std::sync::atomic::Ordering::Relaxed),
    ),
    (
        "slocheck_generator_faults_acknowledged",
        "Fault requests whose response carried the target's acknowledgement header (x-slocheck-fault-applied).",
        |c| {
            c.faults_acknowledged
                .load(std::sync::atomic::Ordering::Relaxed)
        },
    ),
];

fn encode_histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[super::metrics::Series],
    pick: fn(&PhaseCells) -> &AtomicHistogram,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for s in series {
        let (mut buckets, sum, count) = pick(&s.cells).read();
        let below: u64 = buckets.iter().map(|(_, n)| n).sum();
        buckets.push((f64::INFINITY, count.saturating_sub(below)));
        let labels = SeriesLabels {
            phase: s.phase.clone(),
            shard: s.shard,
        };
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    Ok(())
}

impl Collector for GeneratorCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self.0.series();
        for (name, help, read) in COUNTERS {
            let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &series {
                let labels = SeriesLabels {
                    phase: s.phase.clone(),
                    shard: s.shard,
                };
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&read(&s.cells), None)?;
            }
        }
        let mut family = enc.encode_descriptor(
            "slocheck_generator_faults_injected",
            "Requests the fault plan marked: kind=error (status fault) or kind=delay.",
            None,
            MetricType::Counter,
        )?;
        for s in &series {
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            for (kind, v) in [
                ("error", s.cells.injected_errors.load(relaxed)),
                ("delay", s.cells.injected_delays.load(relaxed)),
            ] {
                let labels = FaultLabels {
                    phase: s.phase.clone(),
                    shard: s.shard,
                    kind,
                };
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
            }
        }
        encode_histogram(
            &mut enc,
            "slocheck_generator_scheduler_lag_seconds",
            "Open loop: actual send time minus intended send time.",
            &series,
            |c| &c.lag,
        )?;
        encode_histogram(
            &mut enc,
            "slocheck_generator_client_latency_seconds",
            "Client latency of responses, from the intended send time (coordinated-omission corrected).",
            &series,
            |c| &c.latency,
        )?;
        Ok(())
    }
}

/// The exposition text of `metrics`.
pub fn encode(metrics: &Arc<GeneratorMetrics>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(GeneratorCollector(metrics.clone())));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

async fn metrics_text(State(m): State<Arc<GeneratorMetrics>>) -> Response {
    match encode(&m) {
        Ok(text) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen on {addr} for --metrics-listen: {source} (hint: pick a free port, e.g. 127.0.0.1:0)"
)]
pub struct ListenError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` and serves `/metrics` until `stop`; returns the bound
/// address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<GeneratorMetrics>,
    stop: CancellationToken,
) -> Result<SocketAddr, ListenError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(metrics);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    #[test]
    fn exposition_has_every_family_per_phase_and_shard() {
        let m = Arc::new(GeneratorMetrics::new());
        let cells = m.cells(1, &["spike"]);
        cells[0].sent.fetch_add(7, Relaxed);
        cells[0].injected_errors.fetch_add(2, Relaxed);
        cells[0].lag.observe(Duration::from_micros(30));
        cells[0].lag.observe(Duration::from_secs(1));
        let text = encode(&m).unwrap();
        for line in [
            r#"slocheck_generator_requests_sent_total{phase="spike",shard="1"} 7"#,
            r#"slocheck_generator_faults_injected_total{phase="spike",shard="1",kind="error"} 2"#,
            r#"slocheck_generator_scheduler_lag_seconds_bucket{phase="spike",shard="1",le="5e-05"} 1"#,
            r#"slocheck_generator_scheduler_lag_seconds_bucket{phase="spike",shard="1",le="+Inf"} 2"#,
            r#"slocheck_generator_scheduler_lag_seconds_count{phase="spike",shard="1"} 2"#,
            r#"slocheck_generator_client_latency_seconds_count{phase="spike",shard="1"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
        assert_eq!(text.matches("le=\"+Inf\"").count(), 2, "{text}");
    }
}
