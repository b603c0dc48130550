//! Faults inside a third-party service, end to end: the example FastAPI app
//! (tutorial metrics in an `@app.middleware("http")`, plus the two lines of
//! the slocheck fault middleware) under uvicorn, and the Flask app under
//! gunicorn, each started with the test virtualenv's Python on a free
//! loopback port as an external target; slocheck runs the scenarios in
//! `scenarios/external/` against it with a managed Prometheus and the
//! production rules time-scaled. The same FastAPI app with the two lines
//! removed must give the "ignores the fault header" inconclusive verdict.
//! Each of those takes about a minute (`slow_`); the external scenarios'
//! validity is checked fast.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, dump, expectation, stdout};
use serde_json::Value;

/// The marker on the two lines a user adds (examples/python/*.py).
const MIDDLEWARE_MARK: &str = "# slocheck fault protocol";

const IGNORED: &str = "the target ignores the fault header (hint: add the slocheck fault middleware, see docs/fault-protocol.md)";

enum Server {
    Uvicorn,
    Gunicorn,
}

/// A Python app server this test started; killed by PID when dropped.
struct App {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

/// True once the app answers `GET /metrics` with 200.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// Starts `module:app` from `dir` under the server, on a free port (another
/// one if the port was taken meanwhile), and waits until it serves.
fn start(python: &Path, server: Server, dir: &Path, module: &str, sb: &Sandbox) -> App {
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log = sb.path().join(format!("{module}-{port}.log"));
        let mut cmd = Command::new(python);
        match server {
            Server::Uvicorn => cmd.args(["-m", "uvicorn", "--app-dir"]).arg(dir).args([
                &format!("{module}:app"),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--log-level",
                "warning",
            ]),
            Server::Gunicorn => cmd.args(["-m", "gunicorn", "--chdir"]).arg(dir).args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--threads",
                "64",
                "--log-level",
                "warning",
                &format!("{module}:app"),
            ]),
        };
        cmd.env_remove("SLOCHECK_FAULT_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("start the python app server");
        let mut app = App {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if answers(port) {
                return app;
            }
            if app.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last = app.log();
        drop(app);
    }
    panic!("{module} did not start:\n{last}");
}

fn examples() -> PathBuf {
    common::repo().join("examples/python")
}

/// `slocheck run SCENARIO --target-url URL`, with the JSON report.
fn run(sb: &Sandbox, scenario: &str, app: &App) -> (std::process::Output, Value) {
    common::run_with_report(sb, &[scenario, "--target-url", &app.url])
}

fn phase<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
}

fn count(p: &Value, key: &str) -> u64 {
    p[key].as_u64().unwrap_or_else(|| panic!("{key} in {p}"))
}

/// Every verdict passes, and every requested fault of `phase` that got an
/// answer was acknowledged by the app.
fn assert_passed_with_acknowledged_faults(o: &std::process::Output, r: &Value, app: &App) {
    assert_eq!(o.status.code(), Some(0), "{}\n{}", dump(o), app.log());
    for e in r["expectations"].as_array().expect("expectations") {
        assert_eq!(e["verdict"], "pass", "{e}");
    }
    let spike = phase(r, "spike");
    let (requested, acked) = (
        count(spike, "faults_requested"),
        count(spike, "faults_acknowledged"),
    );
    let unanswered = count(spike, "connection_errors") + count(spike, "timeouts");
    assert!(requested > 100, "{spike}");
    assert!(
        acked <= requested && acked + unanswered >= requested,
        "{spike}"
    );
    let baseline = phase(r, "baseline");
    assert_eq!(count(baseline, "faults_requested"), 0);
    assert!(
        stdout(o).contains(&format!("{acked} of {requested} faults acknowledged")),
        "{}",
        stdout(o)
    );
}

