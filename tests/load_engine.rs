//! Load engine against a real local HTTP server on 127.0.0.1:0 that counts
//! what it receives, can stall, and honours the fault header.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use slocheck::load::{LiveStats, run};
use slocheck::plan::*;
use slocheck::record::RunRecord;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Seen {
    total: AtomicU64,
    faults: Mutex<HashMap<String, u64>>,
    /// Every request waits this long.
    sleep_ms: AtomicU64,
    /// Requests arriving in [stall_from, stall_until) (ms since `epoch`)
    /// wait until `stall_until`: a stop-the-world pause.
    stall: Mutex<Option<(Instant, Instant)>>,
}

async fn handle(State(seen): State<Arc<Seen>>, req: Request) -> StatusCode {
    seen.total.fetch_add(1, Relaxed);
    let fault = req
        .headers()
        .get("x-slocheck-fault")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let stall_end = {
        let stall = seen.stall.lock().unwrap();
        stall.and_then(|(from, until)| {
            (Instant::now() >= from && Instant::now() < until).then_some(until)
        })
    };
    if let Some(until) = stall_end {
        tokio::time::sleep_until(until.into()).await;
    }
    let sleep = seen.sleep_ms.load(Relaxed);
    if sleep > 0 {
        tokio::time::sleep(Duration::from_millis(sleep)).await;
    }
    let Some(fault) = fault else {
        return StatusCode::OK;
    };
    *seen
        .faults
        .lock()
        .unwrap()
        .entry(fault.clone())
        .or_default() += 1;
    let status = fault
        .split(',')
        .find_map(|p| p.strip_prefix("status="))
        .and_then(|s| s.parse().ok());
    status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK)
}

