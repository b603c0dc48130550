//! The load engine over TLS against the built-in target serving HTTPS with a
//! certificate the test makes: verification with a CA file, `insecure`,
//! connection policy, every resolved address, and the fault protocol and HDR
//! recording identical over HTTP/1.1, HTTP/2 and TLS.

#[path = "tls_support/mod.rs"]
mod tls_support;

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use slocheck::load::client::Target;
use slocheck::load::{LiveStats, run, run_prepared};
use slocheck::plan::*;
use slocheck::record::RunRecord;
use slocheck::target::{TargetConfig, TargetHandle};
use tokio_util::sync::CancellationToken;

fn plan(mode: LoadMode, secs: f64, rate: f64) -> Plan {
    let mut plan = Plan::single_phase("tls", mode, rate, Duration::from_secs_f64(secs));
    plan.seed = 7;
    plan.request.method = http::Method::POST;
    plan.request.path = "/predict".into();
    plan.request.headers = vec![(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    )];
    plan.request.bodies = vec![bytes::Bytes::from_static(
        slocheck::scenario::DEFAULT_BODY.as_bytes(),
    )];
    plan
}

fn closed(c: u32) -> LoadMode {
    LoadMode::Closed {
        concurrency: NonZeroU32::new(c).unwrap(),
        think_time: Duration::ZERO,
    }
}

fn with_ca(mut plan: Plan, ca: &std::path::Path) -> Plan {
    plan.transport.tls.ca_file = Some(ca.to_path_buf());
    plan
}

async fn go(plan: &Plan, url: &reqwest::Url) -> RunRecord {
    run(
        plan,
        url,
        Arc::new(LiveStats::new()),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("load against {url} failed: {e}"))
}

fn ok(r: &RunRecord) -> u64 {
    r.phases.iter().map(|p| p.status_classes[1]).sum()
}

