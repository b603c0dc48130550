//! Shared set-up of the end-to-end tests: the `slocheck` binary run in a
//! sandbox with its own TMPDIR, so a test can prove that nothing it started
//! (run directory, Prometheus) is left behind.
#![allow(dead_code)]

pub mod replay;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("slocheck-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// TMPDIR of the child: its run directories are created here.
    pub fn tmp(&self) -> PathBuf {
        let t = self.path().join("tmp");
        std::fs::create_dir_all(&t).expect("tmp dir");
        t
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_slocheck"));
        c.env("TMPDIR", self.tmp())
            .env("NO_COLOR", "1")
            .current_dir(repo());
        c
    }

    /// Runs `slocheck ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run slocheck")
    }

    /// Writes a file into the sandbox and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }

    /// A copy of a rule file from `rules/` with textual edits applied;
    /// panics if an edit does not apply (the test would prove nothing).
    pub fn rules_copy(&self, name: &str, edits: &[(&str, &str)]) -> PathBuf {
        let text = std::fs::read_to_string(repo().join("rules").join(name)).expect("read rules");
        self.write(&format!("edited-{name}"), &apply(&text, edits))
    }

    /// A copy of `scenarios/NAME` with the rule files and data paths made
    /// absolute (so the copy works from the sandbox) and edits applied.
    pub fn scenario_copy(
        &self,
        name: &str,
        rule_files: Option<&[PathBuf]>,
        edits: &[(&str, &str)],
    ) -> PathBuf {
        let scenarios = repo().join("scenarios");
        let mut text = std::fs::read_to_string(scenarios.join(name)).expect("read scenario");
        text = text.replace("\"data/", &format!("\"{}/data/", scenarios.display()));
        let rules = match rule_files {
            Some(files) => files
                .iter()
                .map(|p| format!("{:?}", p.display().to_string()))
                .collect::<Vec<_>>(),
            None => ["recording.yml", "alerts.yml"]
                .iter()
                .map(|f| format!("{:?}", repo().join("rules").join(f).display().to_string()))
                .collect(),
        };
        text = apply(
            &text,
            &[(
                "\"../rules/recording.yml\", \"../rules/alerts.yml\"",
                &rules.join(", "),
            )],
        );
        self.write(name, &apply(&text, edits))
    }

    /// Nothing left behind: no run directory, no process mentioning the
    /// sandbox (a managed Prometheus has its paths on its command line).
    pub fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(self.tmp())
            .expect("read tmp")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("slocheck-run-"))
            .collect();
        assert!(left.is_empty(), "run directories left behind: {left:?}");
        let procs = processes_mentioning(&self.tmp().display().to_string());
        assert!(procs.is_empty(), "processes left running: {procs:?}");
    }
}

pub fn apply(text: &str, edits: &[(&str, &str)]) -> String {
    let mut t = text.to_string();
    for (from, to) in edits {
        assert!(t.contains(from), "edit {from:?} does not apply");
        t = t.replace(from, to);
    }
    t
}

/// PIDs and command lines of live processes whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        // A zombie has an empty command line and cannot be attributed to a
        // test; reaping is checked where the PID is known (prom_launcher).
        if cmd.contains(needle) {
            out.push((pid, cmd));
        }
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything a failing assertion should show.
pub fn dump(o: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

/// `slocheck run ARGS… --json FILE --quiet` to completion: its output and the
/// report, after checking that nothing it started was left behind.
pub fn run_with_report(sb: &Sandbox, args: &[&str]) -> (Output, serde_json::Value) {
    let json = sb.path().join("report.json");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend(["--json", json.to_str().expect("utf-8 path"), "--quiet"]);
    let o = sb.run(&all);
    let report = read_json(&json);
    sb.assert_clean();
    (o, report)
}

/// The report's expectation with this id.
pub fn expectation<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["expectations"]
        .as_array()
        .expect("expectations")
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no expectation {id} in {r}"))
}

/// A running `slocheck` whose stderr is read line by line as it comes.
pub struct Running {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub stderr_log: String,
}

impl Sandbox {
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_env(args, &[])
    }

    /// `spawn` with extra environment variables.
    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = self
            .command()
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn slocheck");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            stderr_log: String::new(),
        }
    }
}

impl Running {
    /// Waits for a stderr line containing `needle`; panics with the log so far.
    pub fn wait_for(&mut self, needle: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_log.push_str(&line);
                    self.stderr_log.push('\n');
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {timeout:?}; stderr so far:\n{}",
                    self.stderr_log
                ),
            }
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal slocheck");
    }

    /// Waits for the exit (bounded) and returns its code and the whole stderr.
    pub fn finish(mut self, timeout: std::time::Duration) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self
                    .lines
                    .recv_timeout(std::time::Duration::from_millis(200))
                {
                    self.stderr_log.push_str(&line);
                    self.stderr_log.push('\n');
                }
                return (status.code(), self.stderr_log);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "slocheck did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr_log
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// True when the tests run in CI (`CI=true`), where every component the
/// tests use has been installed by `ci/test.sh`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds a tool the test needs. Under `CI=true` a missing tool fails the test
/// with the install step (a test must never pass because a component is
/// missing); locally it returns `None` after printing why the test skips.
pub fn require_tool(names: &[&str], install: &str) -> Option<PathBuf> {
    if let Some(p) = names.iter().find_map(|n| which::which(n).ok()) {
        return Some(p);
    }
    let msg = format!(
        "{} not found on PATH (install: {install})",
        names.join(" / ")
    );
    assert!(!in_ci(), "{msg}: CI=true requires it");
    eprintln!("SKIPPED: {msg}");
    None
}

/// The Python interpreter of the test virtualenv that `ci/python-env.sh`
/// creates (`SLOCHECK_PYTHON`, else `target/venv`). Under `CI=true` a missing
/// virtualenv fails the test; locally the test skips and says why.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("SLOCHECK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    let msg = format!(
        "python virtualenv {} not found (install: ci/python-env.sh)",
        p.display()
    );
    assert!(!in_ci(), "{msg}: CI=true requires it");
    eprintln!("SKIPPED: {msg}");
    None
}

/// Makes a FIFO at `path` (`mkfifo`): opening it blocks until the other end
/// is opened too.
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}
