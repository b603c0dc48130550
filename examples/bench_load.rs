//! Benchmark driver for the load engine alone (no CLI, no Prometheus): runs
//! one phase against a URL and prints achieved rate, delivered share of the
//! schedule, scheduler lag, CPU per request and peak RSS as `key=value` pairs
//! for `ci/bench-load.sh`.
//!
//! usage: bench_load URL closed CONNS SECS | bench_load URL open RATE SECS
//!
//! HTTPS and HTTP/2 (for the TLS section of the benchmark) come from the
//! environment: BENCH_HTTP_VERSION=2, BENCH_CONNECTIONS=N (HTTP/2
//! connections), BENCH_TLS_CA=PEM or BENCH_TLS_INSECURE=1.

use std::error::Error;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use slocheck::load::{LiveStats, run};

/// The allocator the `slocheck` binary runs with (see src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use slocheck::plan::*;
use tokio_util::sync::CancellationToken;

/// User + system CPU seconds of this process, from /proc (clock ticks of 10 ms).
fn cpu_secs() -> Result<f64, Box<dyn Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').ok_or("unexpected /proc/self/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).ok_or("no utime")?.parse::<u64>()?
        + f.get(12).ok_or("no stime")?.parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

fn peak_rss_kb() -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}

fn plan(mode: LoadMode, rate: f64, secs: u64, path: &str) -> Plan {
    let mut plan = Plan::single_phase("bench", mode, rate, Duration::from_secs(secs));
    plan.request.path = path.into();
    // The fault plan is on, as in a real run: 1 % of requests carry
    // `x-slocheck-fault: status=503` (nginx ignores the header).
    plan.phases[0].faults.error = Some(ErrorFault {
        ratio: 0.01,
        status: 503,
    });
    plan
}

/// The transport keys of a scenario, from BENCH_* variables.
fn transport_from_env(plan: &mut Plan) -> Result<(), Box<dyn Error>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if var("BENCH_HTTP_VERSION").as_deref() == Some("2") {
        plan.transport.http_version = HttpVersion::Http2;
    }
    if let Some(n) = var("BENCH_CONNECTIONS") {
        plan.transport.connections = Some(n.parse()?);
    }
    plan.transport.tls.ca_file = var("BENCH_TLS_CA").map(Into::into);
    plan.transport.tls.insecure = var("BENCH_TLS_INSECURE").as_deref() == Some("1");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, mode, n, secs] = args.as_slice() else {
        return Err(
            "usage: bench_load URL closed CONNS SECS | bench_load URL open RATE SECS".into(),
        );
    };
    let mut url: reqwest::Url = url.parse()?;
    // The URL's path is the request path; the engine takes the base URL.
    let path = url.path().to_string();
    url.set_path("/");
    let secs: u64 = secs.parse()?;
    let p = match mode.as_str() {
        "closed" => {
            let c = NonZeroU32::new(n.parse()?).ok_or("CONNS must be > 0")?;
            plan(
                LoadMode::Closed {
                    concurrency: c,
                    think_time: Duration::ZERO,
                },
                0.0,
                secs,
                &path,
            )
        }
        "open" => plan(LoadMode::Open, n.parse()?, secs, &path),
        other => return Err(format!("unknown mode {other:?} (hint: closed or open)").into()),
    };
    let mut p = p;
    transport_from_env(&mut p)?;
    let cpu0 = cpu_secs()?;
    let rec = run(
        &p,
        &url,
        Arc::new(LiveStats::new()),
        CancellationToken::new(),
    )
    .await?;
    let cpu = cpu_secs()? - cpu0;
    let ph = rec.phases.first().ok_or("no phase recorded")?;
    let done = ph.responses().max(1);
    let lag = |q: f64| {
        if ph.scheduler_lag.is_empty() {
            "-".to_string()
        } else {
            ph.scheduler_lag.value_at_quantile(q).to_string()
        }
    };
    println!(
        "sent={} planned={} delivered={:.4} pacer={} shards={} lag_p50_us={} lag_p99_us={} lag_max_us={} responses={} ok_2xx={} dropped={} errors={} conn_errors={} timeouts={} rps={:.0} cpu_s={:.2} cpu_us_per_req={:.2} p50_us={} p99_us={} peak_rss_kb={} connections={}",
        ph.sent,
        ph.planned
            .map_or_else(|| "-".to_string(), |n| n.to_string()),
        ph.planned
            .filter(|&n| n > 0)
            .map_or(1.0, |n| ph.sent as f64 / n as f64),
        rec.generator.pacer.as_deref().unwrap_or("-"),
        rec.generator.shards,
        lag(0.5),
        lag(0.99),
        if ph.scheduler_lag.is_empty() {
            "-".to_string()
        } else {
            ph.scheduler_lag.max().to_string()
        },
        ph.responses(),
        ph.status_classes[1],
        ph.dropped,
        ph.connection_errors + ph.timeouts,
        ph.connection_errors,
        ph.timeouts,
        ph.responses() as f64 / ph.duration_secs().max(1e-9),
        cpu,
        cpu * 1e6 / done as f64,
        ph.latency_corrected.value_at_quantile(0.5),
        ph.latency_corrected.value_at_quantile(0.99),
        peak_rss_kb()?,
        rec.transport.connections_opened,
    );
    Ok(())
}
