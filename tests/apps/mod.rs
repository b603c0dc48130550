//! Test services in other metric conventions, started as real processes on
//! a free loopback port: `exporter_app.py` (FastAPI with a REAL exporter
//! from PyPI) and `simulated_exporter.py` (a real HTTP server whose
//! /metrics page is written in the convention of a server that cannot run
//! here). Each answers `x-slocheck-fault: status=NNN` with that status.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{Sandbox, python, repo};

/// A running app; killed (by its PID) and reaped when dropped.
pub struct App {
    child: Child,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
}

impl App {
    /// `exporter_app.py KIND` (instrumentator, starlette, otel, otel-legacy);
    /// None when the test virtualenv is missing outside CI.
    pub fn real(kind: &str) -> Option<App> {
        App::start("exporter_app.py", kind, true)
    }

    /// A real app that has served nothing yet (no series on /metrics).
    pub fn real_cold(kind: &str) -> Option<App> {
        App::start("exporter_app.py", kind, false)
    }

    /// `simulated_exporter.py KIND` (triton, torchserve, …).
    pub fn simulated(kind: &str) -> Option<App> {
        App::start("simulated_exporter.py", kind, true)
    }

    fn start(script: &str, kind: &str, warm: bool) -> Option<App> {
        let py = python()?;
        let mut child = Command::new(py)
            .arg(repo().join("tests/apps").join(script))
            .arg(kind)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the test app");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut app = App {
            child,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let port = line
                    .strip_prefix("listening on ")
                    .unwrap_or_else(|| panic!("{script} {kind}: unexpected first line {line:?}"));
                app.url = format!("http://127.0.0.1:{port}/");
            }
            Err(_) => panic!("{script} {kind} did not start within 30 s"),
        }
        if warm {
            app.warm_up();
        }
        Some(app)
    }

    /// One answered and one failed request, as a service that has been up
    /// a while has served: most exporters create a status's series at its
    /// first use, and `increase()` cannot count a series' first sample, so
    /// without this the first scrape interval's 5xx would be missed (a
    /// Prometheus property, documented in the README).
    fn warm_up(&self) {
        self.http("POST", "/predict", "");
        self.http("POST", "/predict", "x-slocheck-fault: status=503\r\n");
    }

    /// The /metrics page after one request (so every family has a sample).
    pub fn metrics(&self) -> String {
        self.http("POST", "/predict", "");
        self.http("GET", "/metrics", "")
    }

    /// One HTTP/1.0 exchange (std only: the tests have no blocking client).
    fn http(&self, method: &str, path: &str, headers: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the test app");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed's rules for `preset`, as `slocheck rules --preset` prints them.
pub fn rules_file(sb: &Sandbox, preset: &str) -> std::path::PathBuf {
    let o = sb.run(&["rules", "--preset", preset]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::common::dump(&o));
    sb.write(&format!("rules-{preset}.yml"), &crate::common::stdout(&o))
}

/// A short baseline → 20 % 503 spike → recovery scenario against `url` in
/// `preset`, with a latency (quantile, or mean when `mean`), error-ratio
/// and HighErrorRate expectations. `time_scale = 60` checks the rules'
/// 5m windows as 5 s so the whole run takes about half a minute.
pub fn scenario(
    sb: &Sandbox,
    url: &str,
    preset: &str,
    metrics_extra: &str,
    mean: bool,
    rules: &Path,
) -> std::path::PathBuf {
    let latency = if mean {
        "latency_mean = { phase = \"baseline\", below = \"500ms\" }".to_string()
    } else {
        "latency_quantile = 0.9\nphase = \"baseline\"\nbelow = \"500ms\"".to_string()
    };
    let text = format!(
        r#"name = "preset-{preset}"
seed = 3

[target]
url = "{url}"
request = {{ method = "POST", path = "/predict", body = '{{"x": 1}}', content_type = "application/json" }}

[metrics]
preset = "{preset}"
{metrics_extra}

[prometheus]
scrape_interval = "1s"
evaluation_interval = "1s"
rule_files = [{rules:?}]
time_scale = 60

[load]
mode = "open"
rate = 25

[[phase]]
name = "baseline"
duration = "8s"

[[phase]]
name = "spike"
duration = "15s"
faults = {{ error_rate = 0.20, status = 503 }}

[[phase]]
name = "recovery"
duration = "15s"

[[expect]]
name = "latency"
{latency}

[[expect]]
name = "baseline-errors"
error_ratio = {{ phase = "baseline", below = 0.01 }}

[[expect]]
name = "spike-errors"
error_ratio = {{ phase = "spike", near = 0.20, tolerance = 0.04 }}

[[expect]]
name = "alert"
alert = "HighErrorRate"
silent_during = ["baseline"]
fires_during = "spike"
resolves_during = "recovery"
"#,
        rules = rules.display().to_string(),
    );
    sb.write(&format!("{preset}.toml"), &text)
}
