//! Whole scenarios end to end: real built-in target, real load, a real
//! managed Prometheus evaluating the real rules. Each takes about a minute,
//! so every test here is `slow_` and runs serially in CI.

mod common;

use common::{Sandbox, dump, stdout};
use serde_json::Value;

fn run_scenario(sb: &Sandbox, scenario: &str) -> (std::process::Output, Value) {
    common::run_with_report(sb, &[scenario])
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
    let (o, r) = run_scenario(&sb, "scenarios/error-spike.toml");
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
}

#[test]
fn slow_baseline_stays_silent() {
    let sb = Sandbox::new();
    let (o, r) = run_scenario(&sb, "scenarios/baseline.toml");
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert!(
        verdicts(&r).iter().all(|(_, v)| v == "pass"),
        "{:?}",
        verdicts(&r)
    );
    assert_eq!(r["alerts"][0]["firing_at_ms"], Value::Null);
}

#[test]
fn slow_latency_spike_shows_in_p90_and_latency_alert() {
    let sb = Sandbox::new();
    let (o, r) = run_scenario(&sb, "scenarios/latency-spike.toml");
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let spike = agreement(&r, "spike");
    assert!(
        spike["prometheus_p90_seconds"].as_f64().expect("p90") > 0.25,
        "{spike}"
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