async fn server() -> (reqwest::Url, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new().fallback(handle).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn phase(name: &str, secs: f64, rate: f64, faults: FaultSpec) -> PhasePlan {
    PhasePlan {
        name: name.into(),
        duration: Duration::from_secs_f64(secs),
        rate: Rate::Constant(rate),
        concurrency: None,
        faults,
    }
}

fn plan(mode: LoadMode, max_in_flight: usize, phases: Vec<PhasePlan>) -> Plan {
    let mut plan = Plan::single_phase("test", mode, 0.0, Duration::ZERO);
    plan.seed = 42;
    plan.request.method = http::Method::POST;
    plan.request.path = "/predict".into();
    plan.request.headers = vec![(
        http::HeaderName::from_static("content-type"),
        http::HeaderValue::from_static("application/json"),
    )];
    plan.request.bodies = vec![
        bytes::Bytes::from_static(b"{\"a\":1}"),
        bytes::Bytes::from_static(b"{\"a\":2}"),
    ];
    plan.load.max_in_flight = NonZeroUsize::new(max_in_flight).unwrap();
    plan.phases = phases;
    plan
}

fn closed(c: u32) -> LoadMode {
    LoadMode::Closed {
        concurrency: NonZeroU32::new(c).unwrap(),
        think_time: Duration::ZERO,
    }
}

async fn go(plan: &Plan, url: &reqwest::Url) -> RunRecord {
    run(
        plan,
        url,
        Arc::new(LiveStats::new()),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn p90_ms(h: &hdrhistogram::Histogram<u64>) -> f64 {
    h.value_at_quantile(0.9) as f64 / 1000.0
}

#[tokio::test]
async fn open_loop_delivers_the_scheduled_count() {
    let (url, seen) = server().await;
    let p = plan(
        LoadMode::Open,
        1000,
        vec![phase("steady", 3.0, 300.0, FaultSpec::default())],
    );
    let live = Arc::new(LiveStats::new());
    let rec = run(&p, &url, live.clone(), CancellationToken::new())
        .await
        .unwrap();
    let ph = &rec.phases[0];
    assert!(!rec.aborted);
    assert_eq!(ph.scheduled, 900);
    assert_eq!(ph.dropped, 0);
    assert_eq!(ph.sent, ph.scheduled);
    let got = seen.total.load(Relaxed) as f64;
    assert!((got - 900.0).abs() <= 9.0, "server saw {got} of 900");
    assert_eq!(ph.status_classes[1], ph.sent, "{:?}", ph.statuses);
    assert_eq!(ph.latency_corrected.len(), ph.sent);
    assert!((ph.duration_secs() - 3.0).abs() < 0.01);
    assert_eq!(ph.per_second.iter().map(|s| s.sent).sum::<u64>(), ph.sent);
    // Live counters were published and agree with the record at the end.
    let snap = live.snapshot();
    assert_eq!((snap.sent, snap.completed, snap.ok), (900, 900, 900));
}

#[tokio::test]
async fn fault_headers_arrive_as_planned() {
    let (url, seen) = server().await;
    let faults = FaultSpec {
        error: Some(ErrorFault {
            ratio: 0.2,
            status: 503,
        }),
        latency: Some(LatencyFault {
            ratio: 0.1,
            delay: DelayDist::Fixed(Duration::from_millis(20)),
        }),
    };
    let p = plan(
        LoadMode::Open,
        1000,
        vec![
            phase("clean", 1.0, 200.0, FaultSpec::default()),
            phase("spike", 2.0, 200.0, faults),
        ],
    );
    let rec = go(&p, &url).await;
    let (clean, spike) = (&rec.phases[0], &rec.phases[1]);
    assert_eq!(
        (
            clean.injected_errors,
            clean.injected_delays,
            clean.server_errors()
        ),
        (0, 0, 0)
    );
    // Stratified selection: 20 % and 10 % of 400 requests within two.
    assert!(
        spike.injected_errors.abs_diff(80) <= 2,
        "{}",
        spike.injected_errors
    );
    assert!(
        spike.injected_delays.abs_diff(40) <= 2,
        "{}",
        spike.injected_delays
    );
    let by_value = seen.faults.lock().unwrap().clone();
    let count = |k: &str| by_value.get(k).copied().unwrap_or(0);
    assert_eq!(
        count("status=503") + count("delay=20ms,status=503"),
        spike.injected_errors,
        "{by_value:?}"
    );
    assert_eq!(
        count("delay=20ms") + count("delay=20ms,status=503"),
        spike.injected_delays,
        "{by_value:?}"
    );
    assert_eq!(by_value.keys().len(), 3, "{by_value:?}");
    assert_eq!(spike.server_errors(), spike.injected_errors);
    assert_eq!(
        spike.statuses.iter().find(|s| s.0 == 503).map(|s| s.1),
        Some(spike.injected_errors)
    );
}

#[tokio::test]
async fn a_stall_grows_open_loop_corrected_latency_not_closed_loop_service_time() {
    let (url, seen) = server().await;
    let pause = |seen: &Seen| {
        let from = Instant::now() + Duration::from_millis(1000);
        *seen.stall.lock().unwrap() = Some((from, from + Duration::from_millis(1000)));
    };
    pause(&seen);
    let open = plan(
        LoadMode::Open,
        1000,
        vec![phase("p", 3.0, 200.0, FaultSpec::default())],
    );
    let o = go(&open, &url).await;
    pause(&seen);
    let closed_plan = plan(
        closed(2),
        1000,
        vec![phase("p", 3.0, 0.0, FaultSpec::default())],
    );
    let c = go(&closed_plan, &url).await;
    let (o, c) = (&o.phases[0], &c.phases[0]);
    // A third of the open-loop arrivals land in the 1 s pause.
    assert!(
        p90_ms(&o.latency_corrected) > 300.0,
        "open corrected p90 {}",
        p90_ms(&o.latency_corrected)
    );
    // Closed loop: two workers are stuck once, everything else is fast.
    assert!(c.sent > 100, "closed sent {}", c.sent);
    assert!(
        p90_ms(&c.latency_service) < 100.0,
        "closed service p90 {}",
        p90_ms(&c.latency_service)
    );
    assert!(c.latency_service.max() >= 500_000, "the pause was observed");
    // The per-second series shows the pause in the open-loop run.
    let worst = o.per_second.iter().map(|s| s.p90_us).max().unwrap();
    assert!(worst > 300_000, "{:?}", o.per_second);
}

#[tokio::test]
async fn max_in_flight_reached_counts_drops() {
    let (url, seen) = server().await;
    seen.sleep_ms.store(400, Relaxed);
    let p = plan(
        LoadMode::Open,
        4,
        vec![phase("p", 2.0, 100.0, FaultSpec::default())],
    );
    let rec = go(&p, &url).await;
    let ph = &rec.phases[0];
    assert_eq!(ph.scheduled, 200);
    assert!(ph.dropped > 100, "dropped {}", ph.dropped);
    assert_eq!(ph.sent + ph.dropped, ph.scheduled);
    // At most 4 in flight at 400 ms each: ≤ 4 per 400 ms over 2 s, plus slack.
    assert!(ph.sent <= 30, "sent {}", ph.sent);
    assert!(super_table_mentions_drops(&rec));
}

fn super_table_mentions_drops(rec: &RunRecord) -> bool {
    let table = slocheck::load::phase_summary_table(rec);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let i = header.iter().position(|h| *h == "dropped").unwrap();
    row[i] == rec.phases[0].dropped.to_string()
}

#[tokio::test]
async fn cancel_stops_within_a_second() {
    let (url, seen) = server().await;
    seen.sleep_ms.store(5000, Relaxed);
    let p = plan(
        LoadMode::Open,
        1000,
        vec![
            phase("a", 30.0, 100.0, FaultSpec::default()),
            phase("b", 30.0, 100.0, FaultSpec::default()),
        ],
    );
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        c2.cancel();
    });
    let started = SystemTime::now();
    let rec = run(&p, &url, Arc::new(LiveStats::new()), cancel)
        .await
        .unwrap();
    let took = started.elapsed().unwrap();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(rec.aborted);
    assert_eq!(rec.phases.len(), 1);
    let a = &rec.phases[0];
    assert!(
        (0.8..1.6).contains(&a.duration_secs()),
        "phase closed at {}",
        a.duration_secs()
    );
    assert!(
        a.sent > 50 && a.responses() == 0,
        "sent {} responses {}",
        a.sent,
        a.responses()
    );
}

#[tokio::test]
async fn closed_loop_counts_every_request() {
    let (url, seen) = server().await;
    let mut phases = vec![
        phase("four", 1.0, 0.0, FaultSpec::default()),
        phase("one", 1.0, 0.0, FaultSpec::default()),
    ];
    phases[1].concurrency = NonZeroU32::new(1);
    let p = plan(
        LoadMode::Closed {
            concurrency: NonZeroU32::new(4).unwrap(),
            think_time: Duration::from_millis(10),
        },
        1000,
        phases,
    );
    let rec = go(&p, &url).await;
    let sent: u64 = rec.phases.iter().map(|p| p.sent).sum();
    assert_eq!(seen.total.load(Relaxed), sent);
    assert_eq!(rec.phases.iter().map(|p| p.responses()).sum::<u64>(), sent);
    // 10 ms think time bounds each worker to ≤ 100 requests per second.
    assert!(
        rec.phases[0].sent > 100 && rec.phases[0].sent <= 404,
        "{}",
        rec.phases[0].sent
    );
    assert!(
        rec.phases[1].sent > 25 && rec.phases[1].sent <= 101,
        "{}",
        rec.phases[1].sent
    );
}

#[tokio::test]
async fn refused_connections_are_counted_not_fatal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url: reqwest::Url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let p = plan(
        LoadMode::Open,
        100,
        vec![phase("p", 0.5, 100.0, FaultSpec::default())],
    );
    let rec = go(&p, &url).await;
    let ph = &rec.phases[0];
    assert_eq!(ph.connection_errors, ph.sent);
    assert_eq!(ph.responses(), 0);
}

#[tokio::test]
async fn https_to_a_closed_port_counts_connection_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url: reqwest::Url = format!("https://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let p = plan(
        LoadMode::Open,
        10,
        vec![phase("p", 0.2, 20.0, FaultSpec::default())],
    );
    let rec = go(&p, &url).await;
    let ph = &rec.phases[0];
    assert!(ph.sent > 0);
    assert_eq!(ph.connection_errors, ph.sent);
    // Before a run, the strict preflight refuses it with one line instead.
    let err = slocheck::load::preflight(&p, &url).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("target {url} is unreachable: ")),
        "{err}"
    );
}