fn sent(r: &RunRecord) -> u64 {
    r.phases.iter().map(|p| p.sent).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_ca_file_verifies_and_reports_connections_and_addresses() {
    let certs = tls_support::certs();
    let target = tls_support::tls_target(&certs.cert, &certs.key).await;
    let url = target.base_url();
    assert_eq!(url.scheme(), "https");
    let rec = go(&with_ca(plan(closed(4), 1.0, 0.0), &certs.ca), &url).await;
    let t = &rec.transport;
    assert!(sent(&rec) > 20, "too few requests: {}", sent(&rec));
    assert_eq!(ok(&rec), sent(&rec), "every request answered 2xx");
    assert!(t.tls && !t.insecure && t.keep_alive, "{t:?}");
    assert_eq!(t.http_version, HttpVersion::Http1);
    // One kept-alive connection per worker; the preflight's is not counted.
    assert_eq!(t.connections_opened, 4, "{t:?}");
    assert_eq!(t.addresses, vec![(target.addr(), sent(&rec))]);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_accepts_an_unverified_certificate_and_says_so() {
    let certs = tls_support::certs();
    let target = tls_support::tls_target(&certs.cert, &certs.key).await;
    let mut p = plan(closed(2), 0.5, 0.0);
    p.transport.tls.insecure = true;
    let rec = go(&p, &target.base_url()).await;
    assert_eq!(ok(&rec), sent(&rec));
    assert!(rec.transport.insecure);
    let line = slocheck::report::TransportReport::of(&rec.transport).describe();
    assert!(
        line.contains("WITHOUT certificate verification (insecure = true)"),
        "{line}"
    );
    target.shutdown().await;
}

/// Same seed, same schedule: the fault plan marks the same requests, the
/// target answers each marked one with the injected status, and every
/// response lands in the HDR histograms, whatever the protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_latency_recording_are_identical_over_h1_h2_and_tls() {
    let certs = tls_support::certs();
    let plain = tls_support::plain_target().await;
    let tls = tls_support::tls_target(&certs.cert, &certs.key).await;
    let mut base = with_ca(plan(LoadMode::Open, 1.0, 200.0), &certs.ca);
    base.phases[0].faults.error = Some(ErrorFault {
        ratio: 0.25,
        status: 503,
    });
    let mut injected = Vec::new();
    for (target, version) in [
        (&plain, HttpVersion::Http1),
        (&plain, HttpVersion::Http2),
        (&tls, HttpVersion::Http1),
        (&tls, HttpVersion::Http2),
    ] {
        let mut p = base.clone();
        p.transport.http_version = version;
        let rec = go(&p, &target.base_url()).await;
        let ph = &rec.phases[0];
        let what = format!("{} over {}", version.as_str(), target.base_url());
        assert_eq!(rec.transport.http_version, version, "{what}");
        assert_eq!(ph.sent, 200, "{what}: the schedule is exact");
        assert_eq!(ph.connection_errors + ph.timeouts, 0, "{what}");
        let s503 = ph
            .statuses
            .iter()
            .find(|(c, _)| *c == 503)
            .map_or(0, |x| x.1);
        assert_eq!(
            s503, ph.injected_errors,
            "{what}: each injected fault answered"
        );
        assert_eq!(ph.status_classes[1] + s503, ph.sent, "{what}");
        assert_eq!(
            ph.latency_corrected.len(),
            ph.sent,
            "{what}: HDR holds every response"
        );
        assert_eq!(ph.latency_service.len(), ph.sent, "{what}");
        injected.push(ph.injected_errors);
    }
    assert!(injected[0] > 20, "{injected:?}");
    assert!(injected.iter().all(|&n| n == injected[0]), "{injected:?}");
    plain.shutdown().await;
    tls.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_false_opens_a_connection_per_request() {
    let certs = tls_support::certs();
    let target = tls_support::tls_target(&certs.cert, &certs.key).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut p = with_ca(plan(closed(2), 0.5, 0.0), &certs.ca);
        p.transport.keep_alive = false;
        p.transport.http_version = version;
        let rec = go(&p, &target.base_url()).await;
        assert!(sent(&rec) > 5, "{}", sent(&rec));
        assert_eq!(ok(&rec), sent(&rec));
        assert!(!rec.transport.keep_alive);
        assert_eq!(
            rec.transport.connections_opened,
            sent(&rec),
            "{version:?}: one TLS handshake per request"
        );
    }
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_multiplexes_many_requests_over_the_configured_connections() {
    let certs = tls_support::certs();
    let target = tls_support::tls_target(&certs.cert, &certs.key).await;
    let mut p = with_ca(plan(closed(16), 1.0, 0.0), &certs.ca);
    p.transport.http_version = HttpVersion::Http2;
    p.transport.connections = NonZeroUsize::new(2);
    let rec = go(&p, &target.base_url()).await;
    assert!(sent(&rec) > 50, "{}", sent(&rec));
    assert_eq!(ok(&rec), sent(&rec));
    assert_eq!(rec.transport.connections_opened, 2, "{:?}", rec.transport);
    // Open loop: max_in_flight still bounds requests in flight (streams).
    let mut open = with_ca(plan(LoadMode::Open, 1.0, 300.0), &certs.ca);
    open.transport.http_version = HttpVersion::Http2;
    open.transport.connections = NonZeroUsize::new(1);
    open.load.max_in_flight = NonZeroUsize::new(64).unwrap();
    let rec = go(&open, &target.base_url()).await;
    assert_eq!(rec.phases[0].sent, 300);
    assert_eq!(ok(&rec), 300);
    assert_eq!(rec.transport.connections_opened, 1);
    target.shutdown().await;
}

/// A dual-stack name: the same port on 127.0.0.1 and ::1 (two built-in
/// targets), plus an address nobody listens on, which the preflight skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resolved_address_receives_requests() {
    let v4 = tls_support::plain_target().await;
    let port = v4.addr().port();
    let v6_addr: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let v6 = TargetHandle::start(TargetConfig {
        listen: v6_addr,
        ..TargetConfig::default()
    })
    .await
    .expect("::1 target starts (IPv6 loopback)");
    let dead: SocketAddr = "127.0.0.3:9".parse().unwrap();
    let url: reqwest::Url = format!("http://localhost:{port}/").parse().unwrap();
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut p = plan(closed(4), 1.0, 0.0);
        p.transport.http_version = version;
        let (target, skipped) = Target::prepare_at(
            &url,
            vec![v4.addr(), v6_addr, dead],
            &p.request,
            &p.transport,
        )
        .await
        .expect("two of three addresses answer");
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].addr, dead);
        assert_eq!(target.addrs, vec![v4.addr(), v6_addr]);
        let rec = run_prepared(
            &p,
            target,
            Arc::new(LiveStats::new()),
            CancellationToken::new(),
        )
        .await
        .expect("load runs");
        assert_eq!(ok(&rec), sent(&rec));
        let per = &rec.transport.addresses;
        assert_eq!(per.len(), 2, "{per:?}");
        assert!(
            per.iter().all(|(_, n)| *n > 0),
            "{version:?}: both used: {per:?}"
        );
        assert_eq!(per.iter().map(|(_, n)| n).sum::<u64>(), sent(&rec));
    }
    v4.shutdown().await;
    v6.shutdown().await;
}

