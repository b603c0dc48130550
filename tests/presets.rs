//! Metric presets end to end: `[metrics]` validation, the PromQL `check`
//! prints and refuses, `rules --preset` through promtool, `doctor`
//! recognizing real and simulated exporters, and whole runs against FastAPI
//! apps instrumented by the REAL exporters from PyPI and against SIMULATED
//! exporters (real HTTP server and real Prometheus; only the exposition
//! page imitates a server that cannot run here). Whole runs are `slow_*`.

mod apps;
mod common;

use apps::{App, rules_file, scenario};
use common::{Sandbox, dump, read_json, require_tool, stderr, stdout};
use serde_json::Value;

fn check(sb: &Sandbox, text: &str) -> std::process::Output {
    let p = sb.write("s.toml", text);
    sb.run(&["check", p.to_str().expect("utf-8")])
}

const BASE: &str = r#"
[prometheus]
rule_files = []

[[phase]]
name = "baseline"
duration = "10s"
rate = 10
"#;

#[test]
fn check_prints_the_promql_of_each_expectation() {
    let sb = Sandbox::new();
    let o = check(
        &sb,
        &format!(
            "[metrics]\npreset = \"istio\"\nselector = '{{destination_service=\"iris\"}}'\n{BASE}\n\
             [[expect]]\nlatency_quantile = 0.9\nphase = \"baseline\"\nbelow = \"250ms\"\n\
             [[expect]]\nerror_ratio = {{ phase = \"baseline\", below = 0.01 }}\n"
        ),
    );
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let out = stdout(&o);
    assert!(
        out.contains("expect[1] promql: histogram_quantile(0.9, sum by (le) (rate(istio_request_duration_milliseconds_bucket{job=\"slocheck-target\",reporter=\"destination\",destination_service=\"iris\"}[10000ms]))) / 1000"),
        "{out}"
    );
    assert!(
        out.contains("expect[2] promql: (sum(increase(istio_requests_total{job=\"slocheck-target\",reporter=\"destination\",destination_service=\"iris\",response_code=~\"5..\"}[10000ms])) or vector(0))"),
        "{out}"
    );
    assert!(out.contains("metrics: preset \"istio\""), "{out}");
}

