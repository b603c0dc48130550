//! Model quality end to end: the built-in target's prediction ids, feedback
//! and prediction log over real HTTP; `slocheck evaluate` pushing to a real
//! Pushgateway; its one-line errors and exit codes; and the two shipped
//! scenarios (drift, a stopped batch job) against a real Prometheus.

mod common;

use std::time::Duration;

use common::replay::{Mutation, assert_replay, export_args};
use common::{Sandbox, dump, read_json, require_tool, stderr};
use serde_json::{Value, json};
use slocheck::target::{TargetConfig, TargetHandle};

const PUSHGATEWAY: [&str; 2] = ["pushgateway", "prometheus-pushgateway"];
const INSTALL: &str = "ci/setup.sh";

/// Sends `n` predictions of the first Iris rows and returns their ids.
async fn predict(http: &reqwest::Client, base: &reqwest::Url, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = if i % 2 == 0 {
            json!({"features": [5.1, 3.5, 1.4, 0.2]})
        } else {
            json!({"features": [6.3, 3.3, 6.0, 2.5]})
        };
        let r = http
            .post(base.join("predict").expect("url"))
            .json(&body)
            .send()
            .await
            .expect("predict");
        assert_eq!(r.status(), 200);
        let header = r
            .headers()
            .get("x-prediction-id")
            .expect("x-prediction-id header")
            .to_str()
            .expect("ascii")
            .to_string();
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["prediction_id"], header.as_str());
        ids.push(header);
    }
    ids
}

