//! `slocheck doctor` on the seed's troubleshooting cases, against real
//! servers on 127.0.0.1 and a real Prometheus: a stopped target (DOWN with
//! the localhost hint), an empty or incomplete /metrics, a rule that fails at
//! evaluation time, and a panel whose metric has no series.

mod common;
mod prom_support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{Sandbox, dump, stdout};
use prom_support::{closed_port, metrics_server, serve};
use slocheck::doctor::{self, DoctorOptions};
use slocheck::prom::{LaunchConfig, ManagedPrometheus, find_binary};
use slocheck::target::{TargetConfig, TargetHandle};
use tokio_util::sync::CancellationToken;

async fn static_metrics(body: &'static str) -> reqwest::Url {
    let addr = serve(Router::new().route("/metrics", get(move || async move { body }))).await;
    prom_support::url(addr)
}

/// Runs the binary (blocking) from a tokio test without stalling the servers.
async fn doctor_cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let sb = Sandbox::new();
        let mut a = vec!["doctor".to_string()];
        a.extend(args);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        sb.run(&refs)
    })
    .await
    .expect("join")
}

/// Doctor against `target` with nothing listening where Prometheus should be.
async fn doctor_without_prometheus(target: &reqwest::Url) -> std::process::Output {
    let dead = format!("http://127.0.0.1:{}/", closed_port());
    doctor_cli(vec![
        "--prometheus-url".into(),
        dead,
        "--target-url".into(),
        target.to_string(),
    ])
    .await
}

#[tokio::test]
async fn empty_metrics_is_diagnosed() {
    let target = static_metrics("").await;
    let o = doctor_without_prometheus(&target).await;
    // The target answered, so this is a failed check (1), not "nothing reachable" (3).
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("FAIL  metrics     {target}metrics is empty")),
        "{out}"
    );
    assert!(
        out.contains("hint: the service registers no metrics"),
        "{out}"
    );
    assert!(out.contains("FAIL  prometheus"), "{out}");
}

#[tokio::test]
async fn missing_family_and_label_are_named() {
    let target = static_metrics(
        "# TYPE http_requests counter\nhttp_requests_total{path=\"/predict\",method=\"POST\"} 4\n",
    )
    .await;
    let o = doctor_without_prometheus(&target).await;
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let out = stdout(&o);
    assert!(
        out.contains("http_requests_total lacks label(s) status"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "metric family http_request_latency_seconds is missing at {target}metrics"
        )),
        "{out}"
    );
}

#[test]
fn nothing_reachable_exits_3_and_bad_arguments_exit_2() {
    let sb = Sandbox::new();
    let dead = format!("http://127.0.0.1:{}/", closed_port());
    let o = sb.run(&["doctor", "--prometheus-url", &dead, "--target-url", &dead]);
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert!(stdout(&o).contains("connection refused"), "{}", dump(&o));

    let o = sb.run(&[
        "doctor",
        "--prometheus-url",
        &dead,
        "--dashboards",
        "/nonexistent-dir",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        common::stderr(&o).contains("cannot read dashboards in /nonexistent-dir"),
        "{}",
        dump(&o)
    );

    let o = sb.run(&["doctor", "--prometheus-url", "ftp://x/"]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
}

/// One Prometheus, three faults: a stopped built-in target among the
/// scrape targets, a rule with a vector-matching conflict, and a dashboard
/// panel over a metric nobody exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_target_rule_error_and_empty_panel() {
    let sb = Sandbox::new();
    let live = metrics_server().await;
    let stopped = TargetHandle::start(TargetConfig::default())
        .await
        .expect("target");
    let stopped_addr = stopped.addr();
    stopped.shutdown().await;

    // Two http_requests_total series on each side: on() matches them all
    // to one group, which Prometheus refuses at evaluation time.
    let rules = sb.write(
        "broken.yml",
        "groups:\n  - name: broken\n    rules:\n      - record: job:conflict:ratio\n        expr: http_requests_total / on() http_requests_total\n",
    );
    let dashboards = sb.path().join("dashboards");
    std::fs::create_dir(&dashboards).expect("mkdir");
    std::fs::write(
        dashboards.join("d.json"),
        r#"{"title": "T", "panels": [
            {"title": "ok", "targets": [{"refId": "A", "expr": "sum(rate(http_requests_total{job=~\"$job\"}[$__rate_interval]))"}]},
            {"title": "ghost", "targets": [{"refId": "A", "expr": "sum(rate(model_ghost_total[$__rate_interval])) / sum(rate(http_requests_total{status=\"999\"}[$__rate_interval]))"}]}
        ]}"#,
    )
    .expect("write dashboard");

    let run_dir = tempfile::tempdir().expect("run dir");
    let cfg = LaunchConfig {
        bin: find_binary(None).expect("prometheus on PATH"),
        run_dir: run_dir.path().to_path_buf(),
        scrape_interval: Duration::from_secs(1),
        evaluation_interval: Duration::from_secs(1),
        job: "doctor-test".into(),
        targets: vec![live.to_string(), stopped_addr.to_string()],
        metrics_path: "/metrics".into(),
        rule_files: vec![rules],
        alertmanagers: vec![],
        extra_jobs: vec![],
        scrape_tls: None,
    };
    let prom = ManagedPrometheus::start(cfg, &CancellationToken::new())
        .await
        .expect("prometheus");
    let opts = DoctorOptions {
        prometheus_url: prom.url().clone(),
        target_url: None,
        dashboards: Some(dashboards),
        job: Some("doctor-test".into()),
        target_tls: Default::default(),
        rate_interval: Duration::from_secs(30),
        preset: None,
    };
    // Wait (bounded) until both targets were scraped and the rule evaluated.
    let started = Instant::now();
    let mut text = String::new();
    let mut code = None;
    while started.elapsed() < Duration::from_secs(40) {
        let d = doctor::diagnose(&opts).await.expect("diagnose");
        text = doctor::check::render(&d.checks);
        if text.contains("is DOWN")
            && text.contains("fails to evaluate")
            && text.contains("PASS  panel       T / ok [A]")
        {
            code = Some(d.exit_code());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    prom.stop().await.expect("stop prometheus");
    assert_eq!(code, Some(1), "doctor never saw all three faults:\n{text}");

    let down =
        format!("FAIL  target      job \"doctor-test\" at http://{stopped_addr}/metrics is DOWN:");
    assert!(text.contains(&down), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(
        text.contains("localhost is the Prometheus container itself"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "PASS  target      job \"doctor-test\" at http://{live}/metrics is up"
        )),
        "{text}"
    );

    assert!(
        text.contains("rule job:conflict:ratio (group broken) fails to evaluate:"),
        "{text}"
    );
    assert!(text.contains("promtool test rules"), "{text}");

    let ghost = text
        .lines()
        .find(|l| l.contains("T / ghost [A]"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(ghost.starts_with("FAIL"), "{ghost}");
    assert!(ghost.contains("no series for model_ghost_total, http_requests_total{status=\"999\"} (metric http_requests_total exists, but not with these labels)"), "{ghost}");
}
