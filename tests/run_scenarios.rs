//! Whole scenarios end to end: real built-in target, real load, a real
//! managed Prometheus evaluating the real rules. Each takes about a minute,
//! so every test here is `slow_` and runs serially in CI. The runs of the
//! shipped scenarios also export a `promtool test rules` replay
//! (`--export-promtool`), checked offline by `common::replay`.

mod common;

use common::replay::{Mutation, assert_replay, export_args, export_dir, high_error_rate_mutations};
use common::{Sandbox, dump, stdout};
use serde_json::Value;

fn run_scenario(sb: &Sandbox, scenario: &str) -> (std::process::Output, Value) {
    common::run_with_report(sb, &[scenario])
}

/// Runs a shipped scenario with `--export-promtool` into `export_dir(sb)`.
fn run_exporting(sb: &Sandbox, scenario: &str) -> (std::process::Output, Value) {
    let [flag, dir] = export_args(sb);
    common::run_with_report(sb, &[scenario, &flag, &dir])
}

/// The report's Prometheus-vs-client agreement row for `phase`.
fn agreement<'a>(r: &'a Value, phase: &str) -> &'a Value {
    r["agreement"]
        .as_array()
        .expect("agreement")
        .iter()
        .find(|a| a["phase"] == phase)
        .unwrap_or_else(|| panic!("no agreement row for phase {phase}: {}", r["agreement"]))
}

