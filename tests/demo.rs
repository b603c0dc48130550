//! `slocheck demo`: starts the target and a managed Prometheus that scrapes
//! it under looping load, prints the URLs, and on SIGINT stops everything it
//! started.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Sandbox;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_demo_is_scraped_and_sigint_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let mut child = sb
        .command()
        .args(["demo", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn slocheck demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut seen = Vec::new();
    let mut prom = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while prom.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(u) = line.strip_prefix("prometheus: ") {
                prom = Some(reqwest::Url::parse(u).expect("printed URL"));
            }
            seen.push(line);
        }
    }
    let Some(prom) = prom else {
        let _ = child.kill();
        panic!("no Prometheus URL printed within 40 s: {seen:?}");
    };
    assert!(
        seen.iter()
            .any(|l| l.starts_with("target metrics: http://127.0.0.1:")),
        "{seen:?}"
    );

    // Prometheus scrapes the demo target, and the looping load reaches it.
    let http = reqwest::Client::new();
    let query = prom.join("api/v1/query").expect("url");
    let started = Instant::now();
    let mut last = String::new();
    let mut scraped = false;
    while started.elapsed() < Duration::from_secs(30) {
        let expr = "sum(up{job=\"slocheck-target\"}) * sum(http_requests_total{path=\"/predict\",status=\"200\"} > 0)";
        let url = reqwest::Url::parse_with_params(query.as_str(), &[("query", expr)]).expect("url");
        if let Ok(r) = http.get(url).send().await {
            last = r.text().await.unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
            if v["data"]["result"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                scraped = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !scraped {
        let _ = child.kill();
        panic!("prometheus never saw the target up with traffic: {last}");
    }

    // Alertmanager is installed (ci/setup.sh): the demo starts it and
    // Prometheus sends alerts to it.
    let ams: serde_json::Value = http
        .get(prom.join("api/v1/alertmanagers").expect("url"))
        .send()
        .await
        .expect("alertmanagers")
        .json()
        .await
        .expect("json");
    assert!(
        ams["data"]["activeAlertmanagers"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{ams}"
    );

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if stopped.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("demo did not exit within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    sb.assert_clean();
}

/// A second Ctrl-C exits at once; the run directory is removed all the
/// same and every child (Prometheus, Alertmanager) dies with slocheck.
#[test]
fn slow_second_sigint_in_demo_leaves_nothing_behind() {
    if common::require_tool(&["prometheus"], "ci/setup.sh").is_none() {
        return;
    }
    let sb = Sandbox::new();
    let mut r = sb.spawn(&["demo", "--quiet"]);
    r.wait_for("waiting for its first scrape", Duration::from_secs(60));
    let runs: Vec<_> = std::fs::read_dir(sb.tmp())
        .expect("tmp")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("slocheck-run-"))
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "the demo's run directory exists while it runs"
    );
    // Let Prometheus write its TSDB into the run directory.
    std::thread::sleep(Duration::from_secs(2));

    r.signal(Signal::SIGINT);
    r.wait_for("interrupted, stopping", Duration::from_secs(5));
    // The graceful stop (Prometheus gets SIGTERM and a grace period) is
    // still under way: this one forces the exit.
    r.signal(Signal::SIGINT);
    let (code, log) = r.finish(Duration::from_secs(5));
    assert_eq!(code, Some(130), "{log}");
    assert!(log.contains("second interrupt, exiting now"), "{log}");
    // Children die with their parent (killed first on a forced exit).
    let needle = sb.tmp().display().to_string();
    for _ in 0..50 {
        if common::processes_mentioning(&needle).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sb.assert_clean();
}
