//! A real managed Prometheus: start it scraping a hand-written /metrics
//! server, query it, load the time-scaled shipped rules, stop it (or drop
//! it) and prove no process is left behind.

mod prom_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use prom_support::metrics_server;
use slocheck::prom::{
    LaunchConfig, ManagedPrometheus, PromError, RuleKind, find_binary, preflight, write_scaled,
};
use tokio_util::sync::CancellationToken;

fn shipped_rules() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    vec![root.join("recording.yml"), root.join("alerts.yml")]
}

fn config(bin: PathBuf, run_dir: &Path, target: String, rule_files: Vec<PathBuf>) -> LaunchConfig {
    LaunchConfig {
        bin,
        run_dir: run_dir.to_path_buf(),
        scrape_interval: Duration::from_secs(1),
        evaluation_interval: Duration::from_secs(1),
        job: "slocheck-target".into(),
        targets: vec![target],
        metrics_path: "/metrics".into(),
        rule_files,
        alertmanagers: vec![],
        extra_jobs: vec![],
        scrape_tls: None,
    }
}

/// These tests need the real thing; CI installs it with ci/setup.sh.
fn prometheus() -> PathBuf {
    find_binary(None).unwrap_or_else(|e| panic!("these tests need Prometheus >= 2.42: {e}"))
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test]
async fn slow_managed_prometheus_scrapes_queries_loads_scaled_rules_and_stops() {
    let bin = prometheus();
    let target = metrics_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let scaled =
        write_scaled(&shipped_rules(), 20.0, &dir.path().join("rules")).expect("scaled rules");
    let files = scaled.iter().map(|f| f.scaled.clone()).collect();
    let cancel = CancellationToken::new();
    let mut prom =
        ManagedPrometheus::start(config(bin, dir.path(), target.to_string(), files), &cancel)
            .await
            .expect("prometheus starts");
    let pid = prom.pid();
    assert!(process_exists(pid));
    assert_eq!(prom.url().host_str(), Some("127.0.0.1"));
    let client = prom.client();

    client.ready().await.expect("ready");
    let version = client.build_version().await.expect("buildinfo");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("numeric major version");
    assert!(major >= 2, "{version}");
    client
        .wait_target_up("slocheck-target", Duration::from_secs(30), &cancel)
        .await
        .expect("target up");
    preflight(
        &client,
        "slocheck-target",
        &[
            "HighErrorRate".into(),
            "job:http_request_duration_seconds:p90".into(),
        ],
    )
    .await
    .expect("preflight passes");
    let err = preflight(&client, "slocheck-target", &["NoSuchAlert".into()])
        .await
        .expect_err("missing rule");
    assert!(
        err.to_string().contains("rules not loaded: NoSuchAlert"),
        "{err}"
    );

    let up = client
        .query(r#"up{job="slocheck-target"}"#, SystemTime::now())
        .await
        .expect("query up");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, 1.0);
    assert_eq!(
        up[0].labels.get("instance").map(String::as_str),
        Some(target.to_string().as_str())
    );

    let scalar = client
        .query("scalar(vector(2))", SystemTime::now())
        .await
        .expect("scalar");
    assert_eq!(scalar.len(), 1);
    assert!(scalar[0].labels.is_empty());
    assert_eq!(scalar[0].value, 2.0);

    // Let a few scrapes land, then read them back as a range.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = SystemTime::now();
    let series = client
        .query_range(
            r#"http_requests_total{status="503"}"#,
            end - Duration::from_secs(10),
            end,
            Duration::from_secs(1),
        )
        .await
        .expect("range query");
    assert_eq!(series.len(), 1);
    let points = &series[0].points;
    assert!(points.len() >= 2, "{points:?}");
    assert!(
        points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{points:?}"
    );

    let err = client
        .query("sum(", SystemTime::now())
        .await
        .expect_err("bad PromQL");
    assert!(
        matches!(&err, PromError::Query { error_type, .. } if error_type == "bad_data"),
        "{err:?}"
    );

    let targets = client.targets().await.expect("targets");
    assert!(
        targets
            .iter()
            .any(|t| t.job == "slocheck-target" && t.health == "up"),
        "{targets:?}"
    );

    let rules = client.rules().await.expect("rules");
    let high = rules
        .iter()
        .find(|r| r.name == "HighErrorRate")
        .expect("HighErrorRate loaded");
    assert_eq!(high.kind, RuleKind::Alerting);
    assert_eq!(high.group, "mlops-alerts");
    assert_eq!(
        high.duration,
        Duration::from_secs(15),
        "for: 5m scaled by 20"
    );
    assert!(high.query.contains("[15s]"), "{}", high.query);
    assert!(rules.iter().any(
        |r| r.name == "job:http_request_duration_seconds:p90" && r.kind == RuleKind::Recording
    ));

    // 10% of the fake's requests are 503: the scaled alert goes pending within
    // a few evaluations (bounded wait, not a speed check).
    let mut seen = None;
    for _ in 0..40 {
        let alerts = client.alerts().await.expect("alerts");
        if let Some(a) = alerts.into_iter().find(|a| a.name == "HighErrorRate") {
            seen = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let alert = seen.expect("HighErrorRate becomes active at a 10% error ratio");
    assert!(
        alert.state == "pending" || alert.state == "firing",
        "{alert:?}"
    );
    assert!(alert.active_at.is_some(), "{alert:?}");
    assert!((alert.value - 0.1).abs() < 0.02, "{alert:?}");
    assert!(
        client
            .alertmanagers()
            .await
            .expect("alertmanagers")
            .is_empty()
    );

    prom.check_alive().expect("alive");
    assert!(
        prom.log_tail(5).contains("Server is ready"),
        "{}",
        prom.log_tail(5)
    );
    prom.stop().await.expect("stops");
    assert!(!process_exists(pid), "pid {pid} still exists after stop");
}

#[tokio::test]
async fn slow_dropping_without_stop_leaves_no_process() {
    let bin = prometheus();
    let target = metrics_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = ManagedPrometheus::start(
        config(bin, dir.path(), target.to_string(), vec![]),
        &CancellationToken::new(),
    )
    .await
    .expect("prometheus starts");
    let pid = prom.pid();
    assert!(process_exists(pid));
    drop(prom);
    assert!(!process_exists(pid), "pid {pid} still exists after drop");
}

#[tokio::test]
async fn slow_down_target_is_reported_with_its_scrape_error() {
    let bin = prometheus();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = prom_support::closed_port();
    let prom = ManagedPrometheus::start(
        config(
            bin,
            dir.path(),
            format!("127.0.0.1:{port}"),
            shipped_rules(),
        ),
        &CancellationToken::new(),
    )
    .await
    .expect("prometheus starts");
    let client = prom.client();
    let err = client
        // Prometheus 2.42 applies static targets ~5 s after start.
        .wait_target_up(
            "slocheck-target",
            Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await
        .expect_err("nothing listens on the target port");
    let text = err.to_string();
    assert!(matches!(err, PromError::TargetNotUp { .. }), "{err:?}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/metrics is down")),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");

    let err = preflight(&client, "slocheck-target", &["HighErrorRate".into()])
        .await
        .expect_err("target down");
    assert!(
        err.to_string()
            .contains("target \"slocheck-target\" is not up"),
        "{err}"
    );
    let err = preflight(&client, "other-job", &[])
        .await
        .expect_err("unknown job");
    assert!(
        err.to_string()
            .contains("no active target matches \"other-job\""),
        "{err}"
    );
    prom.stop().await.expect("stops");
}

#[tokio::test]
async fn death_mid_run_is_reported_with_the_log() {
    let bin = prometheus();
    let target = metrics_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut prom = ManagedPrometheus::start(
        config(bin, dir.path(), target.to_string(), vec![]),
        &CancellationToken::new(),
    )
    .await
    .expect("prometheus starts");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(prom.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill our own child");
    let mut result = Ok(());
    for _ in 0..100 {
        result = prom.check_alive();
        if result.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = result.expect_err("death noticed");
    assert!(
        err.to_string()
            .starts_with("managed prometheus exited (killed by signal 9) during the run"),
        "{err}"
    );
    prom.stop().await.expect("stop after death is fine");
}

#[tokio::test]
async fn child_exiting_at_start_reports_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = script(
        dir.path(),
        "prometheus",
        "echo 'err=\"boom: bad flag\"' >&2\nexit 1",
    );
    let err = ManagedPrometheus::start(
        config(bin, &dir.path().join("run"), "127.0.0.1:1".into(), vec![]),
        &CancellationToken::new(),
    )
    .await
    .expect_err("exits at once");
    let text = err.to_string();
    assert!(
        text.starts_with("managed prometheus exited (exit code 1) before it was ready"),
        "{text}"
    );
    assert!(text.contains("boom: bad flag"), "{text}");
}

#[tokio::test]
async fn cancel_during_start_stops_the_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Never becomes ready: sleeps, so only cancellation ends the wait.
    let pid_file = dir.path().join("pid");
    let bin = script(
        dir.path(),
        "prometheus",
        &format!("echo $$ > {}\nexec sleep 60", pid_file.display()),
    );
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let err = ManagedPrometheus::start(
        config(bin, &dir.path().join("run"), "127.0.0.1:1".into(), vec![]),
        &cancel,
    )
    .await
    .expect_err("cancelled");
    assert!(matches!(err, PromError::Cancelled(_)), "{err:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("script ran")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        !process_exists(pid),
        "cancelled child {pid} was left running"
    );
}

#[test]
fn missing_binary_is_a_clear_error() {
    let err = find_binary(Some(Path::new("/nonexistent/prometheus"))).expect_err("missing");
    assert!(matches!(err, PromError::BinaryNotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/prometheus (from --prometheus-bin) does not exist"),
        "{text}"
    );
    assert!(text.contains("hint: run ci/setup.sh"), "{text}");
}

#[test]
fn too_old_and_unparsable_binaries_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = script(
        dir.path(),
        "old-prometheus",
        "echo 'prometheus, version 2.30.0 (branch: HEAD, revision: x)'",
    );
    let err = find_binary(Some(&old)).expect_err("too old");
    assert!(matches!(err, PromError::BinaryTooOld { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("is prometheus 2.30.0, but slocheck needs >= 2.42.0"),
        "{err}"
    );

    let odd = script(dir.path(), "odd-prometheus", "echo 'hello world'");
    let err = find_binary(Some(&odd)).expect_err("unparsable");
    assert!(matches!(err, PromError::BinaryVersion { .. }), "{err:?}");
    assert!(err.to_string().contains("hello world"), "{err}");

    let new = script(
        dir.path(),
        "new-prometheus",
        "echo 'prometheus, version 3.2.1 (branch: HEAD)' >&2",
    );
    assert_eq!(find_binary(Some(&new)).expect("new enough"), new);
}