fn assert_lifecycle(r: &Value, alert: &str) {
    let t = r["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["alert"] == alert)
        .unwrap_or_else(|| panic!("no timeline for {alert}: {}", r["alerts"]));
    for k in ["pending_at_ms", "firing_at_ms", "resolved_at_ms"] {
        assert!(t[k].is_u64(), "{alert} lacks {k}: {t}");
    }
}

#[test]
fn slow_fastapi_error_spike_passes_with_the_middleware() {
    let Some(py) = common::python() else { return };
    let sb = Sandbox::new();
    let app = start(&py, Server::Uvicorn, &examples(), "fastapi_app", &sb);
    let (o, r) = run(&sb, "scenarios/external/fastapi-error-spike.toml", &app);
    assert_passed_with_acknowledged_faults(&o, &r, &app);
    assert_lifecycle(&r, "HighErrorRate");
}

#[test]
fn slow_fastapi_latency_spike_passes_with_the_middleware() {
    let Some(py) = common::python() else { return };
    let sb = Sandbox::new();
    let app = start(&py, Server::Uvicorn, &examples(), "fastapi_app", &sb);
    let (o, r) = run(&sb, "scenarios/external/fastapi-latency-spike.toml", &app);
    assert_passed_with_acknowledged_faults(&o, &r, &app);
    assert_lifecycle(&r, "HighLatencyP90");
}

#[test]
fn slow_flask_error_spike_passes_under_gunicorn() {
    let Some(py) = common::python() else { return };
    let sb = Sandbox::new();
    let app = start(&py, Server::Gunicorn, &examples(), "flask_app", &sb);
    let (o, r) = run(&sb, "scenarios/external/flask-error-spike.toml", &app);
    assert_passed_with_acknowledged_faults(&o, &r, &app);
    assert_lifecycle(&r, "HighErrorRate");
}

#[test]
fn slow_fastapi_without_the_middleware_is_inconclusive_not_failed() {
    let Some(py) = common::python() else { return };
    let sb = Sandbox::new();
    // The example app with exactly its two middleware lines removed.
    let text = std::fs::read_to_string(examples().join("fastapi_app.py")).expect("read app");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_end().ends_with(MIDDLEWARE_MARK))
        .collect();
    assert_eq!(text.lines().count() - kept.len(), 2, "the two marked lines");
    let dir = sb.path().join("plain");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("plain_app.py"), kept.join("\n")).expect("write app");
    let app = start(&py, Server::Uvicorn, &dir, "plain_app", &sb);

    let (o, r) = run(&sb, "scenarios/external/fastapi-error-spike.toml", &app);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", dump(&o), app.log());
    // The fault-free baseline is judged as usual; what needs the faults is
    // inconclusive with the one clear reason, not a failed alert.
    assert_eq!(expectation(&r, "baseline-p90")["verdict"], "pass");
    for id in ["spike-error-ratio", "high-error-rate-lifecycle"] {
        let e = expectation(&r, id);
        assert_eq!(e["verdict"], "inconclusive", "{e}");
        assert_eq!(e["reason"], IGNORED, "{e}");
    }
    let spike = phase(&r, "spike");
    assert!(count(spike, "faults_requested") > 100, "{spike}");
    assert_eq!(count(spike, "faults_acknowledged"), 0, "{spike}");
    assert_eq!(spike["status_classes"]["5xx"].as_u64(), Some(0), "{spike}");
    assert!(stdout(&o).contains(IGNORED), "{}", stdout(&o));
}

/// The external scenarios are valid without any app running (fast: `check`
/// only validates and prints the timeline).
#[test]
fn external_scenarios_pass_check() {
    let sb = Sandbox::new();
    let dir = common::repo().join("scenarios/external");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios/external") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let o = sb.run(&["check", path.to_str().expect("utf-8 path")]);
            assert_eq!(o.status.code(), Some(0), "{}: {}", path.display(), dump(&o));
            n += 1;
        }
    }
    assert_eq!(n, 3, "fastapi error/latency spike and flask error spike");
}