#[test]
fn scenario_keys_resolve_into_the_transport_plan() {
    let certs = tls_support::certs();
    let dir = certs.dir.path();
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        r#"[target]
url = "https://api.example:8443"
http_version = "2"
connections = 3
tls = { ca_file = "ca.pem", client_cert = "cert.pem", client_key = "key.pem", server_name = "inference.internal" }

[prometheus]
rule_files = []

[[phase]]
name = "p"
duration = "1s"
rate = 1
"#,
    )
    .unwrap();
    let plan = slocheck::scenario::load(&file).expect("valid").plan;
    let t = &plan.transport;
    assert_eq!(t.http_version, HttpVersion::Http2);
    assert_eq!(t.connections, NonZeroUsize::new(3));
    assert!(t.keep_alive);
    assert_eq!(t.tls.ca_file.as_deref(), Some(certs.ca.as_path()));
    assert_eq!(t.tls.client_cert.as_deref(), Some(certs.cert.as_path()));
    assert_eq!(t.tls.client_key.as_deref(), Some(certs.key.as_path()));
    assert_eq!(t.tls.server_name.as_deref(), Some("inference.internal"));
    assert!(!t.tls.insecure);
    // Without the keys: HTTP/1.1, keep-alive, system roots.
    std::fs::write(
        &file,
        "[[phase]]\nname = \"p\"\nduration = \"1s\"\nrate = 1\n",
    )
    .unwrap();
    let plan = slocheck::scenario::load(&file).expect("valid").plan;
    assert_eq!(plan.transport, TransportPlan::default());
}

/// `doctor`'s /metrics check of an https target: verified with the CA it is
/// given, a precise hint when the certificate is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_metrics_of_an_https_target() {
    use slocheck::doctor::check::Verdict;
    let certs = tls_support::certs();
    let target = tls_support::tls_target(&certs.cert, &certs.key).await;
    let url = target.base_url();
    let trusted = TlsPlan {
        ca_file: Some(certs.ca.clone()),
        ..TlsPlan::default()
    };
    let (checks, answered) = slocheck::doctor::probe::metrics(&url, None, &trusted).await;
    assert!(answered);
    assert!(
        checks.iter().all(|c| c.verdict == Verdict::Pass),
        "{checks:#?}"
    );
    let (checks, answered) =
        slocheck::doctor::probe::metrics(&url, None, &TlsPlan::default()).await;
    assert!(!answered);
    let hint = checks[0].hint.as_deref().unwrap_or_default();
    assert!(hint.contains("--target-ca-file"), "{checks:#?}");
    assert!(checks[0].detail.contains("UnknownIssuer"), "{checks:#?}");
    target.shutdown().await;
}
