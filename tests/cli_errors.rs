//! The bad-input catalogue, through the real binary: each entry gets its
//! exact one-line message (snapshot), its documented exit code, and no panic.
//! Scenario-level entries are the files in tests/fixtures/bad (their messages
//! are also snapshot-tested at the library level in scenario_bad.rs); the
//! run-level and environment entries are set up here.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Sandbox, dump, repo, stderr};

/// stderr with the machine-specific parts (checkout path, ports) replaced.
fn normalized(o: &std::process::Output, ports: &[u16]) -> String {
    let mut s = stderr(o).replace(&repo().display().to_string(), "<repo>");
    for p in ports {
        s = s.replace(&p.to_string(), "<port>");
    }
    s
}

fn assert_clean_exit(o: &std::process::Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", dump(o));
    assert!(!stderr(o).contains("panicked"), "{}", dump(o));
}

#[test]
fn every_bad_scenario_exits_2_with_the_library_message() {
    let sb = Sandbox::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("tests/fixtures/bad"))
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 16);
    for path in files {
        let rel = path.strip_prefix(repo()).expect("inside the repo");
        let expected = match slocheck::scenario::load(rel) {
            Ok(_) => panic!("{} must be rejected", rel.display()),
            Err(e) => e.to_string(),
        };
        for cmd in ["check", "run", "load"] {
            let o = sb.run(&[cmd, rel.to_str().expect("utf-8")]);
            assert_clean_exit(&o, 2);
            let want: String = expected
                .lines()
                .map(|l| format!("slocheck: error: {l}\n"))
                .collect();
            // Multi-problem files print one line per problem after the first.
            let got = stderr(&o);
            assert!(
                got == want || got == format!("slocheck: error: {expected}\n"),
                "{cmd} {}:\n got: {got}\nwant: {want}",
                rel.display()
            );
        }
    }
}

fn run_level(name: &str, code: i32, args: &[&str]) {
    let sb = Sandbox::new();
    let o = sb.run(args);
    assert_clean_exit(&o, code);
    insta::assert_snapshot!(name, normalized(&o, &[]));
    sb.assert_clean();
}

#[test]
fn unknown_alert_in_an_expectation() {
    run_level(
        "unknown_alert",
        2,
        &["run", "tests/fixtures/bad-run/unknown-alert.toml"],
    );
}

#[test]
fn invalid_promql_in_a_rule_file() {
    run_level(
        "rule_invalid_promql",
        2,
        &["run", "tests/fixtures/bad-run/rule-invalid-promql.toml"],
    );
}

#[test]
fn missing_rule_file() {
    run_level(
        "rule_file_missing",
        2,
        &["run", "tests/fixtures/bad-run/rule-file-missing.toml"],
    );
}

#[test]
fn time_scale_that_shrinks_a_window_below_two_scrapes() {
    run_level(
        "time_scale_too_large",
        2,
        &["run", "tests/fixtures/bad-run/time-scale-too-large.toml"],
    );
}

#[test]
fn time_scale_with_an_external_prometheus() {
    run_level(
        "time_scale_external",
        2,
        &[
            "run",
            "scenarios/error-spike.toml",
            "--prometheus-url",
            "http://127.0.0.1:9/",
        ],
    );
}

#[test]
fn malformed_prometheus_url() {
    let sb = Sandbox::new();
    let o = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--prometheus-url",
        "http//nowhere",
    ]);
    assert_clean_exit(&o, 2);
    assert!(
        stderr(&o).contains("invalid value 'http//nowhere' for '--prometheus-url <URL>'"),
        "{}",
        dump(&o)
    );
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn unreachable_target_url() {
    let sb = Sandbox::new();
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let o = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--target-url",
        &url,
    ]);
    assert_clean_exit(&o, 3);
    insta::assert_snapshot!("unreachable_target", normalized(&o, &[port]));
    sb.assert_clean();
}

/// A loopback HTTP server answering every request with `reply` after
/// `delay`; lives until the test process ends.
fn fake_server(reply: &'static str, delay: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming().take(64) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                std::thread::sleep(delay);
                let _ = c.write_all(reply.as_bytes());
            });
        }
    });
    port
}

const HTML: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 27\r\nconnection: close\r\n\r\n<html>a web server</html>\r\n";

#[test]
fn prometheus_url_that_is_not_prometheus() {
    let sb = Sandbox::new();
    let port = fake_server(HTML, Duration::ZERO);
    let url = format!("http://127.0.0.1:{port}/");
    let o = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--prometheus-url",
        &url,
    ]);
    assert_clean_exit(&o, 3);
    insta::assert_snapshot!("not_prometheus", normalized(&o, &[port]));
    sb.assert_clean();
}

#[test]
fn slow_prometheus_times_out_with_retries_instead_of_hanging() {
    let sb = Sandbox::new();
    let port = fake_server(HTML, Duration::from_secs(30));
    let url = format!("http://127.0.0.1:{port}/");
    let t0 = Instant::now();
    let o = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--prometheus-url",
        &url,
        "--prometheus-timeout",
        "1s",
    ]);
    assert_clean_exit(&o, 3);
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "took {:?}",
        t0.elapsed()
    );
    // The elapsed time in the message varies; the rest is fixed.
    let err = normalized(&o, &[port]);
    assert!(err.starts_with("slocheck: error: prometheus at http://127.0.0.1:<port>/api/v1/status/buildinfo did not answer within "), "{err}");
    assert!(
        err.trim_end().ends_with(
            "(4 attempts, each limited to 1s) (hint: it may be overloaded; raise the timeout)"
        ),
        "{err}"
    );
    sb.assert_clean();
}

#[test]
fn port_already_in_use() {
    let sb = Sandbox::new();
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let o = sb.run(&["target", "--listen", &format!("127.0.0.1:{port}")]);
    assert_clean_exit(&o, 3);
    insta::assert_snapshot!("port_in_use", normalized(&o, &[port]));
}

#[test]
fn non_loopback_listen_without_a_token() {
    let sb = Sandbox::new();
    let o = sb
        .command()
        .args(["target", "--listen", "0.0.0.0:0"])
        .env_remove("SLOCHECK_ADMIN_TOKEN")
        .output()
        .expect("run");
    assert_ne!(o.status.code(), Some(0), "{}", dump(&o));
    assert!(!stderr(&o).contains("panicked"));
    insta::assert_snapshot!("non_loopback_without_token", normalized(&o, &[]));
}

fn fake_binary(sb: &Sandbox, version_line: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = sb.write("prometheus", &format!("#!/bin/sh\necho '{version_line}'\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn with_binary(sb: &Sandbox, name: &str, bin: &Path) {
    let o = sb.run(&[
        "run",
        "tests/fixtures/bad-run/external.toml",
        "--prometheus-bin",
        bin.to_str().expect("utf-8"),
    ]);
    assert_clean_exit(&o, 3);
    let text = normalized(&o, &[]).replace(&sb.path().display().to_string(), "<sandbox>");
    insta::assert_snapshot!(name, text);
    sb.assert_clean();
}

#[test]
fn prometheus_binary_missing() {
    with_binary(
        &Sandbox::new(),
        "prometheus_missing",
        Path::new("/nonexistent/prometheus"),
    );
}

#[test]
fn prometheus_binary_too_old() {
    let sb = Sandbox::new();
    let bin = fake_binary(
        &sb,
        "prometheus, version 2.30.0 (branch: HEAD, revision: abc)",
    );
    with_binary(&sb, "prometheus_too_old", &bin);
}
