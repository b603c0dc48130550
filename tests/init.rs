//! `slocheck init`: from a live service's /metrics to a first verdict. Each
//! FastAPI app is instrumented by a REAL exporter from PyPI; the scenario
//! `init` writes must pass `check` and then `run` against it (`slow_*`).

mod apps;
mod common;

use apps::App;
use common::{Sandbox, dump, stderr, stdout};

fn init(sb: &Sandbox, app: &App, extra: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let dir = sb.path().join("starter");
    let mut args = vec![
        "init",
        "--target-url",
        &app.url,
        "--path",
        "/predict",
        "--method",
        "POST",
        "--dir",
        dir.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    (sb.run(&args), dir)
}

/// init → check → run against a service that has served nothing yet, all
/// exit 0; init named the expected preset.
fn first_verdict(kind: &str, preset: &str) {
    let Some(app) = App::real_cold(kind) else {
        return;
    };
    let sb = Sandbox::new();
    let (o, dir) = init(&sb, &app, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("(preset \"{preset}\")")), "{out}");
    assert!(out.contains("slocheck run "), "{out}");
    // A fresh exporter shows no series until its first request.
    assert!(out.contains("sent one POST /predict"), "{out}");
    let scenario = dir.join("scenario.toml");
    let text = std::fs::read_to_string(&scenario).expect("scenario written");
    assert!(text.contains(&format!("preset = \"{preset}\"")), "{text}");
    let rules = std::fs::read_to_string(dir.join("rules.yml")).expect("rules written");
    assert!(rules.contains("alert: HighErrorRate"), "{rules}");

    let s = scenario.to_str().expect("utf-8");
    let o = sb.run(&["check", s]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert!(stdout(&o).contains("spike-errors promql: "), "{}", dump(&o));
    let o = sb.run(&["run", s, "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    sb.assert_clean();
}

#[test]
fn slow_init_fastapi_instrumentator() {
    first_verdict("instrumentator", "fastapi-instrumentator");
}

#[test]
fn slow_init_starlette_exporter() {
    first_verdict("starlette", "starlette-exporter");
}

#[test]
fn slow_init_opentelemetry() {
    first_verdict("otel", "opentelemetry");
}

#[test]
fn slow_init_opentelemetry_legacy() {
    first_verdict("otel-legacy", "opentelemetry-legacy");
}

#[test]
fn init_refuses_what_it_cannot_start_from() {
    let sb = Sandbox::new();
    // Nothing listening: an environment failure.
    let o = sb.run(&["init", "--target-url", "http://127.0.0.1:9/", "--dir", "x"]);
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert!(stderr(&o).contains("is unreachable"), "{}", dump(&o));

    let Some(unknown) = App::simulated("unknown") else {
        return;
    };
    let (o, dir) = init(&sb, &unknown, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        stderr(&o).contains("matches no known metric convention (hint: pass --preset NAME"),
        "{}",
        dump(&o)
    );
    assert!(!dir.exists(), "nothing is written on refusal");

    // --preset skips recognition; existing files need --force.
    let (o, dir) = init(&sb, &unknown, &["--preset", "triton"]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let text = std::fs::read_to_string(dir.join("scenario.toml")).expect("written");
    assert!(
        text.contains("latency_mean = {"),
        "mean-only convention: {text}"
    );
    let (o, _) = init(&sb, &unknown, &["--preset", "triton"]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        stderr(&o).contains("already exists (hint: pass --force"),
        "{}",
        dump(&o)
    );
    let (o, _) = init(&sb, &unknown, &["--preset", "tgi", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
}