#[test]
fn check_of_a_scenario_without_metrics_shows_the_tutorial_queries() {
    let sb = Sandbox::new();
    let o = sb.run(&["check", "scenarios/error-spike.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert!(
        stdout(&o).contains("baseline-p90 promql: histogram_quantile(0.9, sum by (le) (rate(http_request_latency_seconds_bucket{job=\"slocheck-target\"}[10000ms])))"),
        "{}",
        dump(&o)
    );
}

#[test]
fn a_quantile_the_convention_cannot_answer_is_refused_with_a_hint() {
    let sb = Sandbox::new();
    let quantile = "[[expect]]\nlatency_quantile = 0.9\nphase = \"baseline\"\nbelow = \"250ms\"\n";
    let o = check(
        &sb,
        &format!("[metrics]\npreset = \"micrometer\"\n{BASE}\n{quantile}"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    let err = stderr(&o);
    assert!(err.contains("s.toml:13:20: expect[1].latency_quantile: cannot check a latency quantile: http_server_requests_seconds is a summary"), "{err}");
    assert!(err.contains("enable percentiles-histogram"), "{err}");

    let o = check(
        &sb,
        &format!("[metrics]\npreset = \"triton\"\n{BASE}\n{quantile}"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(stderr(&o).contains("use latency_mean"), "{}", dump(&o));

    // The mean is what these conventions answer.
    let mean = "[[expect]]\nlatency_mean = { phase = \"baseline\", below = \"250ms\" }\n";
    let o = check(
        &sb,
        &format!("[metrics]\npreset = \"triton\"\n{BASE}\n{mean}"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert!(
        stdout(&o).contains("expect[1] promql: sum(increase(nv_inference_request_duration_us{job=\"slocheck-target\"}[10000ms])) / sum(increase(nv_inference_request_success{job=\"slocheck-target\"}[10000ms])) / 1000000"),
        "{}",
        dump(&o)
    );
    // Micrometer with percentiles-histogram enabled answers quantiles.
    let o = check(
        &sb,
        &format!(
            "[metrics]\npreset = \"micrometer\"\nlatency_type = \"histogram\"\n{BASE}\n{quantile}"
        ),
    );
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
}

#[test]
fn bad_metrics_keys_are_located() {
    let sb = Sandbox::new();
    let cases: &[(&str, &str)] = &[
        (
            "preset = \"prometheus\"",
            "s.toml:2:10: metrics.preset: unknown preset \"prometheus\" (hint: presets: tutorial, fastapi-instrumentator,",
        ),
        (
            "colour = \"red\"",
            "s.toml:2:1: metrics.colour: unknown field `colour`",
        ),
        (
            "latency_unit = \"minutes\"",
            "s.toml:2:16: metrics.latency_unit: unknown latency_unit \"minutes\" (hint: s, ms or us (µs))",
        ),
        (
            "server_error = \"5(\"",
            "s.toml:2:16: metrics.server_error: invalid server_error regular expression",
        ),
        (
            "status_label = \"http-status\"",
            "s.toml:2:16: metrics.status_label: invalid label name \"http-status\"",
        ),
        (
            "selector = 'service=\"x\"'",
            "s.toml:2:12: metrics.selector: invalid selector",
        ),
        (
            "requests = []",
            "s.toml:2:12: metrics.requests: requests lists no counter",
        ),
        (
            "error_counter = \"failures\"\nstatus_label = \"code\"",
            "s.toml:3:16: metrics: error_counter and status_label/server_error both describe server errors",
        ),
        (
            "latency = \"1bad\"",
            "s.toml:2:11: metrics.latency: invalid metric name \"1bad\"",
        ),
    ];
    for (keys, want) in cases {
        let o = check(&sb, &format!("[metrics]\n{keys}\n{BASE}"));
        assert_eq!(o.status.code(), Some(2), "{keys}: {}", dump(&o));
        assert!(
            stderr(&o).contains(want),
            "{keys}: want {want}\n{}",
            dump(&o)
        );
    }
}

#[test]
fn explicit_keys_describe_a_service_no_preset_knows() {
    let sb = Sandbox::new();
    let o = check(
        &sb,
        &format!(
            "[metrics]\nrequests = \"api_calls_total\"\nstatus_label = \"grpc_code\"\nserver_error = \"Unavailable|Internal\"\n\
             latency = \"api_call_latency_ms_bucket\"\nlatency_unit = \"ms\"\nselector = '{{service=\"checkout\"}}'\n{BASE}\n\
             [[expect]]\nlatency_quantile = 0.99\nphase = \"baseline\"\nbelow = \"1s\"\n\
             [[expect]]\nerror_ratio = {{ phase = \"baseline\", below = 0.01 }}\n"
        ),
    );
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let out = stdout(&o);
    assert!(out.contains("rate(api_call_latency_ms_bucket{job=\"slocheck-target\",service=\"checkout\"}[10000ms]))) / 1000"), "{out}");
    assert!(out.contains("api_calls_total{job=\"slocheck-target\",service=\"checkout\",grpc_code=~\"Unavailable|Internal\"}"), "{out}");
}

#[test]
fn rules_of_every_preset_pass_promtool() {
    let Some(promtool) = require_tool(&["promtool"], "ci/setup.sh (Debian package prometheus)")
    else {
        return;
    };
    let sb = Sandbox::new();
    let names = [
        "tutorial",
        "fastapi-instrumentator",
        "starlette-exporter",
        "opentelemetry",
        "opentelemetry-legacy",
        "micrometer",
        "go-http-metrics",
        "istio",
        "ingress-nginx",
        "traefik",
        "bentoml",
        "ray-serve",
        "seldon",
        "triton",
        "torchserve",
        "tf-serving",
        "tgi",
        "vllm",
    ];
    for name in names {
        let f = rules_file(&sb, name);
        let o = std::process::Command::new(&promtool)
            .args(["check", "rules"])
            .arg(&f)
            .output()
            .expect("run promtool");
        assert!(o.status.success(), "{name}: {}", dump(&o));
        assert!(
            stdout(&o).contains("SUCCESS: 6 rules found")
                || stdout(&o).contains("SUCCESS: 5 rules found"),
            "{name}: {}",
            dump(&o)
        );
    }
    let o = sb.run(&["rules", "--preset", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(
        stderr(&o).contains("unknown preset \"nope\""),
        "{}",
        dump(&o)
    );
}

#[test]
fn tutorial_rules_fire_like_the_seed_under_promtool_test() {
    // The seed's own promtool unit test, run against the generated tutorial
    // rules: same alerts at the same evaluation times.
    let Some(promtool) = require_tool(&["promtool"], "ci/setup.sh (Debian package prometheus)")
    else {
        return;
    };
    let sb = Sandbox::new();
    let rules = rules_file(&sb, "tutorial");
    let test =
        std::fs::read_to_string(common::repo().join("rules/alerts_test.yml")).expect("seed test");
    let test = test.replace("  - alerts.yml", &format!("  - {}", rules.display()));
    let t = sb.write("alerts_test.yml", &test);
    let o = std::process::Command::new(promtool)
        .args(["test", "rules"])
        .arg(&t)
        .output()
        .expect("run promtool");
    assert!(o.status.success(), "{}", dump(&o));
}

/// `doctor --target-url` on each exporter: it names the preset to use.
#[test]
fn doctor_recognizes_real_and_simulated_exporters() {
    let sb = Sandbox::new();
    let real = [
        ("instrumentator", "fastapi-instrumentator"),
        ("starlette", "starlette-exporter"),
        ("otel", "opentelemetry"),
        ("otel-legacy", "opentelemetry-legacy"),
    ];
    let simulated = [
        "triton",
        "torchserve",
        "tf-serving",
        "istio",
        "micrometer",
        "bentoml",
        "ray-serve",
        "tgi",
        "vllm",
        "seldon",
        "go-http-metrics",
        "ingress-nginx",
        "traefik",
    ];
    let mut apps = Vec::new();
    for (kind, preset) in real {
        match App::real(kind) {
            Some(a) => apps.push((a, preset)),
            None => return,
        }
    }
    for kind in simulated {
        let Some(a) = App::simulated(kind) else {
            return;
        };
        apps.push((a, kind));
    }
    for (app, preset) in &apps {
        app.metrics(); // one request, so every family has samples
        let o = sb.run(&[
            "doctor",
            "--prometheus-url",
            "http://127.0.0.1:9/",
            "--target-url",
            &app.url,
            "--dashboards",
            "dashboards",
        ]);
        let out = stdout(&o);
        assert!(
            out.contains(&format!("use `[metrics] preset = \"{preset}\"`")),
            "{preset}: {}",
            dump(&o)
        );
        // Every family of the recognized convention passes.
        let metric_fails: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("FAIL  metrics"))
            .collect();
        assert!(metric_fails.is_empty(), "{preset}: {}", dump(&o));
    }
    // A wrong --preset is named, with the one that fits.
    let (app, _) = &apps[0];
    let o = sb.run(&[
        "doctor",
        "--prometheus-url",
        "http://127.0.0.1:9/",
        "--target-url",
        &app.url,
        "--preset",
        "triton",
    ]);
    let out = stdout(&o);
    assert!(out.contains("not preset \"triton\""), "{}", dump(&o));
    assert!(
        out.contains("metric family nv_inference_request_success is missing"),
        "{}",
        dump(&o)
    );
}

fn agreement<'a>(r: &'a Value, phase: &str) -> &'a Value {
    r["agreement"]
        .as_array()
        .expect("agreement")
        .iter()
        .find(|a| a["phase"] == phase)
        .unwrap_or_else(|| panic!("no agreement row for {phase}: {}", r["agreement"]))
}

/// Runs `preset`'s short scenario against `app` and checks that every
/// expectation passed and that Prometheus's error ratio is within ±1 pp of
/// what the app really answered (the client's count) in every phase.
fn run_and_agree(app: &App, preset: &str, metrics_extra: &str, mean: bool) -> Value {
    let sb = Sandbox::new();
    let rules = rules_file(&sb, preset);
    let s = scenario(&sb, &app.url, preset, metrics_extra, mean, &rules);
    let dir = sb.path().join("report");
    let o = sb.run(&[
        "run",
        s.to_str().expect("utf-8"),
        "--report-dir",
        dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    let r = read_json(&dir.join("report.json"));
    assert_eq!(o.status.code(), Some(0), "{preset}: {}\n{r:#}", dump(&o));
    for phase in ["baseline", "spike", "recovery"] {
        let a = agreement(&r, phase);
        let prom = a["prometheus_error_ratio"]
            .as_f64()
            .unwrap_or_else(|| panic!("{preset} {phase}: {a}"));
        let client = a["client_error_ratio"].as_f64().expect("client ratio");
        assert!(
            (prom - client).abs() <= 0.01,
            "{preset} {phase}: Prometheus {prom} vs app answered {client}"
        );
    }
    // The report, latency_mean results included, fits the committed schema.
    let schema = read_json(&common::repo().join("schemas/report.schema.json"));
    let v = jsonschema::validator_for(&schema).expect("valid JSON Schema");
    let errors: Vec<String> = v
        .iter_errors(&r)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{preset}: {errors:?}");
    let spike = agreement(&r, "spike")["prometheus_error_ratio"]
        .as_f64()
        .unwrap_or_default();
    assert!(spike > 0.1, "{preset}: the spike was seen: {spike}");
    sb.assert_clean();
    r
}

// REAL exporters from PyPI, instrumenting a FastAPI app.

#[test]
fn slow_fastapi_instrumentator() {
    let Some(app) = App::real("instrumentator") else {
        return;
    };
    // The instrumentator also counts Prometheus's own scrapes of /metrics.
    run_and_agree(
        &app,
        "fastapi-instrumentator",
        "selector = '{handler=\"/predict\"}'",
        false,
    );
}

#[test]
fn slow_starlette_exporter() {
    let Some(app) = App::real("starlette") else {
        return;
    };
    run_and_agree(
        &app,
        "starlette-exporter",
        "selector = '{path=\"/predict\"}'",
        false,
    );
}

#[test]
fn slow_opentelemetry_stable_semconv() {
    let Some(app) = App::real("otel") else { return };
    run_and_agree(&app, "opentelemetry", "", false);
}

#[test]
fn slow_opentelemetry_legacy_semconv() {
    let Some(app) = App::real("otel-legacy") else {
        return;
    };
    let r = run_and_agree(&app, "opentelemetry-legacy", "", false);
    // The bucket check uses the histogram's real bounds, scaled from ms.
    let bucket = &agreement(&r, "baseline")["p90_bucket"];
    let hi = bucket[1]
        .as_f64()
        .unwrap_or_else(|| panic!("p90 bucket: {bucket}"));
    assert!(hi <= 0.1, "ms bounds read as seconds: {bucket}");
}

// SIMULATED exporters: the server, the requests, the statuses and Prometheus
// are real; the /metrics page imitates a server that cannot run here.

#[test]
fn slow_simulated_triton() {
    let Some(app) = App::simulated("triton") else {
        return;
    };
    run_and_agree(&app, "triton", "", true);
}

#[test]
fn slow_simulated_torchserve() {
    let Some(app) = App::simulated("torchserve") else {
        return;
    };
    run_and_agree(&app, "torchserve", "", true);
}

#[test]
fn slow_simulated_tf_serving() {
    let Some(app) = App::simulated("tf-serving") else {
        return;
    };
    run_and_agree(&app, "tf-serving", "", false);
}

#[test]
fn slow_simulated_istio() {
    let Some(app) = App::simulated("istio") else {
        return;
    };
    run_and_agree(&app, "istio", "", false);
}

#[test]
fn slow_simulated_micrometer() {
    let Some(app) = App::simulated("micrometer") else {
        return;
    };
    run_and_agree(&app, "micrometer", "", true);
}

#[test]
fn slow_simulated_ray_serve_and_tgi() {
    let Some(app) = App::simulated("ray-serve") else {
        return;
    };
    run_and_agree(&app, "ray-serve", "", false);
    let Some(app) = App::simulated("tgi") else {
        return;
    };
    run_and_agree(&app, "tgi", "", false);
}

#[test]
fn slow_simulated_bentoml_and_vllm() {
    let Some(app) = App::simulated("bentoml") else {
        return;
    };
    run_and_agree(&app, "bentoml", "", false);
    let Some(app) = App::simulated("vllm") else {
        return;
    };
    run_and_agree(&app, "vllm", "", false);
}
