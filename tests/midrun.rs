//! Faults in the middle of a run: the target dies during a phase, the
//! managed Prometheus dies during the load. The run must end on schedule
//! or at once, say what happened, keep what it measured, and exit with the
//! documented code.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Running, Sandbox, read_json, repo};
use nix::sys::signal::Signal;

/// `slocheck run SCENARIO --quiet --json <sandbox>/report.json`, running.
fn spawn_run(sb: &Sandbox, scenario: &Path) -> (Running, PathBuf) {
    let json = sb.path().join("report.json");
    let run = sb.spawn(&[
        "run",
        scenario.to_str().expect("utf-8"),
        "--quiet",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    (run, json)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_listening(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("target on port {port} never listened");
}

#[test]
fn slow_target_killed_mid_run_makes_its_phase_inconclusive() {
    let sb = Sandbox::new();
    let port = free_port();
    let mut target = sb
        .command()
        .args(["target", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn target");
    wait_listening(port);
    let scenario = sb.write(
        "target-dies.toml",
        &format!(
            r#"
[target]
url = "http://127.0.0.1:{port}"
request = {{ body_file = "{data}" }}
timeout = "1s"

[prometheus]
rule_files = ["{rules}"]
time_scale = 20

[load]
rate = 100

[[phase]]
name = "before"
duration = "6s"

[[phase]]
name = "after"
duration = "8s"

[[expect]]
latency_quantile = 0.9
phase = "after"
below = "250ms"

[[expect]]
error_ratio = {{ phase = "after", below = 0.5 }}

[[expect]]
alert = "HighErrorRate"
silent_during = ["after"]
"#,
            data = repo().join("scenarios/data/iris.jsonl").display(),
            rules = repo().join("rules/alerts.yml").display(),
        ),
    );
    let (mut run, json) = spawn_run(&sb, &scenario);
    run.wait_for("load started", Duration::from_secs(60));
    let load_start = Instant::now();
    std::thread::sleep(Duration::from_millis(5_000));
    target.kill().expect("kill target");
    target.wait().expect("reap target");
    let (code, log) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{log}");

    let r = read_json(&json);
    let after = &r["phases"][1];
    assert_eq!(after["name"], "after");
    assert!(
        after["connection_errors"].as_u64().expect("count") > 100,
        "{after}"
    );
    // The run kept its schedule: the phase lasted what it should.
    let secs = after["duration_seconds"].as_f64().expect("secs");
    assert!((secs - 8.0).abs() < 0.5, "phase lasted {secs}s");
    assert!(load_start.elapsed() < Duration::from_secs(40));
    for e in r["expectations"].as_array().expect("expectations") {
        assert_eq!(e["verdict"], "inconclusive", "{e}");
        assert!(!e["reason"].as_str().unwrap_or("").is_empty(), "{e}");
    }
    sb.assert_clean();
}

#[test]
fn slow_prometheus_dying_mid_run_exits_3_and_still_reports() {
    let sb = Sandbox::new();
    let scenario = sb.scenario_copy("baseline.toml", None, &[]);
    let (mut run, json) = spawn_run(&sb, &scenario);
    let ready = run.wait_for("slocheck: prometheus ", Duration::from_secs(60));
    let pid: i32 = ready
        .split_whitespace()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {ready:?}"));
    run.wait_for("load started", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL)
        .expect("kill prometheus");
    let killed = Instant::now();
    let (code, log) = run.finish(Duration::from_secs(30));
    assert_eq!(code, Some(3), "{log}");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "took {:?} to notice",
        killed.elapsed()
    );
    assert!(
        log.contains(
            "slocheck: error: managed prometheus exited (killed by signal 9) during the run"
        ),
        "{log}"
    );
    let r = read_json(&json);
    assert_eq!(r["status"], "error");
    assert_eq!(r["exit_code"], 3);
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("prometheus")),
        "{}",
        r["error"]
    );
    assert!(
        r["phases"][0]["sent"].as_u64().expect("sent") > 0,
        "partial record kept"
    );
    sb.assert_clean();
}
