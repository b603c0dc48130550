//! The offline side of `slocheck run --export-promtool DIR`, shared by the
//! slow tests that already run each shipped scenario: they pass
//! [`export_args`] to that run and then call [`assert_replay`], so every
//! scenario's export is checked without a run of its own. The replay must
//! pass `promtool test rules DIR/*.yml` in well under a second and fail once
//! a rule it asserts on is mutated (threshold, metric name, `for`): it tests
//! the rules, not itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{Sandbox, apply, dump, require_tool};

/// Edits of one copied rule file (`rules/NAME` in the export), each
/// applied wherever its text occurs.
pub struct Mutation {
    /// What the edit breaks, for messages: "threshold", "metric name", "for".
    pub what: &'static str,
    pub file: &'static str,
    pub edits: Vec<(String, String)>,
}

impl Mutation {
    pub fn new(what: &'static str, file: &'static str, from: &str, to: &str) -> Mutation {
        Mutation::all(what, file, &[(from, to)])
    }

    pub fn all(what: &'static str, file: &'static str, edits: &[(&str, &str)]) -> Mutation {
        Mutation {
            what,
            file,
            edits: edits
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    /// `for: FROMs` of the alerts labelled `severity` (as the scaled copies
    /// write it) made `for: TOs`.
    pub fn longer_for(file: &'static str, from: u64, to: u64, severity: &str) -> Mutation {
        let at = |s: u64| format!("for: {s}s\n    labels:\n      severity: {severity}");
        Mutation::new("for", file, &at(from), &at(to))
    }

    /// A `for: TO` added to the alerts labelled `severity` that have none.
    pub fn added_for(file: &'static str, to: &str, severity: &str) -> Mutation {
        let labels = format!("    labels:\n      severity: {severity}");
        Mutation::new("for", file, &labels, &format!("    for: {to}\n{labels}"))
    }
}

/// The mutations of HighErrorRate in the ×20 copy of alerts.yml, which the
/// replay of every error-spike run catches.
pub fn high_error_rate_mutations() -> Vec<Mutation> {
    vec![
        Mutation::new("threshold", "alerts.yml", "> 0.05", "> 0.5"),
        Mutation::new(
            "metric name",
            "alerts.yml",
            "http_requests_total{status=~\"5..\"}",
            "http_requests_totals{status=~\"5..\"}",
        ),
        Mutation::longer_for("alerts.yml", 15, 45, "critical"),
    ]
}

/// The folder a test's run exports into.
pub fn export_dir(sb: &Sandbox) -> PathBuf {
    sb.path().join("export")
}

/// `--export-promtool DIR` for the run, as owned strings.
pub fn export_args(sb: &Sandbox) -> [String; 2] {
    [
        "--export-promtool".to_string(),
        export_dir(sb).display().to_string(),
    ]
}

/// `promtool test rules DIR/*.yml`, as a user would run it, and the CPU time
/// (user + system) promtool spent: unlike wall-clock time it does not grow
/// when other runs and builds share the machine.
pub fn promtool_test(promtool: &Path, dir: &Path) -> (Output, Duration) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read export dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yml test file in {}", dir.display());
    let mut out = tempfile::tempfile().expect("stdout file");
    let mut err = tempfile::tempfile().expect("stderr file");
    // Reaped by wait4 below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(promtool)
        .args(["test", "rules"])
        .args(&files)
        .stdout(out.try_clone().expect("stdout"))
        .stderr(err.try_clone().expect("stderr"))
        .spawn()
        .expect("run promtool");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers; `child` is never
    // waited on again (dropping a Child does not wait).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 promtool");
    let cpu = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let read = |f: &mut std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().expect("rewind");
        f.read_to_end(&mut v).expect("read promtool output");
        v
    };
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: read(&mut out),
        stderr: read(&mut err),
    };
    (output, cpu(usage.ru_utime) + cpu(usage.ru_stime))
}

/// A copy of the export with `m` applied to its copy of `m.file`.
fn mutated(export: &Path, into: &Path, m: &Mutation) -> PathBuf {
    std::fs::create_dir_all(into.join("rules")).expect("mkdir");
    for e in std::fs::read_dir(export).expect("read export").flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), into.join(e.file_name())).expect("copy test");
        }
    }
    let mut found = false;
    for e in std::fs::read_dir(export.join("rules"))
        .expect("read rules")
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).expect("read rule file");
        let text = if e.file_name() == m.file {
            found = true;
            let edits: Vec<(&str, &str)> = m
                .edits
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            apply(&text, &edits)
        } else {
            text
        };
        std::fs::write(into.join("rules").join(e.file_name()), text).expect("write rule file");
    }
    assert!(found, "the export has no rules/{}", m.file);
    into.to_path_buf()
}

/// The export of the run in `sb` passes promtool in under a second of CPU
/// (wall-clock time depends on what else the machine runs), and
/// fails with each mutation. Every shipped scenario has one: where its
/// alerts stay silent, a threshold lowered below healthy traffic. Skips
/// (locally) without promtool.
pub fn assert_replay(sb: &Sandbox, mutations: &[Mutation]) {
    assert_replay_of(sb, &export_dir(sb), mutations);
}

/// [`assert_replay`] of the export in `export` (one scenario of a suite).
pub fn assert_replay_of(sb: &Sandbox, export: &Path, mutations: &[Mutation]) {
    let Some(promtool) = require_tool(&["promtool"], "ci/setup.sh (Debian package prometheus)")
    else {
        return;
    };
    assert!(
        !mutations.is_empty(),
        "a replay no mutation breaks proves nothing"
    );
    let stem = export
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let (ok, cpu) = promtool_test(&promtool, export);
    let wall = started.elapsed();
    assert!(ok.status.success(), "the replay fails: {}", dump(&ok));
    eprintln!(
        "promtool test rules {}: {cpu:?} CPU, {wall:?} wall",
        export.display()
    );
    assert!(cpu < Duration::from_secs(1), "promtool took {cpu:?} of CPU");
    for (i, m) in mutations.iter().enumerate() {
        let dir = mutated(export, &sb.path().join(format!("mutant-{stem}-{i}")), m);
        let (bad, _) = promtool_test(&promtool, &dir);
        assert!(
            !bad.status.success() && dump(&bad).contains("FAILED:"),
            "promtool passed with the {} of {} mutated ({:?}): {}",
            m.what,
            m.file,
            m.edits,
            dump(&bad)
        );
    }
}
