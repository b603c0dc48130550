//! The Alertmanager side without Prometheus: the example config and its
//! rewrites pass `amtool check-config`, and a real Alertmanager started by
//! slocheck delivers a posted alert to the webhook recorder, then stops
//! without leaving a process behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{processes_mentioning, repo};
use slocheck::alertmanager::config::{self, RECORDER_RECEIVER};
use slocheck::alertmanager::{AmError, ManagedAlertmanager, Recorder, launcher};
use tokio_util::sync::CancellationToken;

fn amtool_accepts(path: &Path) -> Option<String> {
    let amtool = common::require_tool(&["amtool"], "ci/setup.sh (Debian prometheus-alertmanager)")?;
    let out = Command::new(amtool)
        .arg("check-config")
        .arg(path)
        .output()
        .expect("amtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}:\n{text}", path.display());
    Some(text)
}

const AM_NAMES: [&str; 2] = ["prometheus-alertmanager", "alertmanager"];
const AM_INSTALL: &str = "ci/setup.sh (Debian prometheus-alertmanager)";

fn example() -> PathBuf {
    repo().join("alertmanager/alertmanager.yml")
}

#[test]
fn example_config_and_its_rewrites_pass_amtool() {
    let Some(text) = amtool_accepts(&example()) else {
        return;
    };
    assert!(text.contains("2 receivers"), "{text}");
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = "127.0.0.1:9".parse().expect("addr");
    for (src, live) in [
        (example(), false),
        (example(), true),
        (
            repo().join("tests/fixtures/alertmanager/teams-native.yml"),
            false,
        ),
    ] {
        let yaml = std::fs::read_to_string(&src).expect("read");
        let c = config::rewrite(&yaml, &src, addr, 20.0, live).expect("rewrite");
        let out = dir.path().join("rewritten.yml");
        std::fs::write(&out, &c.yaml).expect("write");
        let checked = amtool_accepts(&out).expect("amtool");
        assert!(checked.contains("receivers"), "{checked}");
        assert!(c.yaml.contains(RECORDER_RECEIVER), "{}", c.yaml);
        // Real integrations stay only when asked for.
        let real = [
            "slack_configs",
            "msteams_configs",
            "http://prometheus-msteams",
        ];
        assert_eq!(real.iter().any(|r| c.yaml.contains(r)), live, "{}", c.yaml);
    }
}

#[test]
fn missing_binary_is_named_with_a_hint() {
    let e =
        launcher::find_binary(Some(Path::new("/nonexistent/alertmanager"))).expect_err("missing");
    assert!(matches!(e, AmError::BinaryNotFound { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/alertmanager (from --alertmanager-bin) does not exist"),
        "{msg}"
    );
    assert!(msg.contains("hint:"), "{msg}");
}

#[tokio::test]
async fn a_real_alertmanager_delivers_to_the_recorder_and_stops_clean() {
    if common::require_tool(&AM_NAMES, AM_INSTALL).is_none() {
        return;
    }
    let bin = launcher::find_binary(None).expect("alertmanager on PATH");
    let run_dir = tempfile::tempdir().expect("tempdir");
    let recorder = Recorder::start().await.expect("recorder");
    let cfg = config::generated(recorder.addr()).expect("config");
    let cancel = CancellationToken::new();
    let am = ManagedAlertmanager::start(&bin, run_dir.path(), &cfg.yaml, &cancel)
        .await
        .expect("alertmanager starts");
    let pid = am.pid();
    let needle = run_dir.path().display().to_string();
    let running = processes_mentioning(&needle);
    let Some((_, cmdline)) = running.iter().find(|(p, _)| *p == pid) else {
        panic!("alertmanager {pid} not among {running:?}");
    };
    assert!(cmdline.contains("--cluster.listen-address= "), "{cmdline}");
    assert!(
        cmdline.contains("--web.listen-address=127.0.0.1:"),
        "{cmdline}"
    );

    let http = reqwest::Client::new();
    let alert =
        serde_json::json!([{ "labels": { "alertname": "SlocheckProbe", "severity": "critical" } }]);
    let resp = http
        .post(format!("{}api/v2/alerts", am.url()))
        .json(&alert)
        .send()
        .await
        .expect("post alert");
    assert!(resp.status().is_success(), "{}", resp.status());
    let started = Instant::now();
    let got = loop {
        let n = recorder.notifications();
        if !n.is_empty() || started.elapsed() > Duration::from_secs(20) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].receiver(), RECORDER_RECEIVER);
    assert_eq!(got[0].payload.status, "firing");
    assert_eq!(
        got[0].payload.alerts[0].labels["alertname"],
        "SlocheckProbe"
    );

    am.stop().await.expect("stop");
    recorder.shutdown().await;
    assert!(processes_mentioning(&needle).is_empty());
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[tokio::test]
async fn a_config_alertmanager_rejects_fails_with_its_log_and_leaves_nothing() {
    if common::require_tool(&AM_NAMES, AM_INSTALL).is_none() {
        return;
    }
    let bin = launcher::find_binary(None).expect("alertmanager on PATH");
    let run_dir = tempfile::tempdir().expect("tempdir");
    let cancel = CancellationToken::new();
    let e = ManagedAlertmanager::start(
        &bin,
        run_dir.path(),
        "route:\n  receiver: nobody\nreceivers: []\n",
        &cancel,
    )
    .await
    .err()
    .expect("alertmanager refuses an undefined receiver");
    let msg = e.to_string();
    assert!(
        msg.contains("alertmanager exited before it was ready"),
        "{msg}"
    );
    assert!(msg.contains("nobody"), "log tail shows the cause: {msg}");
    assert!(processes_mentioning(&run_dir.path().display().to_string()).is_empty());
}