#[tokio::test]
async fn target_logs_predictions_and_joins_feedback_by_id() {
    let target = TargetHandle::start(TargetConfig::default())
        .await
        .expect("target");
    let base = target.base_url();
    let http = reqwest::Client::new();
    let ids = predict(&http, &base, 4).await;
    assert_eq!(ids.len(), 4);
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 4, "{ids:?}");

    // Row 0 is a setosa; call row 1 (a virginica) a versicolor: one wrong label.
    let feedback = json!([
        {"prediction_id": ids[0], "label": "setosa"},
        {"prediction_id": ids[1], "label": "versicolor"},
        {"prediction_id": "999999", "label": "setosa"},
        {"prediction_id": ids[2], "label": "tulip"},
    ]);
    let r: Value = http
        .post(base.join("feedback").expect("url"))
        .json(&feedback)
        .send()
        .await
        .expect("feedback")
        .json()
        .await
        .expect("json");
    assert_eq!(r["accepted"], 2, "{r}");
    assert_eq!(r["unknown_id"], 1, "{r}");
    assert_eq!(r["invalid_label"], 1, "{r}");
    let bad = http
        .post(base.join("feedback").expect("url"))
        .body("{\"id\": 1}")
        .send()
        .await
        .expect("feedback");
    assert_eq!(bad.status(), 422);

    let log = http
        .get(base.join("predictions").expect("url"))
        .send()
        .await
        .expect("predictions");
    assert_eq!(log.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = log
        .text()
        .await
        .expect("text")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["predicted"], "setosa");
    assert_eq!(lines[0]["label"], "setosa");
    assert_eq!(lines[1]["predicted"], "virginica");
    assert_eq!(lines[1]["label"], "versicolor");
    assert_eq!(lines[2]["label"], Value::Null);
    let future = http
        .get(base.join("predictions?since=4102444800").expect("url"))
        .send()
        .await
        .expect("predictions")
        .text()
        .await
        .expect("text");
    assert_eq!(future, "", "no prediction after 2100");

    let metrics = http
        .get(base.join("metrics").expect("url"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for want in [
        "model_input_feature_value_count{feature=\"petal_length\"} 4",
        "model_feedback_total{result=\"accepted\"} 2",
        "model_feedback_total{result=\"invalid_label\"} 1",
        "model_feature_reference_mean{feature=\"sepal_length\"} 5.84",
        "model_predictions_total{class=\"setosa\"} 2",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }
    target.shutdown().await;
}

/// The `slocheck evaluate` binary against the target's log and a real
/// Pushgateway: what it pushes is what the labels say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_pushes_scores_to_a_real_pushgateway() {
    let Some(bin) = require_tool(&PUSHGATEWAY, INSTALL) else {
        return;
    };
    let sb = Sandbox::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let pg = slocheck::pushgateway::ManagedPushgateway::start(&bin, sb.path(), &cancel)
        .await
        .expect("pushgateway");
    let target = TargetHandle::start(TargetConfig::default())
        .await
        .expect("target");
    let base = target.base_url();
    let http = reqwest::Client::new();
    let ids = predict(&http, &base, 4).await;
    // Truth: setosa, virginica, setosa, setosa → 3 of 4 right.
    let labels = ["setosa", "virginica", "setosa", "setosa"];
    let feedback: Vec<Value> = ids
        .iter()
        .zip(labels)
        .map(|(id, l)| json!({"prediction_id": id, "label": l}))
        .collect();
    http.post(base.join("feedback").expect("url"))
        .json(&feedback)
        .send()
        .await
        .expect("feedback");

    let source = base.join("predictions").expect("url").to_string();
    let out = sb.run(&[
        "evaluate",
        "--source",
        &source,
        "--pushgateway",
        pg.url().as_str(),
        "--window",
        "1m",
        "--label-delay",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    assert!(
        stderr(&out).contains("4 of 4 predictions labelled, accuracy 0.7500"),
        "{}",
        dump(&out)
    );

    let pushed = http
        .get(pg.url().join("metrics").expect("url"))
        .send()
        .await
        .expect("pushgateway metrics")
        .text()
        .await
        .expect("text");
    let line = |name: &str| {
        pushed
            .lines()
            .find(|l| l.starts_with(name) && l.contains("job=\"model-evaluation\""))
            .unwrap_or_else(|| panic!("no {name} in\n{pushed}"))
            .to_string()
    };
    assert!(line("model_accuracy{").ends_with(" 0.75"), "{pushed}");
    assert!(
        line("model_evaluation_samples{").ends_with(" 4"),
        "{pushed}"
    );
    let recall_setosa = pushed
        .lines()
        .find(|l| l.starts_with("model_recall{") && l.contains("class=\"setosa\""))
        .expect("setosa recall");
    // Three setosa truths, two predicted setosa.
    assert!(
        recall_setosa.ends_with(" 0.6666666666666666"),
        "{recall_setosa}"
    );
    assert!(line("push_time_seconds{").contains("model-evaluation"));

    pg.stop().await.expect("stop pushgateway");
    target.shutdown().await;
}

#[test]
fn evaluate_errors_are_one_line_with_documented_exit_codes() {
    let sb = Sandbox::new();
    // A free port nobody listens on: the Pushgateway is unreachable (3).
    let port = slocheck::process::free_loopback_port().expect("port");
    let log = sb.write(
        "preds.jsonl",
        "{\"prediction_id\":\"1\",\"time\":1.5,\"predicted\":\"a\",\"label\":\"a\"}\n",
    );
    let pg = format!("http://127.0.0.1:{port}/");
    let out = sb.run(&[
        "evaluate",
        "--source",
        log.to_str().expect("utf-8"),
        "--pushgateway",
        &pg,
        "--window",
        "1000000d",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", dump(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "slocheck: error: pushgateway {pg} is unreachable: "
        )),
        "{err}"
    );

    // A malformed log line is the input's fault (2), named by line.
    let bad = sb.write("bad.jsonl", "{\"time\":1,\"predicted\":\"a\"}\nnot json\n");
    let out = sb.run(&[
        "evaluate",
        "--source",
        bad.to_str().expect("utf-8"),
        "--pushgateway",
        &pg,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.jsonl line 2: not JSON"), "{err}");

    // A source nobody serves is the environment's fault (3).
    let out = sb.run(&[
        "evaluate",
        "--source",
        &format!("http://127.0.0.1:{port}/predictions"),
        "--pushgateway",
        &pg,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", dump(&out));
    assert!(
        stderr(&out).contains("cannot read prediction log http://127.0.0.1:"),
        "{}",
        dump(&out)
    );
}

/// A shipped model scenario copied into the sandbox, every rule file absolute.
fn model_scenario(sb: &Sandbox, name: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
    let model = format!(
        "{:?}",
        common::repo().join("rules/model.yml").display().to_string()
    );
    let mut all = vec![("\"../rules/model.yml\"", model.as_str())];
    all.extend_from_slice(edits);
    sb.scenario_copy(name, None, &all)
}

#[test]
fn run_without_a_pushgateway_binary_fails_before_load_with_exit_3() {
    let sb = Sandbox::new();
    let sc = model_scenario(&sb, "model-drift.toml", &[]);
    let out = sb
        .command()
        .env(
            "SLOCHECK_PUSHGATEWAY_BIN",
            sb.path().join("no-such-pushgateway"),
        )
        .args(["run", sc.to_str().expect("utf-8"), "--quiet"])
        .output()
        .expect("run slocheck");
    assert_eq!(out.status.code(), Some(3), "{}", dump(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("slocheck: error:"))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    assert!(line.contains("pushgateway not found"), "{line}");
    assert!(line.contains("hint:"), "{line}");
    assert!(!err.contains("load started"), "{err}");
    sb.assert_clean();
}

#[test]
fn run_with_an_unreachable_pushgateway_url_fails_before_load_with_exit_3() {
    let sb = Sandbox::new();
    let port = slocheck::process::free_loopback_port().expect("port");
    let url = format!("http://127.0.0.1:{port}");
    let sc = model_scenario(
        &sb,
        "model-drift.toml",
        &[(
            "label_key = \"species\"",
            &format!("label_key = \"species\"\npushgateway_url = \"{url}\""),
        )],
    );
    let out = sb.run(&["run", sc.to_str().expect("utf-8"), "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "{}", dump(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("slocheck: error:"))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    assert!(
        line.contains(&format!("pushgateway {url}/ is unreachable")),
        "{line}"
    );
    assert!(!err.contains("load started"), "{err}");
    sb.assert_clean();
}

/// Runs a shipped scenario and returns the report.
/// Runs a copy of the shipped scenario, exporting its promtool replay.
fn run_scenario(sb: &Sandbox, name: &str) -> Value {
    let sc = model_scenario(sb, name, &[]);
    let json = sb.path().join("report.json");
    let [flag, dir] = export_args(sb);
    let out = sb.run(&[
        "run",
        sc.to_str().expect("utf-8"),
        "--quiet",
        "--json",
        json.to_str().expect("utf-8"),
        &flag,
        &dir,
    ]);
    assert!(
        json.exists(),
        "no report: {}\n{}",
        dump(&out),
        std::fs::read_to_string(&sc).unwrap_or_default()
    );
    let report = read_json(&json);
    assert_eq!(out.status.code(), Some(0), "{}\n{report:#}", dump(&out));
    sb.assert_clean();
    report
}

/// Prometheus's value and the generator's one for the same window, parsed
/// back from the evidence lines of a passed `near = "expected"` check.
fn agreement(e: &Value) -> (f64, f64) {
    let prom = e["queries"][0]["value"].as_f64().expect("prometheus value");
    let generator = e["client"]
        .as_array()
        .expect("client evidence")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| {
            let rest = l.split(" = ").nth(1)?;
            l.contains("over the same window")
                .then(|| rest.split(' ').next()?.parse::<f64>().ok())
                .flatten()
        })
        .expect("generator value for the same window");
    (prom, generator)
}

#[test]
fn slow_model_drift_scenario_fires_and_resolves_model_alerts() {
    if require_tool(&PUSHGATEWAY, INSTALL).is_none()
        || require_tool(&["prometheus"], INSTALL).is_none()
    {
        return;
    }
    let sb = Sandbox::new();
    let report = run_scenario(&sb, "model-drift.toml");
    let results = report["expectations"].as_array().expect("expectations");
    for r in results {
        assert_eq!(r["verdict"], "pass", "{r:#}");
    }
    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    for id in [
        "baseline-accuracy-matches-generator",
        "drift-accuracy-matches-generator",
    ] {
        let (prom, generator) = agreement(by_id(id));
        eprintln!("{id}: prometheus {prom:.4}, generator {generator:.4}");
        assert!(
            (prom - generator).abs() <= 0.02,
            "{id}: {prom} vs {generator}"
        );
    }
    let (base, _) = agreement(by_id("baseline-accuracy-matches-generator"));
    let (drift, _) = agreement(by_id("drift-accuracy-matches-generator"));
    assert!(
        base - drift > 0.15,
        "drift must cost accuracy: {base} → {drift}"
    );
    // The replay reads the pushed accuracy (job="model-evaluation") and the
    // service's feature histograms; `for: 2m` is 6s in the scaled copy.
    assert_replay(
        &sb,
        &[
            Mutation::new("threshold", "model.yml", "< 0.9 and", "< 0.5 and"),
            Mutation::new(
                "metric name",
                "model.yml",
                "model_accuracy{",
                "model_accuracies{",
            ),
            Mutation::longer_for("model.yml", 6, 60, "warning"),
        ],
    );
}

#[test]
fn slow_evaluation_stale_scenario_fires_model_evaluation_stale() {
    if require_tool(&PUSHGATEWAY, INSTALL).is_none()
        || require_tool(&["prometheus"], INSTALL).is_none()
    {
        return;
    }
    let sb = Sandbox::new();
    let report = run_scenario(&sb, "evaluation-stale.toml");
    for r in report["expectations"].as_array().expect("expectations") {
        assert_eq!(r["verdict"], "pass", "{r:#}");
    }
    let stale = report["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["alert"] == "ModelEvaluationStale")
        .expect("timeline of ModelEvaluationStale");
    assert!(stale["firing_at_ms"].is_u64(), "{stale:#}");
    assert!(stale["resolved_at_ms"].is_u64(), "{stale:#}");
    // The replay shifts push_time_seconds onto promtool's clock, so
    // `time() - push_time_seconds > 30` (scaled from 900) fires where the
    // run's did. The rule has no `for`; one of a minute (longer than the
    // stop) keeps it pending.
    assert_replay(
        &sb,
        &[
            Mutation::new("threshold", "model.yml", "> 30", "> 300"),
            Mutation::new(
                "metric name",
                "model.yml",
                "push_time_seconds{",
                "push_time_second{",
            ),
            Mutation::new(
                "for",
                "model.yml",
                "> 30\n    labels:",
                "> 30\n    for: 1m\n    labels:",
            ),
        ],
    );
}

/// Ctrl-C while the batch job runs: the Pushgateway and every `slocheck
/// evaluate` child are gone, the run directory removed, exit 130.
#[test]
fn slow_interrupt_stops_the_pushgateway_and_the_batch_job() {
    if require_tool(&PUSHGATEWAY, INSTALL).is_none()
        || require_tool(&["prometheus"], INSTALL).is_none()
    {
        return;
    }
    let sb = Sandbox::new();
    let sc = model_scenario(
        &sb,
        "model-drift.toml",
        &[("evaluate_every = \"2s\"", "evaluate_every = \"300ms\"")],
    );
    let mut r = sb.spawn(&[
        "run",
        sc.to_str().expect("utf-8"),
        "--quiet",
        "--keep-run-dir",
    ]);
    let ready = r.wait_for("pushgateway", Duration::from_secs(60));
    // "slocheck: pushgateway PID ready at URL"
    let words: Vec<&str> = ready.split_whitespace().collect();
    let pid: u32 = words[2].parse().expect("pushgateway pid");
    let url = words.last().expect("pushgateway url").to_string();
    r.wait_for("load started", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(4));
    r.signal(nix::sys::signal::Signal::SIGINT);
    let (code, log) = r.finish(Duration::from_secs(20));
    assert_eq!(code, Some(130), "{log}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pushgateway {pid} still running"
    );
    // Every batch job named this run's Pushgateway on its command line.
    let left = common::processes_mentioning(&url);
    assert!(left.is_empty(), "batch jobs left running: {left:?}");
    let kept: Vec<_> = std::fs::read_dir(sb.tmp())
        .expect("tmp")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(kept.len(), 1, "{log}");
    let jobs = std::fs::read_to_string(kept[0].join("evaluate.log")).unwrap_or_default();
    assert!(
        jobs.contains(&format!("pushed to {url}")),
        "the batch job ran before the interrupt: {jobs}"
    );
    std::fs::remove_dir_all(&kept[0]).expect("remove the kept run directory");
    sb.assert_clean();
}
