//! Bounded resources: an open-loop run against a target far slower than the
//! rate keeps memory and open files flat, never exceeds max_in_flight, and
//! reports what it could not send as dropped.

mod common;

use std::time::Duration;

use common::{Sandbox, repo};

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn slow_overloaded_open_loop_stays_flat_and_reports_drops() {
    let sb = Sandbox::new();
    // Every request takes 2 s; 400 rps with at most 50 in flight means the
    // service completes 25 rps and ~375 rps must be reported as dropped.
    let scenario = sb.write(
        "overload.toml",
        &format!(
            r#"
[target]
request = {{ body_file = "{data}" }}

[load]
rate = 400
max_in_flight = 50

[[phase]]
name = "overload"
duration = "24s"
faults = {{ latency_ratio = 1.0, delay = "2s" }}
"#,
            data = repo().join("scenarios/data/iris.jsonl").display()
        ),
    );
    let child = sb
        .command()
        .args(["load", scenario.to_str().expect("utf-8"), "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(6));
    let (rss_early, fds_early) = (status_kb(pid, "VmRSS:"), open_files(pid));
    std::thread::sleep(Duration::from_secs(14));
    let (rss_late, fds_late) = (status_kb(pid, "VmRSS:"), open_files(pid));
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(
        rss_late < rss_early + 8 * 1024,
        "memory grew from {rss_early} kB to {rss_late} kB"
    );
    assert!(
        fds_late <= fds_early + 8,
        "open files grew from {fds_early} to {fds_late}"
    );

    // The summary table: columns are single words, so header and row align.
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let row: Vec<&str> = lines
        .find(|l| l.starts_with("overload"))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    let col = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column: {text}"));
        row[i]
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {:?}", row[i]))
    };
    let (sent, dropped) = (col("sent"), col("dropped"));
    assert!(
        sent <= 50 * 14,
        "in-flight bound not honoured: {sent} sent\n{text}"
    );
    assert_eq!(
        sent + dropped,
        400 * 24,
        "every scheduled request is sent or reported dropped\n{text}"
    );
}
