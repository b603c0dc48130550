//! `slocheck run` with a real Prometheus and a real Alertmanager: the
//! notify scenario proves delivery; a misrouted and a never-firing alert
//! fail with clear reasons; no Alertmanager survives any exit path. The
//! whole-scenario tests take about a minute each, hence `slow_`.

mod common;

use std::time::{Duration, Instant};

use common::replay::{assert_replay, export_args, high_error_rate_mutations};
use common::{Sandbox, dump, expectation, processes_mentioning, read_json, repo, stdout};
use serde_json::Value;

fn run_json(sb: &Sandbox, args: &[&str]) -> (std::process::Output, Value) {
    let json = sb.path().join("report.json");
    let mut all = vec!["run", "--quiet", "--json", json.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    let o = sb.run(&all);
    let r = read_json(&json);
    sb.assert_clean();
    (o, r)
}

#[test]
fn slow_notify_scenario_delivers_firing_and_resolved() {
    let sb = Sandbox::new();
    let [flag, dir] = export_args(&sb);
    let (o, r) = run_json(&sb, &["scenarios/error-spike-notify.toml", &flag, &dir]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let n = expectation(&r, "oncall-paged");
    assert_eq!(n["kind"], "notified");
    assert_eq!(n["verdict"], "pass", "{n}");
    let observed = n["observed"].as_str().expect("observed");
    assert!(
        observed.contains("firing delivered to \"oncall-critical\"")
            && observed.contains("resolved delivered"),
        "{observed}"
    );
    let evidence: Vec<&str> = n["client"]
        .as_array()
        .expect("client")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        evidence.iter().any(|l| l.contains("resolved notification for HighErrorRate{severity=\"critical\"} at receiver \"oncall-critical\"")),
        "{evidence:?}"
    );
    assert!(stdout(&o).contains("oncall-paged"), "{}", dump(&o));
    // Deliveries need an Alertmanager promtool does not have: the replay
    // checks the rule side (HighErrorRate's lifecycle) of the same run.
    assert_replay(&sb, &high_error_rate_mutations());
}

#[test]
fn slow_misrouted_and_never_firing_alerts_fail_clearly() {
    let sb = Sandbox::new();
    let fixture = repo().join("tests/fixtures/alertmanager/critical-elsewhere.yml");
    let scenario = sb.scenario_copy(
        "error-spike-notify.toml",
        None,
        &[
            (
                "config = \"../alertmanager/alertmanager.yml\"",
                &format!("config = {:?}", fixture.display().to_string()),
            ),
            (
                "name = \"recovery\"\nduration = \"20s\"",
                "name = \"recovery\"\nduration = \"5s\"",
            ),
            ("settle = \"15s\"", "settle = \"4s\""),
            (
                "resolved_within = \"15s\"\n",
                "\n[[expect]]\nname = \"latency-paged\"\nnotified = \"HighLatencyP90\"\n",
            ),
        ],
    );
    let (o, r) = run_json(&sb, &[scenario.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let misrouted = expectation(&r, "oncall-paged");
    assert_eq!(misrouted["verdict"], "fail", "{misrouted}");
    let reason = misrouted["reason"].as_str().expect("reason");
    assert!(
        reason.contains("its firing notification went only to \"team-slack\""),
        "{reason}"
    );
    let silent = expectation(&r, "latency-paged");
    assert_eq!(silent["verdict"], "fail", "{silent}");
    assert!(
        silent["reason"]
            .as_str()
            .is_some_and(|s| s.contains("HighLatencyP90 never fired")),
        "{silent}"
    );
}

#[test]
fn missing_alertmanager_binary_is_an_environment_error_and_leaves_nothing() {
    let sb = Sandbox::new();
    let o = sb.run(&[
        "run",
        "scenarios/baseline.toml",
        "--quiet",
        "--alertmanager",
        "--alertmanager-bin",
        "/nonexistent/alertmanager",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert!(
        common::stderr(&o).contains("alertmanager not found: /nonexistent/alertmanager"),
        "{}",
        dump(&o)
    );
    sb.assert_clean();
}

#[test]
fn slow_interrupted_run_stops_alertmanager() {
    if common::require_tool(
        &["prometheus-alertmanager", "alertmanager"],
        "ci/setup.sh (Debian prometheus-alertmanager)",
    )
    .is_none()
    {
        return;
    }
    let sb = Sandbox::new();
    let mut child = sb
        .command()
        .args([
            "run",
            "scenarios/baseline.toml",
            "--quiet",
            "--alertmanager",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn slocheck");
    let needle = sb.tmp().display().to_string();
    let started = Instant::now();
    // Wait until both Alertmanager and Prometheus run, i.e. mid-run.
    let seen = loop {
        let procs = processes_mentioning(&needle);
        let am = procs.iter().any(|(_, c)| c.contains("alertmanager.yml"));
        let prom = procs.iter().any(|(_, c)| c.contains("prometheus.yml"));
        if (am && prom) || started.elapsed() > Duration::from_secs(40) {
            break am && prom;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal slocheck");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(seen, "alertmanager and prometheus never both ran");
    assert_eq!(status.and_then(|s| s.code()), Some(130));
    sb.assert_clean();
}

#[test]
fn invalid_user_config_is_rejected_before_anything_starts() {
    let sb = Sandbox::new();
    let bad = sb.write("alertmanager.yml", "receivers: []\n");
    let scenario = sb.scenario_copy(
        "error-spike-notify.toml",
        None,
        &[(
            "config = \"../alertmanager/alertmanager.yml\"",
            &format!("config = {:?}", bad.display().to_string()),
        )],
    );
    let o = sb.run(&["run", scenario.to_str().expect("utf-8"), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        common::stderr(&o).contains("alertmanager.yml: has no route mapping"),
        "{}",
        dump(&o)
    );
    sb.assert_clean();
}
