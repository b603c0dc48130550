//! Connections under a burst of overdue open-loop requests, against the
//! real built-in target on port 0: a schedule that started 500 ms ago
//! releases ~1,000 requests at once (what a generator stall does). They are
//! all sent, none dropped, and they share connections handed back instead of
//! opening one each (the pool's bound, `load::pool`), while a target whose
//! every answer takes 300 ms still gets a connection per request in flight
//! (rate × latency is real demand, not a burst).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use slocheck::load::client::Target;
use slocheck::load::slice::Slice;
use slocheck::load::{LiveStats, run_slice};
use slocheck::plan::{DelayDist, LatencyFault, LoadMode, Plan};
use slocheck::target::{TargetConfig, TargetHandle};
use tokio_util::sync::CancellationToken;

/// Runs `rate` rps for `secs` from a start `behind` in the past; returns
/// (sent, dropped, ok responses, connections opened).
async fn burst(
    t: &TargetHandle,
    rate: f64,
    secs: u64,
    behind: Duration,
    delay: Option<Duration>,
) -> (u64, u64, u64, u64) {
    let mut plan = Plan::single_phase("burst", LoadMode::Open, rate, Duration::from_secs(secs));
    plan.request.path = "/predict".into();
    // Through the fault header, which the built-in target honours.
    plan.phases[0].faults.latency = delay.map(|d| LatencyFault {
        ratio: 1.0,
        delay: DelayDist::Fixed(d),
    });
    let (target, _) = Target::prepare(&t.base_url(), &plan.request, &plan.transport)
        .await
        .expect("target prepared");
    let part = run_slice(
        &plan,
        target,
        Arc::new(LiveStats::new()),
        CancellationToken::new(),
        Slice::WHOLE,
        SystemTime::now() - behind,
    )
    .await
    .expect("load runs");
    let rec = &part.recorders[0];
    (
        rec.sent,
        rec.dropped,
        rec.ok(),
        part.transport.connections_opened,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_burst_shares_connections_and_slow_answers_get_their_own() {
    let t = TargetHandle::start(TargetConfig::default())
        .await
        .expect("target starts");
    // 2 000 rps, 500 ms behind: ~1 000 requests due at the first wake.
    let (sent, dropped, ok, opened) = burst(&t, 2_000.0, 2, Duration::from_millis(500), None).await;
    assert_eq!((sent, dropped), (4_000, 0));
    assert_eq!(ok, sent, "every request answered 2xx");
    // Unbounded, each overdue request opened its own connection and more
    // (1 626 measured); bounded, 285 in a debug build on 2 busy cores.
    assert!(
        opened <= 600,
        "{opened} connections for a burst of ~1 000 requests to a fast target"
    );

    // 300 ms answers at 200 rps: ~60 in flight need ~60 connections.
    let slow = Some(Duration::from_millis(300));
    let (sent, dropped, ok, opened) = burst(&t, 200.0, 2, Duration::ZERO, slow).await;
    assert_eq!((sent, dropped, ok), (400, 0, 400));
    assert!(
        (50..=120).contains(&opened),
        "{opened} connections for ~60 requests in flight"
    );
    t.shutdown().await;
}
