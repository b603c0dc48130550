//! `slocheck run A B --jobs 2`: two shipped scenarios as one suite, side by
//! side, with one exit code, one JUnit file holding a testsuite per scenario,
//! and rule coverage across both, gated by `--require-coverage firing`; and
//! a folder of shipped scenarios whose suite covers every loaded alert.

mod common;

use common::replay::{Mutation, assert_replay_of};
use common::{Sandbox, dump, read_json, stdout};

/// `slocheck run PATHS… --jobs 2 --require-coverage firing --report-dir
/// REPORTS --quiet EXTRA…`.
fn run_suite(
    sb: &Sandbox,
    paths: &[&str],
    reports: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["run"];
    args.extend_from_slice(paths);
    args.extend([
        "--jobs",
        "2",
        "--require-coverage",
        "firing",
        "--report-dir",
        reports.to_str().expect("utf-8"),
        "--quiet",
    ]);
    args.extend_from_slice(extra);
    sb.run(&args)
}

#[test]
fn slow_suite_runs_concurrently_reports_each_and_gates_on_coverage() {
    let sb = Sandbox::new();
    let reports = sb.path().join("reports");
    let o = run_suite(
        &sb,
        &["scenarios/baseline.toml", "scenarios/error-spike.toml"],
        &reports,
        &[],
    );
    sb.assert_clean();
    // Both scenarios pass on their own terms; the suite fails only because
    // HighLatencyP90 never fired in either of them.
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let out = stdout(&o);
    assert!(out.contains("2 scenario(s): 2 passed"), "{out}");
    assert!(
        out.contains("HighErrorRate fired and resolved in error-spike")
            && out.contains("HighLatencyP90 never exercised"),
        "{out}"
    );

    let suite = read_json(&reports.join("suite.json"));
    let runs = suite["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["exit_code"], 0, "{r}");
        for e in r["report"]["expectations"]
            .as_array()
            .expect("expectations")
        {
            assert_eq!(
                e["verdict"], "pass",
                "verdict changed when run concurrently: {e}"
            );
        }
    }
    assert!(
        suite["coverage_failure"]
            .as_str()
            .is_some_and(|m| m.contains("HighLatencyP90 never fired")),
        "{}",
        suite["coverage_failure"]
    );
    // Each scenario keeps its own report folder.
    for name in ["baseline", "error-spike"] {
        let r = read_json(&reports.join(name).join("report.json"));
        assert!(
            r["coverage"]["alerts"].is_array(),
            "{name}: {}",
            r["coverage"]
        );
    }

    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("junit");
    for suite_name in [
        "testsuite name=\"baseline\"",
        "testsuite name=\"error-spike\"",
        "testsuite name=\"rule-coverage\"",
    ] {
        assert!(junit.contains(suite_name), "no {suite_name} in {junit}");
    }
    let md = std::fs::read_to_string(reports.join("summary.md")).expect("summary");
    assert!(
        md.contains("## Rule coverage") && md.contains("`HighLatencyP90`"),
        "{md}"
    );
}

/// A folder of three shipped scenarios (copies, so the folder holds only
/// them) as one suite, two at a time: the loaded rules are alerts.yml and
/// recording.yml, HighErrorRate fires in error-spike and HighLatencyP90 in
/// latency-spike, so `--require-coverage firing` passes; closed-loop (run by
/// no other test) brings its own export, checked here.
#[test]
fn slow_folder_suite_covers_every_alert_in_every_report() {
    let sb = Sandbox::new();
    let folder = sb.path().join("shipped");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let names = ["closed-loop", "error-spike", "latency-spike"];
    for name in names {
        let copy = sb.scenario_copy(&format!("{name}.toml"), None, &[]);
        std::fs::rename(&copy, folder.join(format!("{name}.toml"))).expect("move");
    }
    let reports = sb.path().join("reports");
    let export = sb.path().join("exports");
    let o = run_suite(
        &sb,
        &[folder.to_str().expect("utf-8")],
        &reports,
        &["--export-promtool", export.to_str().expect("utf-8")],
    );
    sb.assert_clean();
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let out = stdout(&o);
    assert!(out.contains("3 scenario(s): 3 passed"), "{out}");
    for needle in [
        "Rule coverage (suite)",
        "HighErrorRate fired and resolved in error-spike",
        "HighLatencyP90 fired and resolved in latency-spike",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    assert!(!out.contains("NOT FIRED"), "{out}");

    let suite = read_json(&reports.join("suite.json"));
    assert_eq!(suite["coverage_failure"], serde_json::Value::Null);
    let fired: Vec<(String, Vec<String>)> = suite["coverage"]["alerts"]
        .as_array()
        .expect("suite coverage")
        .iter()
        .map(|a| {
            let v = serde_json::from_value(a["firing_in"].clone()).expect("firing_in");
            (a["alert"].as_str().unwrap_or("").to_string(), v)
        })
        .collect();
    assert_eq!(
        fired,
        vec![
            ("HighErrorRate".to_string(), vec!["error-spike".to_string()]),
            (
                "HighLatencyP90".to_string(),
                vec!["latency-spike".to_string()]
            ),
        ]
    );

    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("junit");
    for name in names.iter().chain(&["rule-coverage"]) {
        let tag = format!("testsuite name=\"{name}\"");
        assert_eq!(junit.matches(&tag).count(), 1, "{tag} in {junit}");
    }
    assert_eq!(junit.matches("<testsuite ").count(), 4, "{junit}");
    let md = std::fs::read_to_string(reports.join("summary.md")).expect("summary");
    assert!(
        md.contains("## Rule coverage") && md.contains("`HighLatencyP90`"),
        "{md}"
    );
    for name in names {
        let html = std::fs::read_to_string(reports.join(name).join("report.html"))
            .unwrap_or_else(|e| panic!("{name}/report.html: {e}"));
        assert!(
            html.contains("<h2>Rule coverage</h2>") && html.contains("HighErrorRate"),
            "{name}: no coverage table in report.html"
        );
    }

    // Each scenario of the suite exported its own replay; closed-loop's
    // alerts stay silent, so only a lowered threshold can break it.
    for name in names {
        assert!(
            export.join(name).join(format!("{name}_test.yml")).is_file(),
            "no export of {name}"
        );
    }
    assert_replay_of(
        &sb,
        &export.join("closed-loop"),
        &[
            Mutation::new("threshold", "alerts.yml", "> 0.05", "> -1"),
            Mutation::new("threshold", "alerts.yml", "> 0.25", "> 0.0001"),
        ],
    );
}
