//! SIGINT / SIGTERM at each stage of `run`: the load stops within a second,
//! children are stopped and reaped, the run directory is removed (or kept
//! with --keep-run-dir), a partial report marked "aborted" is written, and
//! the exit code is 130 (143 for SIGTERM). A second Ctrl-C exits at once.

mod common;

use std::time::{Duration, SystemTime};

use common::{Sandbox, read_json};
use nix::sys::signal::Signal;

const LONG: Duration = Duration::from_secs(60);

/// baseline.toml with a long steady phase, so every stage can be reached.
fn scenario(sb: &Sandbox, steady: &str) -> String {
    let p = sb.scenario_copy(
        "baseline.toml",
        None,
        &[("duration = \"30s\"", &format!("duration = \"{steady}\""))],
    );
    p.to_str().expect("utf-8").to_string()
}

/// Starts a run, waits for `stage` on stderr, sends `sig`, and checks the
/// exit code, the report and that nothing is left behind.
fn interrupt_at(stage: &str, sig: Signal, keep: bool) -> serde_json::Value {
    let sb = Sandbox::new();
    let sc = scenario(&sb, "40s");
    let json = sb.path().join("report.json");
    let mut args = vec![
        "run",
        &sc,
        "--quiet",
        "--json",
        json.to_str().expect("utf-8"),
    ];
    if keep {
        args.push("--keep-run-dir");
    }
    let mut r = sb.spawn(&args);
    r.wait_for(stage, LONG);
    if stage.contains("load started") {
        std::thread::sleep(Duration::from_secs(2));
    }
    let sent = SystemTime::now();
    r.signal(sig);
    let (code, log) = r.finish(Duration::from_secs(20));
    let want = if sig == Signal::SIGTERM { 143 } else { 130 };
    assert_eq!(code, Some(want), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let report = read_json(&json);
    assert_eq!(report["status"], "aborted", "{report}");
    assert_eq!(report["exit_code"], want);
    if keep {
        let kept: Vec<_> = std::fs::read_dir(sb.tmp())
            .expect("tmp")
            .filter_map(Result::ok)
            .collect();
        assert_eq!(kept.len(), 1, "exactly the kept run directory: {log}");
        assert!(kept[0].path().join("prometheus.yml").exists(), "{log}");
        assert!(log.contains("run directory kept at"), "{log}");
        let procs = common::processes_mentioning(&sb.tmp().display().to_string());
        assert!(procs.is_empty(), "{procs:?}");
    } else {
        sb.assert_clean();
    }
    // When the load ran, it stopped within a second of the signal.
    if let Some(end) = report["ended_at"].as_str() {
        let end = humantime::parse_rfc3339(end).expect("rfc3339");
        let lag = end.duration_since(sent).unwrap_or_default();
        assert!(
            lag < Duration::from_secs(1),
            "load ended {lag:?} after the signal"
        );
        assert!(report["phases"].as_array().is_some_and(|p| !p.is_empty()));
    }
    report
}

#[test]
fn slow_sigint_while_prometheus_starts() {
    interrupt_at("slocheck: starting ", Signal::SIGINT, false);
}

#[test]
fn slow_sigterm_while_waiting_for_the_first_scrape() {
    interrupt_at("waiting for its first scrape", Signal::SIGTERM, false);
}

#[test]
fn slow_sigint_during_load_writes_a_partial_report() {
    let r = interrupt_at("load started", Signal::SIGINT, false);
    let sent = r["phases"][0]["sent"].as_u64().expect("sent");
    assert!(
        sent > 100,
        "the partial record has the requests sent so far: {sent}"
    );
}

#[test]
fn slow_sigterm_during_load_keeps_the_run_dir_when_asked() {
    interrupt_at("load started", Signal::SIGTERM, true);
}

#[test]
fn slow_sigint_while_settling_before_verification() {
    let sb = Sandbox::new();
    let sc = scenario(&sb, "3s");
    let json = sb.path().join("report.json");
    let mut r = sb.spawn(&[
        "run",
        &sc,
        "--quiet",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    r.wait_for("settling", LONG);
    r.signal(Signal::SIGINT);
    let (code, log) = r.finish(Duration::from_secs(20));
    assert_eq!(code, Some(130), "{log}");
    assert_eq!(read_json(&json)["status"], "aborted");
    sb.assert_clean();
}

#[test]
fn slow_second_sigint_exits_at_once_and_prometheus_still_dies() {
    let sb = Sandbox::new();
    let sc = scenario(&sb, "40s");
    let mut r = sb.spawn(&["run", &sc, "--quiet"]);
    r.wait_for("load started", LONG);
    r.signal(Signal::SIGINT);
    r.signal(Signal::SIGINT);
    let (code, log) = r.finish(Duration::from_secs(5));
    assert_eq!(code, Some(130), "{log}");
    // Prometheus dies with its parent (parent-death signal), a moment later.
    let needle = sb.tmp().display().to_string();
    for _ in 0..50 {
        if common::processes_mentioning(&needle).is_empty() {
            sb.assert_clean();
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("left running: {:?}", common::processes_mentioning(&needle));
}

/// A FIFO nobody writes to, given as the scenario: opening it blocks. The
/// first signal must still end slocheck, for every command that reads one.
#[test]
fn a_fifo_scenario_that_never_opens_ends_on_the_first_signal() {
    let sb = Sandbox::new();
    let fifo = sb.path().join("scenario.toml");
    common::mkfifo(&fifo);
    let fifo = fifo.to_str().expect("utf-8");
    for (cmd, sig, want) in [
        ("check", Signal::SIGINT, 130),
        ("run", Signal::SIGTERM, 143),
        ("load", Signal::SIGINT, 130),
        ("demo", Signal::SIGTERM, 143),
    ] {
        let r = sb.spawn(&[cmd, fifo]);
        // Nothing to wait for on stderr: it is blocked before printing.
        std::thread::sleep(Duration::from_millis(500));
        let sent = std::time::Instant::now();
        r.signal(sig);
        let (code, log) = r.finish(Duration::from_secs(10));
        assert_eq!(code, Some(want), "{cmd}: {log}");
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{cmd} took {:?} to exit",
            sent.elapsed()
        );
        assert!(!log.contains("panicked"), "{cmd}: {log}");
    }
    sb.assert_clean();
}

/// A FIFO that is written to is read like a file (`slocheck check <(…)`).
#[test]
fn a_fifo_scenario_that_is_written_is_read() {
    let sb = Sandbox::new();
    let fifo = sb.path().join("scenario.toml");
    common::mkfifo(&fifo);
    // Default rule files resolve against the scenario's folder: none here.
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/good/minimal.toml"))
        .expect("fixture")
        + "\n[prometheus]\nrule_files = []\n";
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, text).expect("write fifo"))
    };
    let o = sb.run(&["check", fifo.to_str().expect("utf-8")]);
    writer.join().expect("writer");
    assert_eq!(o.status.code(), Some(0), "{}", common::dump(&o));
    assert!(common::stdout(&o).contains("only"), "{}", common::dump(&o));
}
