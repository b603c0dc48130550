//! One test per row of the README's exit-code table, through the binary:
//! 0 passed, 1 failed, 2 invalid input, 3 environment, 130 SIGINT, 143
//! SIGTERM — and the rows where two paths must agree (a bad
//! `--prometheus-url` in `run` and `doctor`; failing to write the
//! time-scaled rule copies is the environment, not the input).

mod common;

use std::time::Duration;

use common::{Sandbox, dump, repo, stderr};
use nix::sys::signal::Signal;

fn assert_exit(o: &std::process::Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", dump(o));
    assert!(!stderr(o).contains("panicked"), "{}", dump(o));
}

/// A short run against the built-in target and a managed Prometheus with
/// one error-ratio expectation; `bound` decides whether it can pass.
fn short_run(sb: &Sandbox, bound: &str) -> std::process::Output {
    let scenario = sb.write(
        "short.toml",
        &format!(
            r#"
[prometheus]
rule_files = ["{rules}"]

[load]
rate = 20

[[phase]]
name = "only"
duration = "4s"

[[expect]]
error_ratio = {{ phase = "only", {bound} }}
"#,
            rules = repo().join("rules/recording.yml").display()
        ),
    );
    sb.run(&["run", scenario.to_str().expect("utf-8"), "--quiet"])
}

#[test]
fn slow_exit_0_when_every_expectation_passed() {
    if common::require_tool(&["prometheus"], "ci/setup.sh").is_none() {
        return;
    }
    let sb = Sandbox::new();
    let o = short_run(&sb, "below = 0.5");
    assert_exit(&o, 0);
    sb.assert_clean();
}

#[test]
fn slow_exit_1_when_an_expectation_failed() {
    if common::require_tool(&["prometheus"], "ci/setup.sh").is_none() {
        return;
    }
    let sb = Sandbox::new();
    // No faults are injected: an error ratio above 0.5 cannot happen.
    let o = short_run(&sb, "above = 0.5");
    assert_exit(&o, 1);
    sb.assert_clean();
}

#[test]
fn exit_2_for_an_invalid_scenario_before_anything_starts() {
    let sb = Sandbox::new();
    for cmd in ["check", "run", "load", "demo"] {
        let o = sb.run(&[cmd, "tests/fixtures/bad/negative-duration.toml"]);
        assert_exit(&o, 2);
        assert_eq!(stderr(&o).lines().count(), 1, "{cmd}: {}", dump(&o));
    }
    sb.assert_clean();
}

#[test]
fn exit_2_for_a_prometheus_url_that_is_not_http_in_run_and_doctor_alike() {
    let sb = Sandbox::new();
    let url = "ftp://127.0.0.1:9090/";
    let run = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--prometheus-url",
        url,
    ]);
    let doctor = sb.run(&["doctor", "--prometheus-url", url]);
    for o in [&run, &doctor] {
        assert_exit(o, 2);
        assert_eq!(
            stderr(o),
            "slocheck: error: invalid prometheus URL \"ftp://127.0.0.1:9090/\": not an http(s) URL (hint: use e.g. http://127.0.0.1:9090/)\n",
            "{}",
            dump(o)
        );
    }
    sb.assert_clean();
}

#[test]
fn exit_2_for_a_target_url_that_is_not_http() {
    let sb = Sandbox::new();
    for cmd in ["run", "load"] {
        let o = sb.run(&[
            cmd,
            "tests/fixtures/bad-run/external.toml",
            "--target-url",
            "ftp://127.0.0.1:8080/",
        ]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).starts_with(
                "slocheck: error: target URL ftp://127.0.0.1:8080/ is not an http(s) URL"
            ),
            "{}",
            dump(&o)
        );
    }
    sb.assert_clean();
}

#[test]
fn exit_2_for_a_malformed_command_line() {
    let o = Sandbox::new().run(&["run"]);
    assert_exit(&o, 2);
}

#[test]
fn exit_3_when_the_prometheus_binary_is_missing() {
    let sb = Sandbox::new();
    let o = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--prometheus-bin",
        "/nonexistent/prometheus",
    ]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).starts_with("slocheck: error: prometheus not found: "),
        "{}",
        dump(&o)
    );
    sb.assert_clean();
}

#[test]
fn exit_3_when_the_time_scaled_rule_copies_cannot_be_written() {
    // Two rule files with the same 254-byte name: the second copy gets a
    // numeric prefix, and that name is longer than file systems allow
    // (255 bytes). The rules are fine; writing their copies fails.
    let sb = Sandbox::new();
    let name = format!("{}.yml", "r".repeat(250));
    let mut rules = Vec::new();
    for d in ["a", "b"] {
        let dir = sb.path().join(d);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join(&name);
        std::fs::write(
            &p,
            "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum(up)\n",
        )
        .expect("write rules");
        rules.push(format!("{:?}", p.display().to_string()));
    }
    let scenario = sb.write(
        "scaled.toml",
        &format!(
            "[prometheus]\nrule_files = [{}]\ntime_scale = 2\n\n[load]\nrate = 5\n\n[[phase]]\nname = \"only\"\nduration = \"2s\"\n",
            rules.join(", ")
        ),
    );
    let o = sb.run(&["run", scenario.to_str().expect("utf-8"), "--quiet"]);
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(
        err.starts_with("slocheck: error: cannot write scaled rule file ")
            && err.trim_end().ends_with("File name too long"),
        "{}",
        dump(&o)
    );
    assert_eq!(err.lines().count(), 1, "{}", dump(&o));
    sb.assert_clean();
}

#[test]
fn exit_3_when_the_run_directory_cannot_be_created_with_its_cause_said_once() {
    let sb = Sandbox::new();
    let missing = sb.path().join("no-such-dir");
    let o = sb
        .command()
        .args(["run", "tests/fixtures/bad-run/external.toml", "--quiet"])
        .env("TMPDIR", &missing)
        .output()
        .expect("run slocheck");
    assert_exit(&o, 3);
    let err = stderr(&o);
    let want = format!(
        "slocheck: error: cannot create a run directory in {}: No such file or directory (os error 2)",
        missing.display()
    );
    assert!(err.starts_with(&want), "{}", dump(&o));
    assert_eq!(err.lines().count(), 1, "{}", dump(&o));
    assert_eq!(err.matches("No such file").count(), 1, "{}", dump(&o));
}

/// `slocheck load` against its built-in target, signalled once the load runs.
fn interrupted_load(sig: Signal) -> Option<i32> {
    let sb = Sandbox::new();
    let mut r = sb.spawn(&["load", "scenarios/baseline.toml", "--quiet"]);
    r.wait_for("built-in target serving", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    r.signal(sig);
    let (code, log) = r.finish(Duration::from_secs(10));
    assert!(!log.contains("panicked"), "{log}");
    sb.assert_clean();
    code
}

#[test]
fn exit_130_on_sigint() {
    assert_eq!(interrupted_load(Signal::SIGINT), Some(130));
}

#[test]
fn exit_143_on_sigterm() {
    assert_eq!(interrupted_load(Signal::SIGTERM), Some(143));
}