fn verdicts(r: &Value) -> Vec<(String, String)> {
    r["expectations"]
        .as_array()
        .expect("expectations")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or("").to_string(),
                e["verdict"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn verdict_of(r: &Value, id: &str) -> String {
    verdicts(r)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no expectation {id}"))
}

#[test]
fn slow_error_spike_passes_with_evidence() {
    let sb = Sandbox::new();
    let (o, r) = run_exporting(&sb, "scenarios/error-spike.toml");
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert_eq!(r["status"], "passed");
    let v = verdicts(&r);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v.iter().all(|(_, v)| v == "pass"), "{v:?}");

    let alert = &r["alerts"][0];
    assert_eq!(alert["alert"], "HighErrorRate");
    assert!(
        alert["pending_at_ms"].is_u64()
            && alert["firing_at_ms"].is_u64()
            && alert["resolved_at_ms"].is_u64(),
        "{alert}"
    );

    // Prometheus and the client agree on the injected error ratio.
    let spike = agreement(&r, "spike");
    let prom = spike["prometheus_error_ratio"]
        .as_f64()
        .expect("prom ratio");
    let injected = spike["injected_error_ratio"]
        .as_f64()
        .expect("injected ratio");
    assert!(
        (prom - injected).abs() < 0.02,
        "prometheus {prom} vs injected {injected}"
    );

    // The terminal summary shows the evidence.
    let out = stdout(&o);
    for needle in [
        "PASS",
        "histogram_quantile(0.9",
        "ALERTS{alertname=\"HighErrorRate\"}",
        "client HDR P90",
        "Alert timeline",
    ] {
        assert!(out.contains(needle), "summary lacks {needle:?}:\n{out}");
    }
    // The report says what time scaling changed.
    assert_eq!(r["scenario"]["time_scale"], 20.0);
    let changes = r["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|f| f["changes"].as_array().cloned().unwrap_or_default())
        .count();
    assert!(changes >= 4, "{}", r["rules"]);
    error_spike_export_is_readable(&sb);
    assert_replay(&sb, &high_error_rate_mutations());
}

/// The export of error-spike: expanding notation (a few segments per
/// series, not one number per scrape), the lifecycle and the checks, and the
/// scaled rule copies the run loaded rather than the originals.
fn error_spike_export_is_readable(sb: &Sandbox) {
    let text =
        std::fs::read_to_string(export_dir(sb).join("error-spike_test.yml")).expect("test file");
    assert!(text.lines().count() < 400, "{} lines", text.lines().count());
    let status_503 = text
        .lines()
        .skip_while(|l| !(l.contains("http_requests_total") && l.contains("status=\"503\"")))
        .nth(1)
        .expect("503 series values");
    assert!(
        status_503.contains('x') && status_503.split_whitespace().count() < 10,
        "{status_503}"
    );
    for needle in [
        "alert_rule_test:",
        "alertstate=\"pending\"",
        "alertstate=\"firing\"",
        "spike-error-ratio",
        "baseline-p90",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    let alerts =
        std::fs::read_to_string(export_dir(sb).join("rules/alerts.yml")).expect("rules copy");
    assert!(
        alerts.contains("[15s]") && alerts.contains("for: 15s"),
        "{alerts}"
    );
}

#[test]
fn slow_baseline_stays_silent() {
    let sb = Sandbox::new();
    let (o, r) = run_exporting(&sb, "scenarios/baseline.toml");
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert!(
        verdicts(&r).iter().all(|(_, v)| v == "pass"),
        "{:?}",
        verdicts(&r)
    );
    assert_eq!(r["alerts"][0]["firing_at_ms"], Value::Null);
    // Both alerts stay silent: the replay asserts their silence, so only a
    // threshold lowered below the healthy traffic breaks it. A misspelt
    // metric or a longer `for` keeps a silent alert silent; no replay of
    // a run without alerts can catch those.
    assert_replay(
        &sb,
        &[
            Mutation::new("threshold", "alerts.yml", "> 0.05", "> -1"),
            Mutation::new("threshold", "alerts.yml", "> 0.25", "> 0.0001"),
        ],
    );
}

#[test]
fn slow_latency_spike_shows_in_p90_and_latency_alert() {
    let sb = Sandbox::new();
    let (o, r) = run_exporting(&sb, "scenarios/latency-spike.toml");
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let spike = agreement(&r, "spike");
    assert!(
        spike["prometheus_p90_seconds"].as_f64().expect("p90") > 0.25,
        "{spike}"
    );
    assert_replay(
        &sb,
        &[
            Mutation::new("threshold", "alerts.yml", "> 0.25", "> 2.5"),
            Mutation::new(
                "metric name",
                "alerts.yml",
                "(rate(http_request_latency_seconds_bucket[15s]))) > 0.25",
                "(rate(http_request_latency_second_bucket[15s]))) > 0.25",
            ),
            Mutation::longer_for("alerts.yml", 15, 45, "warning"),
        ],
    );
}

/// Runs error-spike against an edited copy of alerts.yml: the gate must fail
/// (exit 1) and name the lifecycle expectation.
fn broken_rules_fail_the_gate(edits: &[(&str, &str)], why: &str) {
    let sb = Sandbox::new();
    let alerts = sb.rules_copy("alerts.yml", edits);
    let recording = common::repo().join("rules/recording.yml");
    let scenario = sb.scenario_copy("error-spike.toml", Some(&[recording, alerts]), &[]);
    let (o, r) = run_scenario(&sb, scenario.to_str().expect("utf-8"));
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    assert_eq!(r["status"], "failed");
    assert_eq!(verdict_of(&r, "high-error-rate-lifecycle"), "fail");
    assert_eq!(
        verdict_of(&r, "spike-error-ratio"),
        "pass",
        "only the alert is broken"
    );
    let out = stdout(&o);
    assert!(
        out.contains("FAIL") && out.contains("high-error-rate-lifecycle"),
        "{out}"
    );
    assert!(out.contains(why), "summary lacks {why:?}:\n{out}");
}

#[test]
fn slow_gate_catches_a_raised_threshold() {
    broken_rules_fail_the_gate(&[("> 0.05", "> 0.5")], "never fired during \"spike\"");
}

#[test]
fn slow_gate_catches_a_wrong_metric_name() {
    broken_rules_fail_the_gate(
        &[(
            "http_requests_total{status=~\"5..\"}",
            "http_request_total{status=~\"5..\"}",
        )],
        "never fired during \"spike\"",
    );
}

#[test]
fn slow_gate_catches_a_huge_keep_firing_for() {
    broken_rules_fail_the_gate(
        &[(
            "for: 5m\n        labels:\n          severity: critical",
            "for: 5m\n        keep_firing_for: 1h\n        labels:\n          severity: critical",
        )],
        "still firing at the end of \"recovery\"",
    );
}

#[test]
fn slow_latency_bound_below_the_injected_delay_fails() {
    let sb = Sandbox::new();
    let scenario = sb.scenario_copy(
        "latency-spike.toml",
        None,
        &[("above = \"250ms\"", "below = \"100ms\"")],
    );
    let (o, r) = run_scenario(&sb, scenario.to_str().expect("utf-8"));
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let failed: Vec<_> = verdicts(&r)
        .into_iter()
        .filter(|(_, v)| v == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        stdout(&o).contains("is not below 100.0ms"),
        "{}",
        stdout(&o)
    );
}
