//! `slocheck run --report-dir` end to end: a failing run (real target, real
//! managed Prometheus, a shortened error-spike whose ratio expectation cannot
//! hold) still writes all four reports with the failure in each, keeps exit
//! code 1, and appends its summary to `$GITHUB_STEP_SUMMARY`.

mod common;

use common::{Sandbox, dump, read_json};

#[test]
fn slow_failing_run_writes_every_report() {
    let sb = Sandbox::new();
    let scenario = sb.scenario_copy(
        "error-spike.toml",
        None,
        &[
            ("duration = \"10s\"", "duration = \"4s\""),
            ("duration = \"25s\"", "duration = \"8s\""),
            ("duration = \"20s\"", "duration = \"4s\""),
            (
                "near = 0.20, tolerance = 0.03",
                "near = 0.50, tolerance = 0.03",
            ),
        ],
    );
    let summary = sb.write("step-summary.md", "earlier step\n");
    let out = sb.path().join("out");
    let o = sb
        .command()
        .args([
            "run",
            &scenario.display().to_string(),
            "--quiet",
            "--report-dir",
        ])
        .arg(&out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("run slocheck");
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));

    let json = read_json(&out.join("report.json"));
    assert_eq!(json["status"], "failed");
    assert_eq!(json["exit_code"], 1);
    let failed: Vec<&str> = json["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verdict"] == "fail")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(failed.contains(&"spike-error-ratio"), "{failed:?}");
    let charts = &json["charts"];
    assert!(
        charts["request_rate"]["5xx"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{charts}"
    );
    assert!(
        charts["error_ratio"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{charts}"
    );

    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&junit).expect("JUnit");
    assert_eq!(parsed.test_suites[0].tests, 3);
    assert!(parsed.test_suites[0].failures >= 1, "{junit}");
    assert!(
        junit.contains("expected 5xx ratio in &quot;spike&quot; near 0.5000"),
        "{junit}"
    );

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("❌ failed (exit 1)") && md.contains("| ❌ fail | `spike-error-ratio`"),
        "{md}"
    );
    let step = std::fs::read_to_string(&summary).unwrap();
    assert!(
        step.starts_with("earlier step\n") && step.ends_with(&md),
        "{step}"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("FAILED") && html.contains("<td class=\"fail\">fail</td>"));
    assert_eq!(html.matches("<figure data-chart=").count(), 4);
    sb.assert_clean();
}

fn run_without_prometheus(sb: &Sandbox, report_dir: &std::path::Path) -> std::process::Output {
    let scenario = common::repo().join("scenarios/error-spike.toml");
    sb.command()
        .args(["run", &scenario.display().to_string(), "--quiet"])
        .args([
            "--prometheus-bin",
            "/nonexistent/prometheus",
            "--report-dir",
        ])
        .arg(report_dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run slocheck")
}

#[test]
fn a_run_that_breaks_before_load_still_reports_the_error() {
    let sb = Sandbox::new();
    let out = sb.path().join("out");
    let o = run_without_prometheus(&sb, &out);
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    let json = read_json(&out.join("report.json"));
    assert_eq!(json["status"], "error");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("/nonexistent/prometheus"),
        "{json}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&junit).expect("JUnit");
    assert_eq!(parsed.test_suites[0].errors, 1, "{junit}");
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("💥 error (exit 3)")
    );
    assert!(
        std::fs::read_to_string(out.join("report.html"))
            .unwrap()
            .contains("ERROR")
    );
    sb.assert_clean();
}

#[test]
fn a_report_dir_that_cannot_be_written_keeps_the_exit_code() {
    let sb = Sandbox::new();
    let blocker = sb.write("a-file", "not a folder");
    let o = run_without_prometheus(&sb, &blocker);
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert!(common::stderr(&o).contains("a-file"), "{}", dump(&o));
    sb.assert_clean();
}
